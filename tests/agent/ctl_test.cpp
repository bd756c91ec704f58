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
