// The hardware resources of the real agent, on the simulated box and with broken sources.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "common/json/json.hpp"
#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

boost::json::object getJson(const Agent& agent, const std::string& path) {
  auto reply = viaSocket(agent, {.path = path});
  EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
  return boost::json::parse(reply.body).as_object();
}

// Polls `path` until `ready` holds (the sampler delivers its first report within a poll).
boost::json::object waitFor(const Agent& agent, const std::string& path,
                            const std::function<bool(const boost::json::object&)>& ready) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    auto value = getJson(agent, path);
    if (ready(value) || std::chrono::steady_clock::now() > deadline) {
      return value;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string errorCode(const HttpReply& reply) {
  return std::string(boost::json::parse(reply.body).at("error").at("code").as_string());
}

AgentOptions simulated(std::vector<std::string> more = {}) {
  AgentOptions options;
  options.args = {"--hardware.sources=sim", "--hardware.poll_interval=0.2"};
  options.args.insert(options.args.end(), more.begin(), more.end());
  return options;
}

TEST(Hardware, SimulatedBoxThroughEveryResource) {
  Agent agent(simulated({"--hardware.threshold=coretemp-isa-0000/temp1: critical_high=1"}));
  auto summary = waitFor(agent, "/api/v1/hardware",
                         [](const auto& s) { return s.at("gpus").as_int64() == 8; });
  EXPECT_TRUE(summary.at("simulated").as_bool());
  EXPECT_EQ(summary.at("upses").as_int64(), 2);
  EXPECT_GE(summary.at("sensors").as_int64(), 100);
  EXPECT_EQ(summary.at("health").as_string(), "critical");
  EXPECT_EQ(summary.at("counts").at("critical").as_int64(), 1);

  auto fans = getJson(agent, "/api/v1/hardware/sensors?kind=fan");
  ASSERT_GE(fans.at("sensors").as_array().size(), 6u);
  for (const auto& s : fans.at("sensors").as_array()) {
    EXPECT_EQ(s.at("kind").as_string(), "fan");
    EXPECT_EQ(s.at("unit").as_string(), "rpm");
    EXPECT_TRUE(s.at("simulated").as_bool());
  }
  auto critical = getJson(agent, "/api/v1/hardware/sensors?status=critical");
  ASSERT_EQ(critical.at("sensors").as_array().size(), 1u);
  EXPECT_EQ(critical.at("sensors").at(0).at("id").as_string(), "coretemp-isa-0000/temp1");

  auto gpus = getJson(agent, "/api/v1/hardware/gpus");
  ASSERT_EQ(gpus.at("gpus").as_array().size(), 8u);
  EXPECT_TRUE(gpus.at("gpus").at(0).at("temperature_celsius").is_number());
  auto power = getJson(agent, "/api/v1/hardware/power");
  EXPECT_EQ(power.at("psus").as_array().size(), 2u);
  EXPECT_EQ(power.at("upses").as_array().size(), 2u);

  auto events = waitFor(agent, "/api/v1/hardware/events?severity=critical",
                        [](const auto& e) { return !e.at("events").as_array().empty(); });
  ASSERT_FALSE(events.at("events").as_array().empty());
  EXPECT_EQ(events.at("events").at(0).at("subject").as_string(), "coretemp-isa-0000/temp1");
  EXPECT_EQ(events.at("events").at(0).at("type").as_string(), "sensor_status");
  EXPECT_NE(agent.log().find("Package id 0 (coretemp-isa-0000/temp1) is critical"),
            std::string::npos)
      << agent.log();
}

// Admins read responses with curl and jq: numbers are plain (412, 0.25), never 4.12E2.
TEST(Hardware, RawResponsesWriteNumbersInPlainForm) {
  Agent agent(simulated());
  waitFor(agent, "/api/v1/hardware", [](const auto& s) { return s.at("upses").as_int64() == 2; });
  auto reply = viaSocket(agent, {.path = "/api/v1/hardware/power"});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_NE(reply.body.find("\"value\":"), std::string::npos) << reply.body;
  for (auto exponent : {"E+", "E-", "E0", "E1", "E2", "E3", "e+", "e-"}) {
    EXPECT_EQ(reply.body.find(exponent), std::string::npos) << exponent << " in " << reply.body;
  }
  EXPECT_NE(reply.body.find("\"hysteresis\":0"), std::string::npos) << reply.body;
}

TEST(Hardware, BadQueriesAre400WithTheParameter) {
  Agent agent(simulated());
  auto kind = viaSocket(agent, {.path = "/api/v1/hardware/sensors?kind=heat"});
  EXPECT_EQ(kind.status, 400);
  EXPECT_EQ(errorCode(kind), "invalid_field");
  EXPECT_NE(kind.body.find("unknown kind 'heat'"), std::string::npos) << kind.body;
  EXPECT_EQ(viaSocket(agent, {.path = "/api/v1/hardware/sensors?colour=red"}).status, 400);
  EXPECT_EQ(viaSocket(agent, {.path = "/api/v1/hardware?x=1"}).status, 400);
  EXPECT_EQ(viaSocket(agent, {.path = "/api/v1/hardware/events?limit=0"}).status, 400);
  EXPECT_EQ(viaSocket(agent, {.path = "/api/v1/hardware/events?limit=5000"}).status, 400);
  auto history = "/api/v1/hardware/sensors/coretemp-isa-0000/temp1/history";
  EXPECT_EQ(viaSocket(agent, {.path = std::string(history) + "?from=yesterday"}).status, 400);
  EXPECT_EQ(viaSocket(agent, {.path = std::string(history) + "?from=200&to=100"}).status, 400);
  EXPECT_EQ(viaSocket(agent, {.path = std::string(history) + "?step=0"}).status, 400);
  auto unknown = viaSocket(agent, {.path = "/api/v1/hardware/sensors/nope/temp1/history"});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(viaTls(agent, {.path = "/api/v1/hardware"}).status, 401);
}

TEST(Hardware, MetricsUseExporterNamesAndParse) {
  Agent agent(simulated());
  waitFor(agent, "/api/v1/hardware", [](const auto& s) { return s.at("gpus").as_int64() == 8; });
  auto reply = viaSocket(agent, {.path = "/metrics"});
  ASSERT_EQ(reply.status, 200);
  for (const char* name :
       {"node_hwmon_temp_celsius{chip=\"coretemp-isa-0000\",sensor=\"temp1\"} ",
        "node_hwmon_fan_rpm{chip=\"nct6798-isa-0290\",sensor=\"fan1\"} ", "node_hwmon_in_volts{",
        "node_hwmon_power_watt{", "node_hwmon_pwm{",
        "node_hwmon_sensor_label{chip=\"coretemp-isa-0000\",sensor=\"temp1\",label=\"Package id "
        "0\"} 1",
        "node_hwmon_chip_names{chip=\"nct6798-isa-0290\",chip_name=\"nct6798\"} 1",
        "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-", "DCGM_FI_DEV_POWER_USAGE{",
        "DCGM_FI_DEV_FB_USED{", "DCGM_FI_DEV_XID_ERRORS{",
        "network_ups_tools_battery_charge{ups=\"ups1\"} 100",
        "network_ups_tools_ups_status{ups=\"ups1\",flag=\"OL\"} 1",
        "network_ups_tools_ups_status{ups=\"ups1\",flag=\"OB\"} 0", "aibox_hardware_simulated 1"}) {
    EXPECT_NE(reply.body.find(name), std::string::npos) << name;
  }
  // promtool parses everything; its only complaints are the dcgm-exporter names and labels
  // that are kept as they are for existing dashboards.
  auto check = run({"promtool", "check", "metrics"}, reply.body);
  std::istringstream lines(check.out + check.err);
  for (std::string line; std::getline(lines, line);) {
    bool dcgmStyle = line.starts_with("DCGM_FI_DEV_") &&
                     (line.find("should be written in 'snake_case'") != std::string::npos ||
                      line.find("should have \"_total\" suffix") != std::string::npos);
    EXPECT_TRUE(dcgmStyle) << line;
  }
}

TEST(Hardware, HistorySurvivesARestart) {
  TempDir root;
  {
    Agent agent(root.path(), simulated());
    waitFor(agent, "/api/v1/hardware", [](const auto& s) { return s.at("gpus").as_int64() == 8; });
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  }  // SIGTERM: the agent writes the samples it holds before it exits
  Agent agent(root.path(), AgentOptions{.args = {"--hardware.sources=nut"}});
  auto raw = getJson(agent, "/api/v1/hardware/sensors/coretemp-isa-0000/temp1/history?step=1");
  EXPECT_EQ(raw.at("tier").as_string(), "raw");
  EXPECT_GE(raw.at("points").as_array().size(), 2u) << json::serialize(raw);
  auto minutes =
      getJson(agent, "/api/v1/hardware/sensors/gpu-0000:18:00.0/temperature/history?step=1m");
  EXPECT_EQ(minutes.at("tier").as_string(), "minute");
  ASSERT_FALSE(minutes.at("points").as_array().empty());
  const auto& point = minutes.at("points").at(0);
  EXPECT_LE(point.at("min").as_double(), point.at("avg").as_double());
  EXPECT_LE(point.at("avg").as_double(), point.at("max").as_double());
}

TEST(Hardware, ABrokenSourceDoesNotStopTheOthersNorSpamTheLog) {
  Agent agent(
      AgentOptions{.args = {"--hardware.sources=sim,nvml,nut",
                            "--hardware.nvml_library=/nonexistent/libnvidia-ml.so.1",
                            "--hardware.ups=ups9@127.0.0.1:1", "--hardware.poll_interval=0.1",
                            "--hardware.ups_poll_interval=0.1"}});
  auto summary = waitFor(agent, "/api/v1/hardware", [](const auto& s) {
    return s.at("sources").as_array().size() == 3 && s.at("gpus").as_int64() == 8;
  });
  std::map<std::string, std::string> problems;
  for (const auto& s : summary.at("sources").as_array()) {
    problems[std::string(s.at("name").as_string())] =
        s.at("problem").is_null() ? "" : std::string(s.at("problem").as_string());
  }
  EXPECT_EQ(problems["sim"], "");
  EXPECT_NE(problems["nvml"].find("/nonexistent/libnvidia-ml.so.1"), std::string::npos);
  EXPECT_EQ(summary.at("upses").as_int64(), 3);  // the simulated two and ups9
  auto power = waitFor(agent, "/api/v1/hardware/power", [](const auto& p) {
    for (const auto& u : p.at("upses").as_array()) {
      if (u.at("name").as_string() == "ups9" && !u.at("communicating").as_bool()) {
        return true;
      }
    }
    return false;
  });
  bool lost = false;
  for (const auto& u : power.at("upses").as_array()) {
    lost = lost || (u.at("name").as_string() == "ups9" && !u.at("communicating").as_bool() &&
                    u.at("status").as_string() == "critical");
  }
  EXPECT_TRUE(lost) << json::serialize(power);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // several more failed polls
  auto log = agent.log();
  std::size_t count = 0;
  for (auto at = log.find("cannot load /nonexistent"); at != std::string::npos;
       at = log.find("cannot load /nonexistent", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << log;
}

TEST(Hardware, AiboxctlHwThroughTheAgentAndDirect) {
  Agent agent(simulated());
  waitFor(agent, "/api/v1/hardware", [](const auto& s) { return s.at("gpus").as_int64() == 8; });
  std::string root = agent.root().string();
  auto summary = run({AIBOX_CTL_BIN, "--root", root, "hw"});
  ASSERT_EQ(summary.exitCode, 0) << summary.err;
  EXPECT_NE(summary.out.find("(SIMULATED hardware)"), std::string::npos) << summary.out;
  auto fans = run({AIBOX_CTL_BIN, "--root", root, "--json", "hw", "sensors", "--kind", "fan"});
  ASSERT_EQ(fans.exitCode, 0) << fans.err;
  EXPECT_GE(boost::json::parse(fans.out).at("sensors").as_array().size(), 6u);
  auto gpus = run({AIBOX_CTL_BIN, "--root", root, "hw", "gpus"});
  EXPECT_NE(gpus.out.find("Simulated H20 96GB"), std::string::npos) << gpus.out;
  auto power = run({AIBOX_CTL_BIN, "--root", root, "hw", "power"});
  EXPECT_NE(power.out.find("ups1@localhost"), std::string::npos) << power.out;
  EXPECT_NE(power.out.find("pmbus-i2c-7-58"), std::string::npos) << power.out;
  EXPECT_EQ(run({AIBOX_CTL_BIN, "--root", root, "hw", "events"}).exitCode, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto history = run({AIBOX_CTL_BIN, "--root", root, "hw", "history", "coretemp-isa-0000/temp1"});
  EXPECT_EQ(history.exitCode, 0) << history.err;
  EXPECT_EQ(run({AIBOX_CTL_BIN, "--root", root, "hw", "history", "nonsense"}).exitCode, 2);
  EXPECT_EQ(run({AIBOX_CTL_BIN, "--root", root, "hw", "frob"}).exitCode, 2);
  EXPECT_EQ(run({AIBOX_CTL_BIN, "--root", root, "hw", "sensors", "--kind", "heat"}).exitCode, 2);
}

TEST(Hardware, AiboxctlHwDirectWorksWithoutTheAgent) {
  TempDir root;
  writeFile(root.path() / "etc/aibox/aibox.conf",
            "[server]\nlisten = 127.0.0.1:1\n[hardware]\nsources = sim\n");
  auto direct = run({AIBOX_CTL_BIN, "--root", root.path().string(), "hw", "gpus", "--direct"});
  ASSERT_EQ(direct.exitCode, 0) << direct.err;
  EXPECT_NE(direct.out.find("SIMULATED hardware"), std::string::npos) << direct.out;
  auto json =
      run({AIBOX_CTL_BIN, "--root", root.path().string(), "--json", "hw", "sensors", "--direct"});
  ASSERT_EQ(json.exitCode, 0) << json.err;
  EXPECT_TRUE(boost::json::parse(json.out).at("simulated").as_bool());
  auto viaAgent = run({AIBOX_CTL_BIN, "--root", root.path().string(), "hw"});
  EXPECT_EQ(viaAgent.exitCode, 3);
}

}  // namespace
}  // namespace aibox::test
