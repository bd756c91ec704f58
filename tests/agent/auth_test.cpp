// Logins, sessions, CSRF, lock-outs and the RBAC matrix, against the real agent over HTTPS.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <thread>

#include "agent/api/api.hpp"
#include "agent/migrations.hpp"
#include "common/http/roles.hpp"
#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

using namespace std::chrono_literals;

boost::json::value parse(const std::string& body) {
  return boost::json::parse(body);
}

std::string code(const HttpReply& reply) {
  auto v = parse(reply.body);
  return v.is_object() && v.as_object().contains("error")
             ? std::string(v.at("error").at("code").as_string())
             : "";
}

struct Login {
  std::string cookie;  // "aibox_session=..."
  std::string csrf;
  HttpReply reply;
};

Login login(const Agent& agent, const std::string& user, const std::string& password) {
  Login out;
  out.reply =
      viaTls(agent, {.method = "POST",
                     .path = "/api/v1/auth/login",
                     .body = R"({"username":")" + user + R"(","password":")" + password + "\"}"});
  if (out.reply.status == 200) {
    auto cookie = out.reply.headers["set-cookie"];
    out.cookie = cookie.substr(0, cookie.find(';'));
    out.csrf = std::string(parse(out.reply.body).at("csrf_token").as_string());
  }
  return out;
}

// Reads a response only up to its first body bytes: enough for the status of a body that
// never ends (the event stream).
bool firstBytes(const std::string& body) {
  return !body.empty();
}

HttpReply as(const Agent& agent, const Login& session, std::string method, std::string path,
             std::string body = "", bool withCsrf = true,
             std::function<bool(const std::string&)> until = nullptr) {
  std::vector<std::string> headers{"Cookie: " + session.cookie};
  if (withCsrf) {
    headers.push_back("X-CSRF-Token: " + session.csrf);
  }
  return viaTls(agent, {.method = std::move(method),
                        .path = std::move(path),
                        .body = std::move(body),
                        .headers = std::move(headers),
                        .until = std::move(until)});
}

std::string initialPassword(const Agent& agent) {
  auto text = readFile(agent.root() / "var/lib/aibox/initial-admin-password");
  return text.substr(0, text.find('\n'));
}

// Logs in with a one-time password and sets `password`.
Login firstLogin(const Agent& agent, const std::string& user, const std::string& once,
                 const std::string& password) {
  auto session = login(agent, user, once);
  EXPECT_EQ(session.reply.status, 200) << session.reply.body;
  auto changed = as(agent, session, "POST", "/api/v1/auth/password",
                    R"({"old_password":")" + once + R"(","new_password":")" + password + "\"}");
  EXPECT_EQ(changed.status, 200) << changed.body;
  return session;
}

TEST(Auth, FirstAdminLoginMustChangeThePassword) {
  Agent agent;
  auto file = agent.root() / "var/lib/aibox/initial-admin-password";
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto once = initialPassword(agent);
  EXPECT_EQ(once.size(), 20u);

  auto session = login(agent, "admin", once);
  ASSERT_EQ(session.reply.status, 200) << session.reply.body;
  auto cookie = session.reply.headers["set-cookie"];
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; Secure"), std::string::npos);
  EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos);
  EXPECT_EQ(session.cookie.size(), std::string("aibox_session=").size() + 43);
  EXPECT_TRUE(parse(session.reply.body).at("must_change_password").as_bool());

  auto blocked = as(agent, session, "GET", "/api/v1/system");
  EXPECT_EQ(blocked.status, 403);
  EXPECT_EQ(code(blocked), "password_change_required");
  EXPECT_EQ(as(agent, session, "GET", "/api/v1/auth/session").status, 200);

  auto noCsrf =
      as(agent, session, "POST", "/api/v1/auth/password",
         R"({"old_password":")" + once + R"(","new_password":"a new long passphrase"})", false);
  EXPECT_EQ(noCsrf.status, 403);
  EXPECT_EQ(code(noCsrf), "csrf_failed");
  auto weak = as(agent, session, "POST", "/api/v1/auth/password",
                 R"({"old_password":")" + once + R"(","new_password":"short"})");
  EXPECT_EQ(weak.status, 400);
  EXPECT_EQ(parse(weak.body).at("error").at("field").as_string(), "new_password");
  auto wrongOld = as(agent, session, "POST", "/api/v1/auth/password",
                     R"({"old_password":"not it at all","new_password":"a new long passphrase"})");
  EXPECT_EQ(wrongOld.status, 400);
  EXPECT_EQ(parse(wrongOld.body).at("error").at("field").as_string(), "old_password");

  auto changed = as(agent, session, "POST", "/api/v1/auth/password",
                    R"({"old_password":")" + once + R"(","new_password":"a new long passphrase"})");
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_FALSE(std::filesystem::exists(file)) << "the one-time password is gone";
  EXPECT_EQ(as(agent, session, "GET", "/api/v1/system").status, 200);
  EXPECT_EQ(login(agent, "admin", once).reply.status, 401);
  EXPECT_EQ(login(agent, "admin", "a new long passphrase").reply.status, 200);

  // A login while still logged in: the old cookie (and no CSRF token) does not stand in the way.
  auto again = viaTls(agent, {.method = "POST",
                              .path = "/api/v1/auth/login",
                              .body = R"({"username":"admin","password":"a new long passphrase"})",
                              .headers = {"Cookie: " + session.cookie}});
  EXPECT_EQ(again.status, 200) << again.body;

  auto out = as(agent, session, "POST", "/api/v1/auth/logout");
  EXPECT_EQ(out.status, 200);
  EXPECT_NE(out.headers["set-cookie"].find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(as(agent, session, "GET", "/api/v1/system").status, 401);
}

TEST(Auth, OneAnswerForUnknownUserAndWrongPasswordThenLockout) {
  Agent agent(AgentOptions{{"--security.lockout_base_s=30"}});
  auto unknown = login(agent, "nobody", "whatever password");
  auto wrong = login(agent, "admin", "whatever password");
  EXPECT_EQ(unknown.reply.status, 401);
  EXPECT_EQ(wrong.reply.status, 401);
  EXPECT_EQ(unknown.reply.body, wrong.reply.body);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(login(agent, "admin", "whatever password").reply.status, 401);
  }
  // Five failures from this address: locked out, even with the right password.
  auto locked = login(agent, "admin", initialPassword(agent));
  EXPECT_EQ(locked.reply.status, 429);
  EXPECT_EQ(code(locked.reply), "locked_out");
  EXPECT_EQ(locked.reply.headers["retry-after"], "30");
  // The local socket is not subject to the lock-out of a network address.
  EXPECT_EQ(viaSocket(agent, {.path = "/api/v1/users"}).status, 200);
}

TEST(Auth, IdleSessionExpiresAndSessionsSurviveARestart) {
  TempDir root;
  Login session;
  {
    Agent agent(root.path(), {.args = {"--security.session_idle_s=2"}});
    session = firstLogin(agent, "admin", initialPassword(agent), "a new long passphrase");
  }
  Agent agent(root.path(), {.args = {"--security.session_idle_s=2"}});
  EXPECT_EQ(as(agent, session, "GET", "/api/v1/system").status, 200) << "kept across a restart";
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(as(agent, session, "GET", "/api/v1/system").status, 401) << "idle too long";
}

TEST(Users, AdminManagesUsersAndTheirSessions) {
  Agent agent;
  auto created = viaSocket(
      agent,
      {.method = "POST", .path = "/api/v1/users", .body = R"({"name":"olga","role":"operator"})"});
  ASSERT_EQ(created.status, 201) << created.body;
  auto once = std::string(parse(created.body).at("password").as_string());
  EXPECT_TRUE(parse(created.body).at("must_change_password").as_bool());
  EXPECT_EQ(viaSocket(agent, {.method = "POST",
                              .path = "/api/v1/users",
                              .body = R"({"name":"olga","role":"viewer"})"})
                .status,
            409);
  EXPECT_EQ(viaSocket(agent, {.method = "POST",
                              .path = "/api/v1/users",
                              .body = R"({"name":"x","role":"root"})"})
                .status,
            400);
  auto olga2 = login(agent, "olga", once);
  auto withName =
      as(agent, olga2, "POST", "/api/v1/auth/password",
         R"({"old_password":")" + once + R"(","new_password":"olga's long passphrase"})");
  EXPECT_EQ(withName.status, 400);
  EXPECT_NE(withName.body.find("must not contain the user name"), std::string::npos);
  EXPECT_EQ(as(agent, olga2, "POST", "/api/v1/auth/password",
               R"({"old_password":")" + once + R"(","new_password":"a different passphrase"})")
                .status,
            200);
  EXPECT_EQ(as(agent, olga2, "GET", "/api/v1/users").status, 403)
      << "operators do not manage users";

  auto sessions = viaSocket(agent, {.path = "/api/v1/sessions"});
  ASSERT_EQ(sessions.status, 200);
  auto list = parse(sessions.body).at("sessions").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("user").as_string(), "olga");

  auto demoted = viaSocket(
      agent, {.method = "PATCH", .path = "/api/v1/users/olga", .body = R"({"role":"viewer"})"});
  EXPECT_EQ(demoted.status, 200) << demoted.body;
  EXPECT_EQ(as(agent, olga2, "GET", "/api/v1/auth/session").body.find("\"role\":\"viewer\"") !=
                std::string::npos,
            true);
  auto disabled = viaSocket(
      agent, {.method = "PATCH", .path = "/api/v1/users/olga", .body = R"({"disabled":true})"});
  EXPECT_EQ(disabled.status, 200);
  EXPECT_EQ(as(agent, olga2, "GET", "/api/v1/system").status, 401) << "sessions revoked";
  EXPECT_EQ(login(agent, "olga", "a different passphrase").reply.status, 401);

  auto lastAdmin = viaSocket(agent, {.method = "DELETE", .path = "/api/v1/users/admin"});
  EXPECT_EQ(lastAdmin.status, 409);
  EXPECT_EQ(code(lastAdmin), "last_admin");
  EXPECT_EQ(viaSocket(agent, {.method = "DELETE", .path = "/api/v1/users/olga"}).status, 200);
  EXPECT_EQ(viaSocket(agent, {.method = "DELETE", .path = "/api/v1/users/olga"}).status, 404);
}

TEST(Tokens, BearerTokensAreRoleScopedRevocableAndExpire) {
  TempDir root;
  std::string token;
  std::string id;
  {
    Agent agent(root.path(), {});
    auto created = viaSocket(agent, {.method = "POST",
                                     .path = "/api/v1/tokens",
                                     .body = R"({"name":"grafana","role":"viewer"})"});
    ASSERT_EQ(created.status, 201) << created.body;
    token = std::string(parse(created.body).at("token").as_string());
    id = std::string(parse(created.body).at("id").as_string());
    EXPECT_EQ(token.rfind("aibox_" + id + "_", 0), 0u);
    auto bearer = [&agent, &token](std::string method, std::string path) {
      return viaTls(agent, {.method = std::move(method),
                            .path = std::move(path),
                            .body = "{}",
                            .headers = {"Authorization: Bearer " + token}});
    };
    EXPECT_EQ(bearer("GET", "/api/v1/system").status, 200);
    auto who = parse(bearer("GET", "/api/v1/auth/session").body);
    EXPECT_EQ(who.at("kind").as_string(), "token");
    EXPECT_EQ(who.at("name").as_string(), "token:grafana");
    EXPECT_EQ(who.at("role").as_string(), "viewer");
    auto denied = bearer("POST", "/api/v1/users");
    EXPECT_EQ(denied.status, 403) << "a viewer token cannot manage users";
    EXPECT_EQ(code(denied), "forbidden");
    auto forged = viaTls(agent, {.path = "/api/v1/system",
                                 .headers = {"Authorization: Bearer aibox_" + id + "_forged"}});
    EXPECT_EQ(forged.status, 401);
    EXPECT_EQ(code(forged), "invalid_token");
    EXPECT_EQ(
        viaTls(agent, {.path = "/api/v1/system", .headers = {"Authorization: Basic eDp5"}}).status,
        401);
    auto list = parse(viaSocket(agent, {.path = "/api/v1/tokens"}).body).at("tokens").as_array();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_FALSE(list[0].at("last_used_at").is_null());
    EXPECT_EQ(list[0].as_object().count("token"), 0u) << "the secret is never shown again";
  }
  {
    Agent agent(root.path(), {});
    EXPECT_EQ(
        viaTls(agent, {.path = "/api/v1/system", .headers = {"Authorization: Bearer " + token}})
            .status,
        200)
        << "kept across a restart";
  }
  auto db = (root.path() / "var/lib/aibox/aibox.db").string();
  ASSERT_EQ(run({"sqlite3", db, "UPDATE api_tokens SET expires_at = 1"}).exitCode, 0);
  Agent agent(root.path(), {});
  EXPECT_EQ(viaTls(agent, {.path = "/api/v1/system", .headers = {"Authorization: Bearer " + token}})
                .status,
            401)
      << "expired";
  EXPECT_EQ(viaSocket(agent, {.method = "DELETE", .path = "/api/v1/tokens/" + id}).status, 200);
  EXPECT_EQ(viaSocket(agent, {.method = "DELETE", .path = "/api/v1/tokens/" + id}).status, 404);
}

TEST(AllowList, OtherNetworksGet403AndTheSocketIsNeverRestricted) {
  Agent closed(AgentOptions{{"--security.admin_allow=10.0.0.0/8, 2001:db8::/32"}});
  auto refused = viaTls(closed, {.path = "/api/v1/auth/session"});
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(code(refused), "source_not_allowed");
  EXPECT_EQ(viaSocket(closed, {.path = "/api/v1/system"}).status, 200);
  Agent open(AgentOptions{{"--security.admin_allow=127.0.0.0/8"}});
  EXPECT_EQ(viaTls(open, {.path = "/api/v1/auth/session"}).status, 401) << "allowed, not logged in";
  TempDir root;
  auto refusedStart =
      run({AIBOX_AGENT_BIN, "--root", root.path().string(), "--security.admin_allow=10.0.0/33"});
  EXPECT_EQ(refusedStart.exitCode, 2);
  EXPECT_NE(refusedStart.err.find("security.admin_allow"), std::string::npos) << refusedStart.err;
}

// Every route of the agent's route table, for every role, unauthenticated, and with a bad CSRF
// token: a new route is covered here without editing this test.
struct RouteSpec {
  http::Verb verb;
  std::string pattern;
  std::string permission;
};

std::vector<RouteSpec> routeTable() {
  TempDir dir;
  auto database = db::Database::open(dir.path() / "routes.db");
  db::migrate(database, agent::migrations());
  db::Worker worker(std::move(database));
  agent::security::Security security{agent::security::Policy{}};
  http::HttpMetrics metrics;
  agent::api::AgentInfo info;
  agent::hardware::State hardware;
  agent::hardware::History history;
  agent::models::Store store(config::Paths(dir.path()), {});
  agent::models::Jobs jobs(store, worker);
  agent::console::Files console(dir.path() / "webui");
  boost::asio::io_context io;
  agent::events::Hub events(io, {});
  agent::license::Service license(io, worker, {}, dir.path(), nullptr);
  agent::runtimes::Supervisor runtimes(io, worker, {}, {hardware, store, license, nullptr});
  agent::api::Services services{info, worker,  metrics, security, hardware, history, store,
                                jobs, console, events,  license,  runtimes, io};
  http::Router router;
  agent::api::addRoutes(router, services);
  std::vector<RouteSpec> out;
  for (const auto& r : router.routes()) {
    out.push_back({r.verb, r.pattern, r.permission});
  }
  return out;
}

std::string concrete(const std::string& pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      out += "no-such-thing";
      i = pattern.find('}', i);
    } else {
      out += pattern[i];
    }
  }
  return out;
}

TEST(Rbac, MatrixOfEveryRouteAndRole) {
  Agent agent;
  firstLogin(agent, "admin", initialPassword(agent), "the first long passphrase");
  std::map<std::string, std::pair<std::string, Login>> users;  // role -> password, session
  for (auto role : http::roles()) {
    std::string name = "u" + std::string(role);
    auto created = viaSocket(
        agent, {.method = "POST",
                .path = "/api/v1/users",
                .body = R"({"name":")" + name + R"(","role":")" + std::string(role) + "\"}"});
    ASSERT_EQ(created.status, 201) << created.body;
    std::string password = "matrix passphrase " + std::string(role);
    auto session = firstLogin(
        agent, name, std::string(parse(created.body).at("password").as_string()), password);
    users[std::string(role)] = {password, session};
  }
  auto routes = routeTable();
  ASSERT_GE(routes.size(), 10u);
  for (const auto& route : routes) {
    std::string method(boost::beast::http::to_string(route.verb));
    std::string path = concrete(route.pattern);
    bool mutating = route.verb != http::Verb::get;
    std::string body = mutating ? "{}" : "";
    SCOPED_TRACE(method + " " + path + " needs " + route.permission);

    auto until = route.pattern == "/api/v1/events" ? firstBytes : nullptr;
    auto anonymous = viaTls(agent, {.method = method, .path = path, .body = body, .until = until});
    if (route.permission == http::kPublic) {
      EXPECT_NE(anonymous.status, 401);
      EXPECT_NE(anonymous.status, 403);
    } else {
      EXPECT_EQ(anonymous.status, 401) << anonymous.body;
    }
    for (auto& [role, entry] : users) {
      auto& [password, session] = entry;
      bool allowed = route.permission == http::kPublic ||
                     route.permission == http::kAuthenticated ||
                     http::roleAllows(role, route.permission);
      if (mutating && route.permission != http::kPublic) {
        auto badCsrf = as(agent, session, method, path, body, false);
        EXPECT_EQ(badCsrf.status, 403) << role;
        EXPECT_EQ(code(badCsrf), "csrf_failed") << role;
      }
      auto reply = as(agent, session, method, path, body, true, until);
      if (allowed) {
        EXPECT_NE(reply.status, 401) << role << ": " << reply.body;
        EXPECT_NE(reply.status, 403) << role << ": " << reply.body;
      } else {
        EXPECT_EQ(reply.status, 403) << role << ": " << reply.body;
        EXPECT_EQ(code(reply), "forbidden");
      }
      // A route may end the session (logout): log in again for the next one.
      if (as(agent, session, "GET", "/api/v1/auth/session").status == 401) {
        session = login(agent, "u" + role, password);
      }
    }
  }
}

}  // namespace
}  // namespace aibox::test

namespace aibox::test {
namespace {

TEST(Audit, TheRouterAuditsMutationsLoginsAndRefusals) {
  TempDir root;
  {
    Agent agent(root.path(), {});
    login(agent, "admin", "not the password");
    auto session = firstLogin(agent, "admin", initialPassword(agent), "the first long passphrase");
    viaSocket(
        agent,
        {.method = "POST", .path = "/api/v1/users", .body = R"({"name":"dora","role":"viewer"})"});
    viaTls(agent, {.method = "DELETE", .path = "/api/v1/users/dora"});  // anonymous: refused
    as(agent, session, "POST", "/api/v1/auth/logout");
    viaSocket(agent, {.path = "/api/v1/system"});  // a read: not audited

    auto page = viaSocket(agent, {.path = "/api/v1/audit?limit=100"});
    ASSERT_EQ(page.status, 200) << page.body;
    auto entries = parse(page.body).at("entries").as_array();
    ASSERT_EQ(entries.size(), 6u) << page.body;
    // Newest first.
    EXPECT_EQ(entries[0].at("action").as_string(), "POST /api/v1/auth/logout");
    EXPECT_EQ(entries[0].at("actor").as_string(), "user:admin");
    EXPECT_EQ(entries[1].at("action").as_string(), "DELETE /api/v1/users/{name}");
    EXPECT_EQ(entries[1].at("actor").as_string(), "anonymous");
    EXPECT_EQ(entries[1].at("result").as_int64(), 401);
    EXPECT_EQ(entries[1].at("target").as_string(), "/api/v1/users/dora");
    EXPECT_EQ(entries[2].at("actor").as_string(), "uid:" + std::to_string(geteuid()));
    EXPECT_EQ(entries[2].at("result").as_int64(), 201);
    auto failed = entries[5].as_object();
    EXPECT_EQ(failed.at("action").as_string(), "POST /api/v1/auth/login");
    EXPECT_EQ(failed.at("result").as_int64(), 401);
    EXPECT_EQ(failed.at("details").at("user").as_string(), "admin");
    EXPECT_EQ(failed.at("details").at("error").as_string(), "invalid_credentials");
    EXPECT_EQ(failed.at("source").as_string(), "127.0.0.1");
    EXPECT_EQ(page.body.find("not the password"), std::string::npos) << "no secrets in the log";
    EXPECT_EQ(page.body.find("first long passphrase"), std::string::npos);

    auto filtered = viaSocket(agent, {.path = "/api/v1/audit?actor=anonymous&limit=1"});
    EXPECT_EQ(parse(filtered.body).at("entries").as_array().size(), 1u);
    EXPECT_FALSE(parse(filtered.body).at("next_before").is_null());
    auto bad = viaSocket(agent, {.path = "/api/v1/audit?limit=0"});
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(parse(bad.body).at("error").at("field").as_string(), "limit");
    EXPECT_EQ(viaSocket(agent, {.path = "/api/v1/audit?colour=red"}).status, 400);

    auto exported = viaSocket(agent, {.path = "/api/v1/audit/export"});
    EXPECT_EQ(exported.headers["content-type"], "application/x-ndjson");
    EXPECT_EQ(std::count(exported.body.begin(), exported.body.end(), '\n'), 6);
    auto verified = parse(viaSocket(agent, {.path = "/api/v1/audit/verify"}).body);
    EXPECT_TRUE(verified.at("ok").as_bool());
    EXPECT_EQ(verified.at("rows_checked").as_int64(), 6);
  }
  // With a retention of 0 days the next start archives every row; the chain still verifies.
  Agent agent(root.path(), {.args = {"--audit.retention_days=0"}});
  for (int i = 0; i < 50; ++i) {
    auto verified = parse(viaSocket(agent, {.path = "/api/v1/audit/verify"}).body);
    if (verified.at("archives_checked").as_int64() == 1) {
      EXPECT_TRUE(verified.at("ok").as_bool()) << verified;
      EXPECT_EQ(verified.at("rows_checked").as_int64(), 0);
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  viaSocket(
      agent,
      {.method = "POST", .path = "/api/v1/users", .body = R"({"name":"erin","role":"viewer"})"});
  auto verified = parse(viaSocket(agent, {.path = "/api/v1/audit/verify"}).body);
  EXPECT_TRUE(verified.at("ok").as_bool()) << verified;
  EXPECT_EQ(verified.at("rows_checked").as_int64(), 1);
  EXPECT_EQ(verified.at("archives_checked").as_int64(), 1);
  auto db = (root.path() / "var/lib/aibox/aibox.db").string();
  ASSERT_EQ(
      run({"sqlite3", db, "DROP TRIGGER audit_log_append_only; UPDATE audit_log SET result = 200"})
          .exitCode,
      0);
  auto broken = parse(viaSocket(agent, {.path = "/api/v1/audit/verify"}).body);
  EXPECT_FALSE(broken.at("ok").as_bool());
}

}  // namespace
}  // namespace aibox::test
