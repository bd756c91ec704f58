#include "agent/security/security.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "common/http/roles.hpp"

namespace aibox::agent::security {
namespace {

using namespace std::chrono_literals;

TEST(Passwords, HashAndVerify) {
  auto hash = hashPassword("correct horse battery", 14);
  EXPECT_EQ(hash.rfind("scrypt$14$8$1$", 0), 0u) << hash;
  EXPECT_TRUE(verifyPassword("correct horse battery", hash));
  EXPECT_FALSE(verifyPassword("correct horse batterY", hash));
  EXPECT_NE(hashPassword("correct horse battery", 14), hash) << "salted";
  EXPECT_FALSE(verifyPassword("x", "scrypt$14$8$1$zz$00"));
  EXPECT_FALSE(verifyPassword("x", "bcrypt$whatever"));
  EXPECT_FALSE(verifyPassword("x", "scrypt$40$8$1$00$00")) << "absurd cost is refused, not run";
}

TEST(Passwords, Policy) {
  EXPECT_EQ(passwordProblem("alice", "short", 12), "must have at least 12 characters");
  EXPECT_EQ(passwordProblem("alice", "xxALICExx-long-enough", 12),
            "must not contain the user name");
  EXPECT_EQ(passwordProblem("alice", "a fine long passphrase", 12), std::nullopt);
  EXPECT_TRUE(validUserName("ops.team-1"));
  EXPECT_FALSE(validUserName("Root"));
  EXPECT_FALSE(validUserName("1abc"));
  EXPECT_FALSE(validUserName("a b"));
  EXPECT_FALSE(validUserName(std::string(33, 'a')));
}

TEST(Secrets, TokensAreUrlSafeAndRandom) {
  auto a = randomToken(32);
  EXPECT_EQ(a.size(), 43u);
  EXPECT_EQ(a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_NE(randomToken(32), a);
  auto p = randomPassword(20);
  EXPECT_EQ(p.size(), 20u);
  EXPECT_EQ(p.find_first_of("0O1lI"), std::string::npos);
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Roles, OneTableMapsRolesToPermissions) {
  EXPECT_TRUE(http::roleAllows("admin", "anything:at_all"));
  EXPECT_TRUE(http::roleAllows("operator", "model:write"));
  EXPECT_TRUE(http::roleAllows("operator", "runtime:control"));
  EXPECT_TRUE(http::roleAllows("operator", "hardware:read"));
  EXPECT_FALSE(http::roleAllows("operator", "user:admin"));
  EXPECT_FALSE(http::roleAllows("operator", "audit:read"));
  EXPECT_TRUE(http::roleAllows("auditor", "audit:read"));
  EXPECT_TRUE(http::roleAllows("auditor", "system:read"));
  EXPECT_FALSE(http::roleAllows("auditor", "model:write"));
  EXPECT_TRUE(http::roleAllows("viewer", "system:read"));
  EXPECT_FALSE(http::roleAllows("viewer", "audit:read"));
  EXPECT_FALSE(http::roleAllows("viewer", "key:read"));
  EXPECT_FALSE(http::roleAllows("viewer", "model:write"));
  EXPECT_FALSE(http::roleAllows("nobody", "system:read"));
  EXPECT_TRUE(http::isRole("auditor"));
  EXPECT_FALSE(http::isRole("root"));
}

TEST(AllowList, NetworksOfBothFamilies) {
  EXPECT_TRUE(http::AllowList().allows("203.0.113.5")) << "empty allows all";
  auto parsed = http::AllowList::parse("10.0.0.0/8, 192.168.1.7, 2001:db8::/32");
  ASSERT_TRUE(std::holds_alternative<http::AllowList>(parsed));
  const auto& list = std::get<http::AllowList>(parsed);
  EXPECT_TRUE(list.allows("10.200.3.4"));
  EXPECT_TRUE(list.allows("192.168.1.7"));
  EXPECT_FALSE(list.allows("192.168.1.8"));
  EXPECT_TRUE(list.allows("::ffff:10.1.1.1"));
  EXPECT_TRUE(list.allows("2001:db8:1::1"));
  EXPECT_FALSE(list.allows("2001:db9::1"));
  EXPECT_FALSE(list.allows("local"));
  EXPECT_TRUE(std::holds_alternative<std::string>(http::AllowList::parse("10.0.0.0/40")));
  EXPECT_TRUE(std::holds_alternative<std::string>(http::AllowList::parse("example.com")));
}

TEST(Tokens, OnlyTheWholeTokenChecksOut) {
  Tokens tokens;
  auto [secret, token] = tokens.create("ci", "operator", "uid:0", std::nullopt);
  auto now = Clock::now();
  auto found = tokens.check(secret, now);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->role, "operator");
  EXPECT_FALSE(found->lastUsed) << "returns the state before this use";
  EXPECT_TRUE(tokens.check(secret, now)->lastUsed);
  EXPECT_FALSE(tokens.check(secret + "x", now));
  EXPECT_FALSE(tokens.check("aibox_" + token.id + "_", now));
  EXPECT_FALSE(tokens.check("garbage", now));
  auto [s2, t2] = tokens.create("old", "viewer", "uid:0", now - 1s);
  EXPECT_FALSE(tokens.check(s2, now)) << "expired";
  EXPECT_TRUE(tokens.revoke(token.id));
  EXPECT_FALSE(tokens.check(secret, now));
}

TEST(Lockout, DoublesFromTheThresholdUpToTheCap) {
  Policy policy;
  policy.lockoutBase = 60s;
  policy.lockoutMax = 200s;
  Lockout lockout(policy);
  auto now = Clock::now();
  for (int i = 0; i < 4; ++i) {
    lockout.failed("bob", "10.0.0.1", now);
  }
  EXPECT_FALSE(lockout.blocked("bob", "10.0.0.1", now));
  lockout.failed("bob", "10.0.0.1", now);
  EXPECT_EQ(lockout.blocked("bob", "10.0.0.2", now), 60s) << "the user is locked from anywhere";
  EXPECT_EQ(lockout.blocked("eve", "10.0.0.1", now), 60s) << "the source is locked for any user";
  lockout.failed("bob", "10.0.0.1", now);
  EXPECT_EQ(lockout.blocked("bob", "x", now), 120s);
  lockout.failed("bob", "10.0.0.1", now);
  EXPECT_EQ(lockout.blocked("bob", "x", now), 200s) << "capped";
  EXPECT_FALSE(lockout.blocked("bob", "x", now + 201s));
  lockout.succeeded("bob", "10.0.0.1");
  EXPECT_FALSE(lockout.blocked("bob", "10.0.0.1", now));
}

http::Call callWith(http::Verb verb, const std::string& cookie, const std::string& csrf = "") {
  http::Call call;
  call.request.method(verb);
  call.request.target("/api/v1/system");
  if (!cookie.empty()) {
    call.request.set(boost::beast::http::field::cookie, "theme=dark; aibox_session=" + cookie);
  }
  if (!csrf.empty()) {
    call.request.set("X-CSRF-Token", csrf);
  }
  return call;
}

TEST(Sessions, CookieBecomesAnIdentityAndMutationsNeedCsrf) {
  Policy policy;
  Sessions sessions(policy);
  auto [token, session] = sessions.create(7, "alice", "operator", false, "10.0.0.9");
  EXPECT_EQ(session.tokenHash, sha256Hex(token)) << "stored hashed";

  auto get = callWith(http::Verb::get, token);
  EXPECT_FALSE(sessions.authenticate(get));
  EXPECT_EQ(get.identity.kind, http::Identity::Kind::session);
  EXPECT_EQ(get.identity.name, "user:alice");
  EXPECT_EQ(get.identity.role, "operator");
  EXPECT_TRUE(get.identity.allows("model:write"));
  EXPECT_FALSE(get.identity.allows("user:admin"));

  auto post = callWith(http::Verb::post, token);
  auto refused = sessions.authenticate(post);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->result(), http::Status::forbidden);
  auto wrong = callWith(http::Verb::post, token, "nope");
  EXPECT_TRUE(sessions.authenticate(wrong));
  auto good = callWith(http::Verb::delete_, token, session.csrfToken);
  EXPECT_FALSE(sessions.authenticate(good));
  EXPECT_EQ(good.identity.userId, 7);

  auto unknown = callWith(http::Verb::get, "forged");
  EXPECT_FALSE(sessions.authenticate(unknown));
  EXPECT_EQ(unknown.identity.kind, http::Identity::Kind::anonymous);
}

TEST(Sessions, RevokeAndUpdate) {
  Policy policy;
  Sessions sessions(policy);
  auto [t1, s1] = sessions.create(1, "a", "viewer", true, "x");
  auto [t2, s2] = sessions.create(1, "a", "viewer", true, "x");
  auto [t3, s3] = sessions.create(2, "b", "viewer", false, "x");
  sessions.updateUser(1, "operator", false);
  auto call = callWith(http::Verb::get, t1);
  sessions.authenticate(call);
  EXPECT_EQ(call.identity.role, "operator");
  EXPECT_FALSE(call.identity.mustChangePassword);
  EXPECT_EQ(sessions.revokeUser(1, s1.id), std::vector<std::string>{s2.id});
  EXPECT_EQ(sessions.revoke(s3.id), std::vector<std::string>{s3.id});
  EXPECT_EQ(sessions.list().size(), 1u);
}

TEST(Sessions, IdleSessionsExpire) {
  Policy policy;
  policy.sessionIdle = 1s;
  Sessions sessions(policy);
  std::vector<std::string> expired;
  sessions.onExpired([&expired](std::vector<std::string> ids) { expired = std::move(ids); });
  auto [token, session] = sessions.create(1, "a", "viewer", false, "x");
  std::this_thread::sleep_for(1100ms);
  auto call = callWith(http::Verb::get, token);
  EXPECT_FALSE(sessions.authenticate(call));
  EXPECT_EQ(call.identity.kind, http::Identity::Kind::anonymous);
  EXPECT_EQ(expired, std::vector<std::string>{session.id});
}

}  // namespace
}  // namespace aibox::agent::security

#include "agent/migrations.hpp"
#include "tests/support/support.hpp"

namespace aibox::agent::security {
namespace {

TEST(InferenceKeys, StoredHashedCheckedAndExpiring) {
  test::TempDir dir;
  auto db = db::Database::open(dir.path() / "aibox.db");
  db::migrate(db, migrations());
  InferenceKey key{
      .name = "dify", .owner = "user:admin", .models = {"qwen2-7b"}, .requestsPerMinute = 60};
  auto secret = createInferenceKey(db, key);
  EXPECT_EQ(secret.rfind("sk-aibox-" + key.id + "-", 0), 0u);
  auto now = Clock::now();
  auto found = checkInferenceKey(db, secret, now);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->name, "dify");
  EXPECT_TRUE(found->allows("qwen2-7b"));
  EXPECT_FALSE(found->allows("llama-70b"));
  EXPECT_EQ(found->requestsPerMinute, 60);
  EXPECT_FALSE(found->tokensPerMinute);
  EXPECT_TRUE(listInferenceKeys(db)[0].lastUsed) << "use recorded";
  EXPECT_FALSE(checkInferenceKey(db, secret + "x", now));
  EXPECT_FALSE(checkInferenceKey(db, "sk-aibox-", now));
  EXPECT_FALSE(checkInferenceKey(db, "sk-aibox-" + key.id, now));
  auto text = db.prepare("SELECT secret_hash FROM inference_keys");
  text.step();
  EXPECT_EQ(secret.find(text.text(0)), std::string::npos);

  InferenceKey old{.name = "old", .owner = "x", .expires = now - std::chrono::seconds(1)};
  auto oldSecret = createInferenceKey(db, old);
  EXPECT_FALSE(checkInferenceKey(db, oldSecret, now)) << "expired";
  EXPECT_TRUE(InferenceKey{}.allows("anything")) << "no list: every model";
  EXPECT_TRUE(deleteInferenceKey(db, key.id));
  EXPECT_FALSE(deleteInferenceKey(db, key.id));
  EXPECT_FALSE(checkInferenceKey(db, secret, now));
}

}  // namespace
}  // namespace aibox::agent::security
