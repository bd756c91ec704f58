#include "agent/settings.hpp"

#include <gtest/gtest.h>

#include "tests/support/support.hpp"

namespace aibox::agent {
namespace {

std::optional<Settings> load(std::vector<std::string> args) {
  std::vector<const char*> argv{"aibox-agent"};
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  return loadSettings(static_cast<int>(argv.size()), argv.data());
}

TEST(AgentSettings, DefaultsWithoutAConfigFile) {
  test::TempDir root;
  auto s = load({"--root", root.path().string()});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->listen, "0.0.0.0:8443");
  EXPECT_TRUE(s->tls);
  EXPECT_EQ(s->paths.root(), root.path());
  EXPECT_EQ(s->tlsKey, root.path() / "var/lib/aibox/identity/https.key");
  EXPECT_EQ(s->configFile, root.path() / "etc/aibox/aibox.conf");
}

TEST(AgentSettings, ConfigFileUnderTheRootAndListenOverride) {
  test::TempDir root;
  test::writeFile(root.path() / "etc/aibox/aibox.conf",
                  "[server]\nlisten = 127.0.0.1:9443\nheader_timeout_ms = 500\n[tls]\ncertificate "
                  "= /etc/aibox/c.pem\n"
                  "[log]\nlevel = debug\n");
  auto s = load({"--root", root.path().string()});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->listen, "127.0.0.1:9443");
  EXPECT_EQ(s->server.headerTimeout, std::chrono::milliseconds(500));
  EXPECT_EQ(s->tlsCertificate, root.path() / "etc/aibox/c.pem");
  EXPECT_EQ(s->logLevel, log::Level::debug);
  s = load({"--root", root.path().string(), "--listen", "[::1]:1"});
  EXPECT_EQ(s->listen, "[::1]:1");
}

TEST(AgentSettings, BadListenNamesTheLine) {
  test::TempDir root;
  test::writeFile(root.path() / "etc/aibox/aibox.conf", "[server]\n\nlisten = localhost\n");
  try {
    load({"--root", root.path().string()});
    FAIL();
  } catch (const config::Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "aibox.conf:3: key 'server.listen': 'localhost' is not ADDRESS:PORT"),
              std::string::npos)
        << e.what();
  }
}

TEST(AgentSettings, ErrorsForBadValuesAndOptions) {
  test::TempDir root;
  EXPECT_THROW(load({"--root", root.path().string(), "--log.level", "loud"}), config::Error);
  EXPECT_THROW(load({"--root", root.path().string(), "--server.threads", "0"}), config::Error);
  EXPECT_THROW(load({"--no-such-option"}), config::Error);
  EXPECT_THROW(load({"--config", (root.path() / "missing.conf").string()}), config::Error);
  EXPECT_THROW(load({"--listen", "1.2.3.4:1", "--server.listen", "1.2.3.4:2"}), config::Error);
}

TEST(AgentSettings, HelpAndVersionStopEarly) {
  testing::internal::CaptureStdout();
  EXPECT_FALSE(load({"--help"}));
  auto help = testing::internal::GetCapturedStdout();
  EXPECT_NE(help.find("--server.listen"), std::string::npos);
  EXPECT_NE(help.find("--root"), std::string::npos);
  testing::internal::CaptureStdout();
  EXPECT_FALSE(load({"--version"}));
  EXPECT_NE(testing::internal::GetCapturedStdout().find("aibox-agent 0."), std::string::npos);
}

}  // namespace
}  // namespace aibox::agent
