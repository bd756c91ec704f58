// Threshold evaluation with hysteresis, overrides, UPS statuses and addresses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "hwmon/hwmon.hpp"
#include "tests/hwmon/fake_sysfs.hpp"

namespace aibox::hwmon {
namespace {

Reading reading(const std::string& id, Kind kind, std::optional<double> value,
                Thresholds thresholds) {
  Reading r;
  r.id = id;
  r.source = "test";
  r.chip = id.substr(0, id.find('/'));
  r.sensor = id.substr(id.find('/') + 1);
  r.label = r.sensor;
  r.kind = kind;
  r.value = value;
  r.thresholds = thresholds;
  return r;
}

Thresholds high(double warning, double critical, std::optional<double> hysteresis = {}) {
  Thresholds t;
  t.warningHigh = warning;
  t.criticalHigh = critical;
  t.hysteresis = hysteresis;
  return t;
}

Thresholds low(double warning, double critical, std::optional<double> hysteresis = {}) {
  Thresholds t;
  t.warningLow = warning;
  t.criticalLow = critical;
  t.hysteresis = hysteresis;
  return t;
}

// Feeds one reading through the monitor, the way a source's poll would.
struct Step {
  Status status;
  std::vector<Event> events;
  Thresholds thresholds;  // after overrides
};

Step evaluate(Monitor& monitor, Reading r) {
  Report report;
  report.source = "test";
  report.time = std::chrono::system_clock::now();
  report.readings.push_back(std::move(r));
  monitor.evaluate(report);
  return {report.readings.front().status, report.events, report.readings.front().thresholds};
}

// The statuses a value series goes through, and how many events it raised.
std::pair<std::vector<Status>, int> walk(Monitor& monitor, const std::string& id, Kind kind,
                                         const Thresholds& t,
                                         const std::vector<std::optional<double>>& values) {
  std::vector<Status> statuses;
  int events = 0;
  for (auto v : values) {
    auto step = evaluate(monitor, reading(id, kind, v, t));
    statuses.push_back(step.status);
    events += static_cast<int>(step.events.size());
  }
  return {statuses, events};
}

using S = Status;

TEST(Thresholds, RisingThroughWarningAndCriticalClearsOnlyPastHysteresis) {
  Monitor monitor;
  auto t = high(80, 90, 2);
  auto [statuses, events] =
      walk(monitor, "chip/temp1", Kind::temperature, t, {70, 80, 85, 90, 89, 88, 87.9, 78.5, 77.9});
  EXPECT_EQ(statuses, (std::vector{S::ok, S::warning, S::warning, S::critical, S::critical,
                                   S::critical, S::warning, S::warning, S::ok}));
  EXPECT_EQ(events, 4);  // warning, critical, back to warning, back to ok
}

TEST(Thresholds, EventsCarryStatusValueAndBoundsAndAreRaisedOnChangeOnly) {
  Monitor monitor;
  auto t = high(80, 90, 2);
  EXPECT_TRUE(evaluate(monitor, reading("chip/temp1", Kind::temperature, 70, t)).events.empty());
  auto step = evaluate(monitor, reading("chip/temp1", Kind::temperature, 91, t));
  ASSERT_EQ(step.events.size(), 1u);
  const auto& e = step.events.front();
  EXPECT_EQ(e.subject, "chip/temp1");
  EXPECT_EQ(e.source, "test");
  EXPECT_EQ(e.type, "sensor_status");
  EXPECT_EQ(e.severity, S::critical);
  EXPECT_EQ(e.value, 91);
  EXPECT_NE(e.message.find("critical"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("critical high 90"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("91 celsius"), std::string::npos) << e.message;
  EXPECT_TRUE(evaluate(monitor, reading("chip/temp1", Kind::temperature, 92, t)).events.empty());
  EXPECT_TRUE(evaluate(monitor, reading("chip/temp1", Kind::temperature, 95, t)).events.empty());
}

TEST(Thresholds, FirstReadingRaisesAnEventOnlyWhenNotOk) {
  Monitor monitor;
  auto t = high(80, 90, 2);
  EXPECT_TRUE(evaluate(monitor, reading("chip/a", Kind::temperature, 20, t)).events.empty());
  EXPECT_EQ(evaluate(monitor, reading("chip/b", Kind::temperature, 85, t)).events.size(), 1u);
}

TEST(Thresholds, ValuesFlappingAroundAThresholdRaiseNoExtraEvents) {
  Monitor monitor;
  auto t = high(80, 90, 2);
  auto [statuses, events] = walk(monitor, "chip/temp1", Kind::temperature, t,
                                 {79.9, 80, 79.5, 80.1, 78.5, 80, 79, 78.1, 80.2});
  EXPECT_EQ(events, 1);
  EXPECT_EQ(statuses.front(), S::ok);
  EXPECT_TRUE(
      std::all_of(statuses.begin() + 1, statuses.end(), [](Status s) { return s == S::warning; }));
}

TEST(Thresholds, LowThresholdsAssertAtOrBelowAndClearAboveByHysteresis) {
  Monitor monitor;
  auto t = low(11.4, 10.8, 0.1);
  auto [statuses, events] = walk(monitor, "chip/in1", Kind::voltage, t,
                                 {12.0, 11.4, 11.45, 10.8, 10.85, 10.95, 11.48, 11.51});
  EXPECT_EQ(statuses, (std::vector{S::ok, S::warning, S::warning, S::critical, S::critical,
                                   S::warning, S::warning, S::ok}));
  EXPECT_EQ(events, 4);
}

TEST(Thresholds, DefaultHysteresisIsOnePercentOfTheRange) {
  Thresholds none;
  EXPECT_DOUBLE_EQ(defaultHysteresis(Kind::temperature, none), 2.55);
  EXPECT_DOUBLE_EQ(defaultHysteresis(Kind::fan, none), 250);
  for (auto kind : {Kind::humidity, Kind::pwm, Kind::utilization, Kind::charge, Kind::load}) {
    EXPECT_DOUBLE_EQ(defaultHysteresis(kind, none), 1) << kindName(kind);
  }
  // Other kinds: 1 % of the largest threshold, by magnitude.
  EXPECT_DOUBLE_EQ(defaultHysteresis(Kind::voltage, low(11.4, 10.8)), 0.114);
  EXPECT_DOUBLE_EQ(defaultHysteresis(Kind::power, high(2800, 3000)), 30);
  Thresholds negative;
  negative.criticalLow = -500;
  negative.warningHigh = 100;
  EXPECT_DOUBLE_EQ(defaultHysteresis(Kind::current, negative), 5);
  EXPECT_DOUBLE_EQ(defaultHysteresis(Kind::energy, none), 0);
}

TEST(Thresholds, MonitorUsesTheDefaultHysteresisWhenNoneIsSet) {
  Monitor monitor;
  auto [statuses, events] =
      walk(monitor, "chip/temp1", Kind::temperature, high(80, 90), {80, 77.5, 77.46, 77.4});
  EXPECT_EQ(statuses, (std::vector{S::warning, S::warning, S::warning, S::ok}));
  EXPECT_EQ(events, 2);
}

TEST(Thresholds, FiveFailedReadsMakeASensorNonFunctionalAndAGoodReadRecovers) {
  Monitor monitor;
  auto t = high(80, 90, 2);
  std::vector<std::optional<double>> values{50};
  values.insert(values.end(), Monitor::kFailuresToNonFunctional + 2, std::nullopt);
  values.emplace_back(51);
  auto [statuses, events] = walk(monitor, "chip/temp1", Kind::temperature, t, values);
  EXPECT_EQ(statuses,
            (std::vector{S::ok, S::unavailable, S::unavailable, S::unavailable, S::unavailable,
                         S::nonFunctional, S::nonFunctional, S::nonFunctional, S::ok}));
  EXPECT_EQ(events, 3);  // unavailable, non_functional, ok
}

TEST(Thresholds, AGoodReadResetsTheFailureCount) {
  Monitor monitor;
  auto t = high(80, 90, 2);
  std::vector<std::optional<double>> values;
  for (int round = 0; round < 3; ++round) {
    values.insert(values.end(), Monitor::kFailuresToNonFunctional - 1, std::nullopt);
    values.emplace_back(40);
  }
  auto [statuses, events] = walk(monitor, "chip/temp1", Kind::temperature, t, values);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), S::nonFunctional), 0);
  EXPECT_EQ(statuses.back(), S::ok);
}

TEST(Thresholds, NonFunctionalEventSaysHowManyReadsFailed) {
  Monitor monitor;
  Step step;
  for (int i = 0; i < Monitor::kFailuresToNonFunctional; ++i) {
    step = evaluate(monitor, reading("chip/fan1", Kind::fan, std::nullopt, {}));
  }
  ASSERT_EQ(step.events.size(), 1u);
  EXPECT_EQ(step.events.front().severity, S::nonFunctional);
  EXPECT_FALSE(step.events.front().value);
  EXPECT_NE(step.events.front().message.find("after 5 failed reads"), std::string::npos)
      << step.events.front().message;
}

TEST(Thresholds, OverridesApplyByGlobAndKeepUnsetBounds) {
  std::string error;
  auto cpu = parseThresholdOverride("coretemp-*/temp*: warning_high=85, critical_high=95", error);
  ASSERT_TRUE(cpu) << error;
  Monitor monitor({*cpu});
  Thresholds original = high(80, 100);
  original.warningLow = 5;
  auto step =
      evaluate(monitor, reading("coretemp-isa-0000/temp2", Kind::temperature, 82, original));
  EXPECT_EQ(step.status, S::ok);
  EXPECT_EQ(step.thresholds.warningHigh, 85);
  EXPECT_EQ(step.thresholds.criticalHigh, 95);
  EXPECT_EQ(step.thresholds.warningLow, 5);
  auto other =
      evaluate(monitor, reading("nct6798-isa-0290/temp2", Kind::temperature, 82, original));
  EXPECT_EQ(other.status, S::warning);
  EXPECT_EQ(other.thresholds.warningHigh, 80);
}

TEST(Thresholds, LaterOverridesWinOverEarlierOnes) {
  std::string error;
  auto all = parseThresholdOverride("*: warning_high=50", error);
  auto gpu = parseThresholdOverride("gpu-*/temperature: warning_high=70, hysteresis=0", error);
  ASSERT_TRUE(all && gpu) << error;
  Monitor monitor({*all, *gpu});
  auto step = evaluate(monitor, reading("gpu-0000:18:00.0/temperature", Kind::temperature, 60, {}));
  EXPECT_EQ(step.thresholds.warningHigh, 70);
  EXPECT_EQ(step.thresholds.hysteresis, 0);
  EXPECT_EQ(step.status, S::ok);
}

TEST(ThresholdOverride, ParsesEveryKeyWithSpaces) {
  std::string error;
  auto o = parseThresholdOverride(
      "  pmbus-*/in1 : warning_low=200,critical_low = 180, warning_high=250, "
      "critical_high=264.5, hysteresis=2  ",
      error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->glob, "pmbus-*/in1");
  EXPECT_EQ(o->thresholds.warningLow, 200);
  EXPECT_EQ(o->thresholds.criticalLow, 180);
  EXPECT_EQ(o->thresholds.warningHigh, 250);
  EXPECT_EQ(o->thresholds.criticalHigh, 264.5);
  EXPECT_EQ(o->thresholds.hysteresis, 2);
}

TEST(ThresholdOverride, HysteresisAloneIsEnough) {
  std::string error;
  auto o = parseThresholdOverride("*/fan*: hysteresis=100", error);
  ASSERT_TRUE(o) << error;
  EXPECT_TRUE(o->thresholds.empty());
  EXPECT_EQ(o->thresholds.hysteresis, 100);
}

TEST(ThresholdOverride, BadInputsSayWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"coretemp-*/temp1 warning_high=80", "expected 'GLOB: key=value, ...'"},
      {" : warning_high=80", "the sensor glob before ':' is empty"},
      {"x: warning_high=eighty", "'warning_high=eighty' is not KEY=NUMBER"},
      {"x: warning_high", "'warning_high' is not KEY=NUMBER"},
      {"x: warning_high=inf", "'warning_high=inf' is not KEY=NUMBER"},
      {"x: warning_high=80,,critical_high=90", "'' is not KEY=NUMBER"},
      {"x: maximum=80", "'maximum' is not one of warning_low, warning_high"},
      {"x: hysteresis=-1", "hysteresis (>= 0)"},
      {"x:", "no thresholds given after ':'"},
      {"x:  ,  ", "'' is not KEY=NUMBER"},
  };
  for (const auto& [text, message] : cases) {
    std::string error;
    EXPECT_FALSE(parseThresholdOverride(text, error)) << text;
    EXPECT_NE(error.find(message), std::string::npos) << text << " → " << error;
  }
}

TEST(Thresholds, FanMinimumOfZeroIsTheKernelsNoMinimum) {
  Monitor monitor;
  Thresholds zero;
  zero.warningLow = 0;
  auto stopped = evaluate(monitor, reading("nct/fan2", Kind::fan, 0, zero));
  EXPECT_EQ(stopped.status, S::ok);
  EXPECT_FALSE(stopped.thresholds.warningLow);
  EXPECT_TRUE(stopped.events.empty());
  Thresholds real;
  real.warningLow = 600;
  EXPECT_EQ(evaluate(monitor, reading("nct/fan3", Kind::fan, 500, real)).status, S::warning);
  // Only fans: a zero minimum elsewhere is a real bound.
  EXPECT_EQ(evaluate(monitor, reading("nct/in9", Kind::voltage, 0, zero)).status, S::warning);
}

Ups ups(std::vector<std::string> flags, bool communicating = true) {
  Ups u;
  u.name = "ups1";
  u.host = "localhost";
  u.chip = "ups-ups1";
  u.statusFlags = std::move(flags);
  u.communicating = communicating;
  u.batteryCharge = 80;
  return u;
}

TEST(UpsStatus, FlagsMapToStatuses) {
  EXPECT_EQ(ups({"OL"}).status(), S::ok);
  EXPECT_EQ(ups({"OL", "CHRG"}).status(), S::ok);
  EXPECT_EQ(ups({}).status(), S::ok);
  EXPECT_EQ(ups({"OB", "DISCHRG"}).status(), S::warning);
  EXPECT_EQ(ups({"OL", "RB"}).status(), S::warning);
  EXPECT_EQ(ups({"OL", "BYPASS"}).status(), S::warning);
  EXPECT_EQ(ups({"OFF"}).status(), S::warning);
  EXPECT_EQ(ups({"OB", "LB"}).status(), S::critical);
  EXPECT_EQ(ups({"OL", "FSD"}).status(), S::critical);
  EXPECT_EQ(ups({"OL", "OVER"}).status(), S::critical);
  EXPECT_EQ(ups({"OL"}, false).status(), S::critical);
  EXPECT_TRUE(ups({"OB", "LB"}).has("LB"));
  EXPECT_FALSE(ups({"OB", "LB"}).has("L"));
}

TEST(UpsStatus, MonitorRaisesAnEventForEachChange) {
  Monitor monitor;
  std::vector<std::pair<Ups, std::optional<Status>>> steps{
      {ups({"OL"}), std::nullopt},
      {ups({"OL", "CHRG"}), std::nullopt},
      {ups({"OB", "DISCHRG"}), S::warning},
      {ups({"OB", "DISCHRG"}), std::nullopt},
      {ups({"OB", "LB"}), S::critical},
      {ups({"OL", "CHRG"}), S::ok},
      {ups({"OL", "CHRG"}, false), S::critical},
  };
  for (const auto& [u, expected] : steps) {
    Report report;
    report.source = "nut";
    report.upses.push_back(u);
    monitor.evaluate(report);
    if (!expected) {
      EXPECT_TRUE(report.events.empty()) << report.events.front().message;
      continue;
    }
    ASSERT_EQ(report.events.size(), 1u);
    const auto& e = report.events.front();
    EXPECT_EQ(e.type, "ups_status");
    EXPECT_EQ(e.subject, "ups-ups1");
    EXPECT_EQ(e.severity, *expected);
    EXPECT_EQ(e.value, 80);
    EXPECT_NE(e.message.find("ups1@localhost"), std::string::npos) << e.message;
  }
}

TEST(UpsStatus, FirstReportRaisesAnEventOnlyWhenNotOk) {
  Monitor monitor;
  Report report;
  report.upses = {ups({"OL"}), ups({"OB", "LB"})};
  report.upses[1].chip = "ups-ups2";
  report.upses[1].name = "ups2";
  monitor.evaluate(report);
  ASSERT_EQ(report.events.size(), 1u);
  EXPECT_EQ(report.events.front().subject, "ups-ups2");
  EXPECT_NE(report.events.front().message.find("status OB LB"), std::string::npos)
      << report.events.front().message;
}

TEST(UpsAddress, ParsesNameHostAndPort) {
  auto plain = parseUpsAddress("ups1");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->name, "ups1");
  EXPECT_EQ(plain->host, "localhost");
  EXPECT_EQ(plain->port, 3493);
  auto host = parseUpsAddress("rack-ups_2.a@nas.example.com");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->name, "rack-ups_2.a");
  EXPECT_EQ(host->host, "nas.example.com");
  EXPECT_EQ(host->port, 3493);
  auto port = parseUpsAddress("ups1@10.0.0.5:3494");
  ASSERT_TRUE(port);
  EXPECT_EQ(port->host, "10.0.0.5");
  EXPECT_EQ(port->port, 3494);
  auto v6 = parseUpsAddress("ups1@[::1]");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 3493);
  auto v6port = parseUpsAddress("ups1@[fe80::1]:3500");
  ASSERT_TRUE(v6port);
  EXPECT_EQ(v6port->host, "fe80::1");
  EXPECT_EQ(v6port->port, 3500);
}

TEST(UpsAddress, RejectsMalformedAddresses) {
  for (const char* text : {"", "@host", "ups 1", "ups1@", "ups1@:3493", "ups1@host:", "ups1@host:0",
                           "ups1@host:65536", "ups1@host:34x", "ups1@host:-1", "ups/1@host",
                           "ups1@[]", "ups1@::1", "ups1@fe80::1:3493"}) {
    EXPECT_FALSE(parseUpsAddress(text)) << text;
  }
}

}  // namespace
}  // namespace aibox::hwmon
