#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "common/http/http.hpp"

namespace aibox::http {
namespace {

Response ok(const Call& call) {
  Response res{Status::ok, 11};
  res.body() = std::string(call.param("id"));
  return res;
}

Identity admin() {
  Identity id;
  id.kind = Identity::Kind::local;
  id.name = "uid:0";
  id.uid = 0;
  id.admin = true;
  return id;
}

Identity localUser() {
  Identity id;
  id.kind = Identity::Kind::local;
  id.name = "uid:1234";
  id.uid = 1234;
  return id;
}

Response dispatch(const Router& router, Verb verb, std::string target,
                  Identity identity = admin()) {
  auto call = std::make_shared<Call>();
  call->request.method(verb);
  call->request.target(target);
  call->identity = std::move(identity);
  std::optional<Response> answer;
  router.dispatch(call, [&answer](AnyResponse r) { answer = std::get<Response>(std::move(r)); });
  EXPECT_TRUE(answer.has_value());
  return answer ? std::move(*answer) : Response{};
}

std::string errorCode(const Response& res) {
  return std::string(boost::json::parse(res.body()).at("error").at("code").as_string());
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.add(Verb::get, "/healthz", kPublic, ok);
    router.add(Verb::get, "/api/v1/models", "model:read", ok);
    router.add(Verb::get, "/api/v1/models/{id}", "model:read", ok);
    router.add(Verb::delete_, "/api/v1/models/{id}", "model:write", ok);
  }
  Router router;
};

TEST_F(RouterTest, MatchesLiteralsAndParameters) {
  auto m = router.match(Verb::get, "/api/v1/models/qwen2%3A7b?x=1");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/api/v1/models/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "id");
  EXPECT_EQ(m.params[0].second, "qwen2:7b");
  EXPECT_EQ(dispatch(router, Verb::get, "/api/v1/models/abc").body(), "abc");
}

TEST_F(RouterTest, UnknownPathIs404WithJsonError) {
  auto res = dispatch(router, Verb::get, "/api/v1/nothing");
  EXPECT_EQ(res.result(), Status::not_found);
  EXPECT_EQ(errorCode(res), "not_found");
  EXPECT_EQ(dispatch(router, Verb::get, "/api/v1/models/").result(), Status::not_found);
  EXPECT_EQ(dispatch(router, Verb::get, "/api/v1/models/a/b").result(), Status::not_found);
  EXPECT_EQ(dispatch(router, Verb::get, "/api/v1/models/..").result(), Status::not_found);
  EXPECT_EQ(dispatch(router, Verb::get, "/api/v1/models/%2").result(), Status::not_found);
  EXPECT_EQ(dispatch(router, Verb::get, "*").result(), Status::not_found);
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  auto res = dispatch(router, Verb::post, "/api/v1/models/abc");
  EXPECT_EQ(res.result(), Status::method_not_allowed);
  EXPECT_EQ(res[boost::beast::http::field::allow], "GET, DELETE");
  EXPECT_EQ(errorCode(res), "method_not_allowed");
}

TEST_F(RouterTest, AnonymousCallersReachOnlyPublicRoutes) {
  Identity anonymous;
  EXPECT_EQ(dispatch(router, Verb::get, "/healthz", anonymous).result(), Status::ok);
  auto res = dispatch(router, Verb::get, "/api/v1/models", anonymous);
  EXPECT_EQ(res.result(), Status::unauthorized);
  EXPECT_EQ(errorCode(res), "unauthenticated");
}

TEST_F(RouterTest, LocalNonAdminIsForbidden) {
  auto res = dispatch(router, Verb::delete_, "/api/v1/models/x", localUser());
  EXPECT_EQ(res.result(), Status::forbidden);
  EXPECT_NE(res.body().find("model:write"), std::string::npos);
}

TEST_F(RouterTest, HandlerExceptionBecomesJson500NotACrash) {
  router.add(Verb::get, "/boom", kPublic,
             [](const Call&) -> Response { throw std::runtime_error("bug"); });
  auto res = dispatch(router, Verb::get, "/boom");
  EXPECT_EQ(res.result(), Status::internal_server_error);
  EXPECT_EQ(errorCode(res), "internal");
}

// Records what it saw, then passes the response on.
class RecordingAuditor final : public Auditor {
 public:
  void record(const Call& /*call*/, Response response, const Reply& send) const override {
    statuses.push_back(response.result_int());
    contentTypes.emplace_back(response[boost::beast::http::field::content_type]);
    send(std::move(response));
  }
  mutable std::vector<unsigned> statuses;
  mutable std::vector<std::string> contentTypes;
};

TEST(RouterAudit, StreamedResponseIsRecordedByItsHeadBeforeItIsSent) {
  Router router;
  RecordingAuditor auditor;
  router.setAuditor(&auditor);
  router.addAsync(Verb::post, "/export", kPublic,
                  [](const std::shared_ptr<const Call>& /*call*/, const Reply& reply) {
                    StreamedResponse res{.status = Status::created, .contentLength = 0};
                    res.headers.set(boost::beast::http::field::content_type, "application/x-tar");
                    res.source = [](std::string& /*out*/, std::size_t /*max*/) { return false; };
                    reply(std::move(res));
                  });
  auto call = std::make_shared<Call>();
  call->request.method(Verb::post);
  call->request.target("/export");
  call->identity = admin();
  std::optional<AnyResponse> answer;
  router.dispatch(call, [&answer](AnyResponse r) { answer = std::move(r); });
  ASSERT_TRUE(answer.has_value());
  const auto* streamed = std::get_if<StreamedResponse>(&*answer);
  ASSERT_NE(streamed, nullptr) << "the auditor's head was sent instead of the stream";
  EXPECT_EQ(streamed->status, Status::created);
  EXPECT_TRUE(streamed->source);
  EXPECT_EQ(auditor.statuses, std::vector<unsigned>{201});
  EXPECT_EQ(auditor.contentTypes, std::vector<std::string>{"application/x-tar"});
}

TEST(RouterRegistration, RejectsRoutesWithoutPermission) {
  Router router;
  EXPECT_THROW(router.add(Verb::get, "/x", "", ok), std::invalid_argument);
  EXPECT_THROW(router.add(Verb::get, "x", kPublic, ok), std::invalid_argument);
}

TEST(LocalPeer, RootAndOwnUserAreAdmins) {
  EXPECT_TRUE(localPeer(0, 0).admin);
  EXPECT_TRUE(localPeer(geteuid(), getegid()).admin);
  EXPECT_EQ(localPeer(0, 0).kind, Identity::Kind::local);
}

}  // namespace
}  // namespace aibox::http
