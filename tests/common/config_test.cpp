#include "common/config/config.hpp"

#include <gtest/gtest.h>

#include <boost/program_options.hpp>

#include "tests/support/support.hpp"

namespace po = boost::program_options;

namespace aibox::config {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  ConfigTest() {
    // clang-format off
    settings.add_options()
      ("server.listen", po::value<std::string>()->default_value("0.0.0.0:8443"), "")
      ("server.threads", po::value<int>()->default_value(1)->notifier([](int v) {
          if (v < 1) {
            throw InvalidValue("server.threads", "must be at least 1");
          }
        }), "")
      ("tls.enabled", po::value<bool>()->default_value(true), "");
    // clang-format on
  }

  // Loads `text` as the config file, after `argv` as the command line.
  void load(const std::string& text, std::vector<const char*> argv = {"test"}) {
    file = dir.path() / "aibox.conf";
    test::writeFile(file, text);
    parseCommandLine(static_cast<int>(argv.size()), argv.data(), settings, vm, origins);
    parseFile(file, settings, vm, origins);
    validate(vm, origins);
  }

  std::string errorOf(const std::string& text, std::vector<const char*> argv = {"test"}) {
    try {
      load(text, std::move(argv));
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }

  test::TempDir dir;
  std::filesystem::path file;
  po::options_description settings;
  po::variables_map vm;
  Origins origins;
};

TEST_F(ConfigTest, SectionsOfAnotherProgramAreSkippedButOurTyposAreNot) {
  file = dir.path() / "aibox.conf";
  test::writeFile(file, "[gateway]\nlisten = 0.0.0.0:8000\nwhatever = 1\n[server]\nthreads = 2\n");
  auto mine = [](std::string_view section) { return section != "gateway"; };
  parseFile(file, settings, vm, origins, mine);
  validate(vm, origins);
  EXPECT_EQ(vm["server.threads"].as<int>(), 2);
  test::writeFile(file, "[server]\nthraeds = 2\n");
  po::variables_map other;
  EXPECT_THROW(parseFile(file, settings, other, origins, mine), Error);
}

TEST_F(ConfigTest, ReadsSectionsCommentsAndDefaults) {
  load(
      "# comment\n\n[server]\nlisten = 127.0.0.1:9000 \n; other comment\n[tls]\nenabled = false\n");
  EXPECT_EQ(vm["server.listen"].as<std::string>(), "127.0.0.1:9000");
  EXPECT_EQ(vm["server.threads"].as<int>(), 1);
  EXPECT_FALSE(vm["tls.enabled"].as<bool>());
}

TEST_F(ConfigTest, UnknownKeyNamesFileLineAndKey) {
  auto message = errorOf("[server]\nlisten = 1.2.3.4:1\nlisen = x\n");
  EXPECT_NE(message.find(file.string() + ":3"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key 'server.lisen'"), std::string::npos) << message;
}

TEST_F(ConfigTest, KeyInWrongSectionIsUnknown) {
  auto message = errorOf("[tls]\nlisten = 1.2.3.4:1\n");
  EXPECT_NE(message.find(":2: unknown key 'tls.listen'"), std::string::npos) << message;
}

TEST_F(ConfigTest, BadValueNamesFileLineAndKey) {
  auto message = errorOf("[server]\n\nthreads = many\n");
  EXPECT_NE(message.find(file.string() + ":3: key 'server.threads': invalid value 'many'"),
            std::string::npos)
      << message;
}

TEST_F(ConfigTest, ValidatorErrorNamesLine) {
  auto message = errorOf("[server]\nthreads = 0\n");
  EXPECT_NE(message.find(":2: key 'server.threads': must be at least 1"), std::string::npos)
      << message;
}

TEST_F(ConfigTest, MalformedLinesAreRejected) {
  EXPECT_NE(errorOf("[server\n").find(":1: malformed section header"), std::string::npos);
  EXPECT_NE(errorOf("[server]\nlisten\n").find(":2: expected 'key = value'"), std::string::npos);
  EXPECT_NE(errorOf("[server]\nthreads = 2\nthreads = 3\n").find("already set on line 2"),
            std::string::npos);
}

TEST_F(ConfigTest, CommandLineWins) {
  load("[server]\nthreads = 2\nlisten = 1.1.1.1:1\n", {"test", "--server.threads=4"});
  EXPECT_EQ(vm["server.threads"].as<int>(), 4);
  EXPECT_EQ(vm["server.listen"].as<std::string>(), "1.1.1.1:1");
  EXPECT_EQ(origins.at("server.threads"), "command line");
}

TEST_F(ConfigTest, BadCommandLineValueIsAnError) {
  auto message = errorOf("", {"test", "--server.threads=x"});
  EXPECT_NE(message.find("server.threads"), std::string::npos) << message;
  message = errorOf("", {"test", "--server.threads=0"});
  EXPECT_NE(message.find("command line: key 'server.threads': must be at least 1"),
            std::string::npos)
      << message;
}

TEST(Paths, EverythingLivesUnderTheRoot) {
  Paths paths("/tmp/box");
  EXPECT_EQ(paths.configFile(), "/tmp/box/etc/aibox/aibox.conf");
  EXPECT_EQ(paths.database(), "/tmp/box/var/lib/aibox/aibox.db");
  EXPECT_EQ(paths.agentSocket(), "/tmp/box/run/aibox/agent.sock");
  EXPECT_EQ(paths.under("/../../etc/shadow"), "/tmp/box/etc/shadow");
  EXPECT_EQ(Paths("/").database(), "/var/lib/aibox/aibox.db");
}

TEST(Paths, ArgumentBeatsEnvironment) {
  ::setenv("AIBOX_ROOT", "/tmp/from-env", 1);
  EXPECT_EQ(Paths::resolve(std::nullopt).root(), "/tmp/from-env");
  EXPECT_EQ(Paths::resolve("/tmp/arg").root(), "/tmp/arg");
  ::unsetenv("AIBOX_ROOT");
  EXPECT_EQ(Paths::resolve(std::nullopt).root(), "/");
}

}  // namespace
}  // namespace aibox::config
