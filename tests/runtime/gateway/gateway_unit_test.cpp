// The gateway's pieces on their own: token buckets and the limiter, the snapshot and key
// checks, the balancer, token estimates and usage in answers.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {
namespace {

using namespace std::chrono_literals;

// sha256("secret") as the agent stores it.
constexpr const char* kSecretHash =
    "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

Snapshot snapshot() {
  auto parsed = parseSnapshot(std::string(R"({"keys":[{"id":"0123456789ab","name":"app",)") +
                              R"("secret_hash":")" + kSecretHash +
                              R"(","models":[],"requests_per_minute":null,"tokens_per_minute":60,)"
                              R"("max_concurrent":1,"expires_at":null}],)"
                              R"("instances":[{"id":"i1","name":"a","model":"tiny:latest",)"
                              R"("names":["tiny:latest","tiny"],"served_name":"tiny","port":4000,)"
                              R"("token":"t"},{"id":"i2","name":"b","model":"tiny:latest",)"
                              R"("names":["tiny:latest","tiny"],"served_name":"tiny","port":4001,)"
                              R"("token":"t"}],"max_concurrency":2,"generated_at":"x"})");
  EXPECT_TRUE(std::holds_alternative<Snapshot>(parsed)) << std::get<std::string>(parsed);
  return std::get<Snapshot>(parsed);
}

TEST(TokenBucket, RefillsAtItsCapacityPerMinuteAndCarriesDebt) {
  auto t = Steady::time_point{};
  TokenBucket b(60, t);
  EXPECT_TRUE(b.take(60, t));
  EXPECT_FALSE(b.take(1, t));
  EXPECT_DOUBLE_EQ(b.secondsUntil(1, t), 1);
  EXPECT_TRUE(b.take(1, t + 1s));
  b.add(-30, t + 1s);  // used 30 more than estimated
  EXPECT_DOUBLE_EQ(b.level(t + 1s), -30);
  EXPECT_DOUBLE_EQ(b.secondsUntil(10, t + 1s), 40);
  EXPECT_TRUE(b.take(500, t + 100s)) << "a request larger than the bucket waits for a full one";
}

TEST(Limiter, ConcurrencyPerKeyAndForTheBox) {
  auto s = snapshot();
  Limiter limiter;
  limiter.update(s);
  const auto& key = s.keys.at("0123456789ab");
  auto now = Steady::now();
  auto first = limiter.admit(key, 10, now);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<Limiter::Ticket>>(first));
  auto second = limiter.admit(key, 10, now);
  ASSERT_TRUE(std::holds_alternative<Rejection>(second));
  EXPECT_EQ(std::get<Rejection>(second).code, "concurrency_key");
  EXPECT_EQ(limiter.inFlight(), 1);
  first = Rejection{};  // the ticket is dropped: its places are given back
  EXPECT_EQ(limiter.inFlight(), 0);
  EXPECT_TRUE(
      std::holds_alternative<std::shared_ptr<Limiter::Ticket>>(limiter.admit(key, 10, now)));
}

TEST(Limiter, TokensAreCorrectedByTheUsageAndRevocationReachesTickets) {
  auto s = snapshot();
  Limiter limiter;
  limiter.update(s);
  const auto& key = s.keys.at("0123456789ab");
  auto now = Steady::now();
  auto ticket = std::get<std::shared_ptr<Limiter::Ticket>>(limiter.admit(key, 50, now));
  EXPECT_EQ(ticket->rate().limitTokens, 60);
  EXPECT_EQ(ticket->rate().remainingTokens, 10);
  ticket->settle(5);  // 45 given back
  EXPECT_FALSE(ticket->revoked());
  auto keyless = s;
  keyless.keys.clear();
  limiter.update(keyless);
  EXPECT_TRUE(ticket->revoked());
  ticket.reset();
  limiter.update(s);  // the key is back, with a new state
  auto again = limiter.admit(key, 60, now);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<Limiter::Ticket>>(again));
  auto over = limiter.admit(s.keys.at("0123456789ab"), 1, now);
  EXPECT_TRUE(std::holds_alternative<Rejection>(over));
}

TEST(Snapshot, KeysAreCheckedByHashAndExpiry) {
  auto s = snapshot();
  auto now = Clock::now();
  auto ok = checkKey(s, "Bearer sk-aibox-0123456789ab-secret", now);
  ASSERT_TRUE(std::holds_alternative<const Key*>(ok));
  EXPECT_EQ(std::get<const Key*>(ok)->name, "app");
  EXPECT_EQ(std::get<KeyProblem>(checkKey(s, "", now)), KeyProblem::missing);
  EXPECT_EQ(std::get<KeyProblem>(checkKey(s, "Basic abc", now)), KeyProblem::malformed);
  EXPECT_EQ(std::get<KeyProblem>(checkKey(s, "Bearer sk-aibox-0123456789ab-secreT", now)),
            KeyProblem::unknown);
  EXPECT_EQ(std::get<KeyProblem>(checkKey(s, "Bearer sk-aibox-ffffffffffff-secret", now)),
            KeyProblem::unknown);
  s.keys.at("0123456789ab").expires = now - 1s;
  EXPECT_EQ(std::get<KeyProblem>(checkKey(s, "Bearer sk-aibox-0123456789ab-secret", now)),
            KeyProblem::expired);
  EXPECT_TRUE(std::holds_alternative<std::string>(parseSnapshot("[]")));
  EXPECT_TRUE(std::holds_alternative<std::string>(
      parseSnapshot(R"({"keys":[{"id":"x"}],"instances":[]})")));
}

TEST(Snapshot, ModelsByAnyNameAndTheKeysAllowList) {
  auto s = snapshot();
  EXPECT_EQ(instancesFor(s, "tiny").size(), 2u);
  EXPECT_EQ(instancesFor(s, "tiny:latest").size(), 2u);
  EXPECT_TRUE(instancesFor(s, "other").empty());
  Key k;
  auto tiny = instancesFor(s, "tiny");
  EXPECT_TRUE(keyAllows(k, "tiny", tiny)) << "no list: every model";
  k.models = {"tiny:latest"};
  EXPECT_TRUE(keyAllows(k, "tiny", tiny)) << "another name of the same model";
  k.models = {"other"};
  EXPECT_FALSE(keyAllows(k, "tiny", tiny));
}

TEST(Balancer, FewestOutstandingFirstAndNeverAnExcludedOne) {
  auto s = snapshot();
  Balancer b;
  auto lease = b.hold("i1");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(b.pick(s.instances, {})->id, "i2");
  }
  auto lease2 = b.hold("i2");
  auto lease3 = b.hold("i2");
  EXPECT_EQ(b.pick(s.instances, {})->id, "i1");
  EXPECT_EQ(b.pick(s.instances, {"i1"})->id, "i2");
  EXPECT_FALSE(b.pick(s.instances, {"i1", "i2"}));
  lease.reset();
  EXPECT_EQ(b.outstanding("i1"), 0);
  EXPECT_EQ(b.outstanding("i2"), 2);
}

TEST(Estimate, PromptAtFourCharactersATokenPlusMaxTokens) {
  auto body = boost::json::parse(
                  R"({"messages":[{"role":"user","content":"abcdefghijklmnop"},)"
                  R"({"role":"user","content":[{"type":"text","text":"abcd"}]}],"max_tokens":10})")
                  .as_object();
  // 16 + 4 characters and 16 for each message's markers: 52 / 4 = 13, plus 10.
  EXPECT_DOUBLE_EQ(estimateTokens(body), 23);
  EXPECT_DOUBLE_EQ(estimateTokens(boost::json::parse(R"({"input":["abcd","abcd"]})").as_object()),
                   2);
}

TEST(Usage, ReadFromAnAnswer) {
  std::int64_t p = 0;
  std::int64_t c = 0;
  EXPECT_TRUE(readUsage(
      boost::json::parse(R"({"usage":{"prompt_tokens":3,"completion_tokens":4}})"), p, c));
  EXPECT_EQ(p, 3);
  EXPECT_EQ(c, 4);
  EXPECT_TRUE(
      readUsage(boost::json::parse(R"({"usage":{"prompt_tokens":9,"total_tokens":9}})"), p, c));
  EXPECT_EQ(c, 0) << "embeddings have no completion";
  EXPECT_FALSE(readUsage(boost::json::parse(R"({"usage":null})"), p, c));
}

TEST(RateHeaders, AsOpenAIWritesThem) {
  RateState r;
  r.limitRequests = 60;
  r.remainingRequests = 59;
  r.resetRequests = 0.25;
  r.limitTokens = 1000;
  r.remainingTokens = 0;
  r.resetTokens = 90;
  boost::beast::http::fields h;
  setRateHeaders(r, h);
  EXPECT_EQ(h["x-ratelimit-limit-requests"], "60");
  EXPECT_EQ(h["x-ratelimit-remaining-requests"], "59");
  EXPECT_EQ(h["x-ratelimit-reset-requests"], "250ms");
  EXPECT_EQ(h["x-ratelimit-reset-tokens"], "1m30s");
  RateState none;
  boost::beast::http::fields empty;
  setRateHeaders(none, empty);
  EXPECT_EQ(empty.begin(), empty.end()) << "no limits, no headers";
}

}  // namespace
}  // namespace aibox::gateway
