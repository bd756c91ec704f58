// aiboxctl against the real agent, and without one.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

TEST(Aiboxctl, StatusAsTableAndJson) {
  Agent agent;
  auto table = run({AIBOX_CTL_BIN, "--root", agent.root().string(), "status"});
  ASSERT_EQ(table.exitCode, 0) << table.err;
  EXPECT_NE(table.out.find("Agent     running, up "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("Version   0."), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("Root      " + agent.root().string()), std::string::npos) << table.out;

  auto json = run({AIBOX_CTL_BIN, "--json", "--socket", agent.socket().string(), "status"});
  ASSERT_EQ(json.exitCode, 0) << json.err;
  auto value = boost::json::parse(json.out);
  EXPECT_EQ(value.at("agent").as_string(), "running");
  EXPECT_EQ(value.at("system").at("root").as_string(), agent.root().string());

  auto trailing = run({AIBOX_CTL_BIN, "--root", agent.root().string(), "status", "--json"});
  EXPECT_EQ(trailing.exitCode, 0);
  EXPECT_EQ(boost::json::parse(trailing.out).at("agent").as_string(), "running");
}

TEST(Aiboxctl, AgentDownIsOneClearLineAndExitCode3) {
  TempDir root;
  auto result = run({AIBOX_CTL_BIN, "--root", root.path().string(), "status"});
  EXPECT_EQ(result.exitCode, 3);
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_NE(result.err.find((root.path() / "run/aibox/agent.sock").string()), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("systemctl status aibox-agent"), std::string::npos) << result.err;

  auto json = run({AIBOX_CTL_BIN, "--root", root.path().string(), "--json", "status"});
  EXPECT_EQ(json.exitCode, 3);
  EXPECT_EQ(boost::json::parse(json.out).at("agent").as_string(), "unreachable");
}

TEST(Aiboxctl, StoppedAgentLeavesAStaleSocketThatIsReportedAsDown) {
  TempDir root;
  { Agent agent(root.path(), {}); }
  auto result = run({AIBOX_CTL_BIN, "--root", root.path().string(), "status"});
  EXPECT_EQ(result.exitCode, 3) << result.out;
}

TEST(Aiboxctl, HelpAndUsageErrors) {
  auto help = run({AIBOX_CTL_BIN, "--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_NE(help.out.find("status"), std::string::npos);
  EXPECT_NE(help.out.find("--json"), std::string::npos);
  auto statusHelp = run({AIBOX_CTL_BIN, "status", "--help"});
  EXPECT_EQ(statusHelp.exitCode, 0);
  EXPECT_NE(statusHelp.out.find("Usage: aiboxctl"), std::string::npos);
  EXPECT_EQ(run({AIBOX_CTL_BIN}).exitCode, 2);
  EXPECT_EQ(run({AIBOX_CTL_BIN, "frobnicate"}).exitCode, 2);
  EXPECT_EQ(run({AIBOX_CTL_BIN, "--bogus", "status"}).exitCode, 2);
  EXPECT_EQ(run({AIBOX_CTL_BIN, "--root", "/x", "--socket", "/y", "status"}).exitCode, 2);
  auto version = run({AIBOX_CTL_BIN, "--version"});
  EXPECT_EQ(version.exitCode, 0);
  EXPECT_EQ(version.out.rfind("aiboxctl 0.", 0), 0u);
}

TEST(Aiboxctl, PermissionDeniedSaysWhichGroup) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to act as another user (CI runs as root)";
  }
  Agent agent;
  for (const auto& dir : {agent.root(), agent.root() / "run", agent.root() / "run/aibox"}) {
    std::filesystem::permissions(dir, std::filesystem::perms::others_exec,
                                 std::filesystem::perm_options::add);
  }
  auto result = run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", AIBOX_CTL_BIN,
                     "--root", agent.root().string(), "status"});
  EXPECT_EQ(result.exitCode, 3);
  EXPECT_NE(result.err.find("aibox-admin"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace aibox::test

namespace aibox::test {
namespace {

CommandResult ctl(const Agent& agent, std::vector<std::string> args,
                  const std::string& input = "") {
  std::vector<std::string> argv{AIBOX_CTL_BIN, "--root", agent.root().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, input);
}

TEST(AiboxctlUsers, ManageAccountsFromTheCli) {
  Agent agent;
  auto info = ctl(agent, {"users", "bootstrap-info"});
  EXPECT_EQ(info.exitCode, 0);
  EXPECT_NE(info.out.find("initial-admin-password"), std::string::npos) << info.out;

  auto add = ctl(agent, {"users", "add", "bob", "--role", "viewer"});
  ASSERT_EQ(add.exitCode, 0) << add.err;
  EXPECT_NE(add.out.find("one-time password: "), std::string::npos) << add.out;
  auto withPassword = ctl(agent, {"users", "add", "carol", "--role", "auditor", "--password-stdin"},
                          "a long enough secret\n");
  ASSERT_EQ(withPassword.exitCode, 0) << withPassword.err;
  EXPECT_EQ(withPassword.out.find("one-time password"), std::string::npos);

  auto list = ctl(agent, {"users", "ls"});
  EXPECT_EQ(list.exitCode, 0);
  EXPECT_NE(list.out.find("NAME"), std::string::npos);
  EXPECT_NE(list.out.find("bob"), std::string::npos);
  EXPECT_NE(list.out.find("must change password"), std::string::npos);
  auto json = ctl(agent, {"--json", "users", "ls"});
  EXPECT_EQ(boost::json::parse(json.out).at("users").as_array().size(), 3u);

  EXPECT_EQ(ctl(agent, {"users", "role", "bob", "operator"}).out, "bob is now operator\n");
  auto badRole = ctl(agent, {"users", "role", "bob", "god"});
  EXPECT_EQ(badRole.exitCode, 1);
  EXPECT_NE(badRole.err.find("admin, operator, auditor or viewer"), std::string::npos)
      << badRole.err;
  EXPECT_EQ(
      ctl(agent, {"users", "passwd", "bob", "--password-stdin"}, "another long secret\n").exitCode,
      0);
  auto weak = ctl(agent, {"users", "passwd", "bob", "--password-stdin"}, "short\n");
  EXPECT_EQ(weak.exitCode, 1);
  EXPECT_NE(weak.err.find("at least 12 characters"), std::string::npos);
  EXPECT_EQ(ctl(agent, {"users", "disable", "bob"}).out, "bob disabled\n");
  EXPECT_EQ(ctl(agent, {"users", "rm", "bob"}).exitCode, 0);
  auto missing = ctl(agent, {"users", "rm", "bob"});
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_NE(missing.err.find("no user named 'bob'"), std::string::npos);
  EXPECT_EQ(ctl(agent, {"users", "rm", "no such/user"}).exitCode, 1);
  EXPECT_EQ(ctl(agent, {"users", "frob"}).exitCode, 2);
  EXPECT_EQ(ctl(agent, {"users", "add", "x"}).exitCode, 2) << "needs --role";
}

TEST(AiboxctlUsers, SessionsListAndRevoke) {
  Agent agent;
  auto password = readFile(agent.root() / "var/lib/aibox/initial-admin-password");
  password.pop_back();
  auto login = viaTls(agent, {.method = "POST",
                              .path = "/api/v1/auth/login",
                              .body = R"({"username":"admin","password":")" + password + "\"}"});
  ASSERT_EQ(login.status, 200);
  auto id = std::string(boost::json::parse(login.body).at("session_id").as_string());
  auto list = ctl(agent, {"sessions", "ls"});
  EXPECT_EQ(list.exitCode, 0);
  EXPECT_NE(list.out.find(id), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("127.0.0.1"), std::string::npos);
  EXPECT_EQ(ctl(agent, {"sessions", "revoke", id}).exitCode, 0);
  EXPECT_EQ(ctl(agent, {"sessions", "revoke", id}).exitCode, 1);
  EXPECT_EQ(ctl(agent, {"--json", "sessions", "ls"}).out, "{\"sessions\":[]}\n");
}

TEST(AiboxctlUsers, BootstrapInfoWorksWithoutTheAgent) {
  TempDir root;
  auto info = run({AIBOX_CTL_BIN, "--root", root.path().string(), "users", "bootstrap-info"});
  EXPECT_EQ(info.exitCode, 0);
  EXPECT_NE(info.out.find("No one-time password is pending"), std::string::npos);
}

}  // namespace
}  // namespace aibox::test

namespace aibox::test {
namespace {

TEST(AiboxctlAudit, TokensAndAuditFromTheCli) {
  Agent agent;
  auto add = ctl(agent, {"tokens", "add", "ci", "--role", "operator", "--expires-in-days", "30"});
  ASSERT_EQ(add.exitCode, 0) << add.err;
  EXPECT_NE(add.out.find("aibox_"), std::string::npos);
  auto list = ctl(agent, {"tokens", "ls"});
  EXPECT_NE(list.out.find("ci"), std::string::npos);
  EXPECT_NE(list.out.find("operator"), std::string::npos);
  auto id = std::string(boost::json::parse(ctl(agent, {"--json", "tokens", "ls"}).out)
                            .at("tokens")
                            .at(0)
                            .at("id")
                            .as_string());
  EXPECT_EQ(ctl(agent, {"tokens", "revoke", id}).exitCode, 0);
  EXPECT_EQ(ctl(agent, {"tokens", "revoke", id}).exitCode, 1);
  EXPECT_EQ(ctl(agent, {"tokens", "add", "x"}).exitCode, 2);

  auto audit = ctl(agent, {"audit", "ls", "--limit", "10"});
  ASSERT_EQ(audit.exitCode, 0) << audit.err;
  EXPECT_NE(audit.out.find("POST /api/v1/tokens"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("DELETE /api/v1/tokens/{id}"), std::string::npos);
  auto verify = ctl(agent, {"audit", "verify"});
  EXPECT_EQ(verify.exitCode, 0) << verify.out;
  EXPECT_NE(verify.out.find("audit log intact: 3 rows"), std::string::npos) << verify.out;
  auto exported = ctl(agent, {"audit", "export", "--since", "2000-01-01"});
  EXPECT_EQ(exported.exitCode, 0);
  EXPECT_EQ(std::count(exported.out.begin(), exported.out.end(), '\n'), 3);
  EXPECT_EQ(ctl(agent, {"audit", "ls", "--colour", "red"}).exitCode, 2);

  auto db = (agent.root() / "var/lib/aibox/aibox.db").string();
  ASSERT_EQ(run({"sqlite3", db, "DELETE FROM audit_log WHERE id = 2"}).exitCode, 0);
  auto broken = ctl(agent, {"audit", "verify"});
  EXPECT_EQ(broken.exitCode, 1);
  EXPECT_NE(broken.out.find("rows 2 to 2 are missing"), std::string::npos) << broken.out;
}

}  // namespace
}  // namespace aibox::test

namespace aibox::test {
namespace {

TEST(AiboxctlKeys, InferenceKeysFromTheCliAndApi) {
  Agent agent;
  auto add = ctl(agent, {"keys", "add", "dify", "--models", "qwen2-7b,llama3-8b", "--rpm", "60",
                         "--tpm", "100000", "--owner", "team-a"});
  ASSERT_EQ(add.exitCode, 0) << add.err;
  EXPECT_NE(add.out.find("sk-aibox-"), std::string::npos);
  EXPECT_NE(add.out.find("qwen2-7b,llama3-8b"), std::string::npos);
  auto list = ctl(agent, {"keys", "ls"});
  EXPECT_NE(list.out.find("team-a"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("100000"), std::string::npos);
  EXPECT_EQ(list.out.find("sk-aibox-"), std::string::npos) << "never shown again";
  auto json = boost::json::parse(ctl(agent, {"--json", "keys", "ls"}).out);
  auto id = std::string(json.at("keys").at(0).at("id").as_string());
  auto bad = viaSocket(
      agent, {.method = "POST", .path = "/api/v1/keys", .body = R"({"name":"x","models":"all"})"});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"field\":\"models\""), std::string::npos);
  EXPECT_EQ(viaSocket(agent, {.method = "POST",
                              .path = "/api/v1/keys",
                              .body = R"({"name":"x","requests_per_minute":0})"})
                .status,
            400);
  EXPECT_EQ(ctl(agent, {"keys", "add", "x", "--rpm", "many"}).exitCode, 2);
  EXPECT_EQ(ctl(agent, {"keys", "rm", id}).exitCode, 0);
  EXPECT_EQ(ctl(agent, {"keys", "rm", id}).exitCode, 1);
}

}  // namespace
}  // namespace aibox::test
