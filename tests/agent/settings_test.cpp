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

TEST(AgentSettings, HardwareSectionWithRepeatedUpsAndThresholds) {
  test::TempDir root;
  test::writeFile(root.path() / "etc/aibox/aibox.conf",
                  "[hardware]\nsources = sim, nvml\nups = ups1@10.0.0.5:3493\n"
                  "ups = ups2@localhost\npoll_interval = 0.5\n"
                  "threshold = coretemp-*/temp*: warning_high=80, critical_high=95\n"
                  "sysfs_root = /fake/sys\n");
  auto s = load({"--root", root.path().string()});
  ASSERT_TRUE(s);
  const auto& hw = s->hardware;
  EXPECT_EQ(hw.sources, (std::vector<std::string>{"sim", "nvml"}));
  ASSERT_EQ(hw.upses.size(), 2u);
  EXPECT_EQ(hw.upses[0].name, "ups1");
  EXPECT_EQ(hw.upses[0].host, "10.0.0.5");
  EXPECT_EQ(hw.upses[1].host, "localhost");
  EXPECT_EQ(hw.upses[1].port, 3493);
  EXPECT_EQ(hw.pollInterval, std::chrono::milliseconds(500));
  EXPECT_EQ(hw.upsPollInterval, std::chrono::milliseconds(5000));
  ASSERT_EQ(hw.overrides.size(), 1u);
  EXPECT_EQ(hw.overrides[0].glob, "coretemp-*/temp*");
  EXPECT_EQ(hw.overrides[0].thresholds.criticalHigh, 95);
  EXPECT_EQ(hw.sysfsRoot, root.path() / "fake/sys");
}

TEST(AgentSettings, BadHardwareSettingsNameTheKeyAndTheFix) {
  test::TempDir root;
  auto expectError = [&root](const std::string& arg, const std::string& text) {
    try {
      load({"--root", root.path().string(), arg});
      ADD_FAILURE() << arg << " was accepted";
    } catch (const config::Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  expectError("--hardware.sources=libsensors,bogus", "'bogus' is not a source");
  expectError("--hardware.sources=sim,nvml,sim", "'sim' is listed twice");
  expectError("--hardware.ups=ups1@host:99999", "NAME@HOST:PORT");
  expectError("--hardware.threshold=cpu*: warning_high=hot",
              "'warning_high=hot' is not KEY=NUMBER");
  expectError("--hardware.threshold=cpu*: bogus=1", "is not one of warning_low");
  expectError("--hardware.poll_interval=0", "between 0.1 and 3600");
}

}  // namespace
}  // namespace aibox::agent
