// Chip naming, the sysfs source on a fake tree under a root, and fan PWM writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "hwmon/hwmon.hpp"
#include "tests/hwmon/fake_sysfs.hpp"

namespace aibox::hwmon {
namespace {

TEST(ChipName, FollowsTheDeviceLinkAsLibsensorsDoes) {
  test::TempDir dir;
  const auto& root = dir.path();
  auto platform = test::addHwmon(root, 0, "nct6775", {"platform/nct6775.656", "platform"}, {});
  auto coretemp = test::addHwmon(root, 1, "coretemp", {"platform/coretemp.0", "platform"}, {});
  auto pmbus =
      test::addHwmon(root, 2, "pmbus", {"pci0000:00/0000:00:14.3/i2c-7/7-0058", "i2c"}, {});
  auto k10temp = test::addHwmon(root, 3, "k10temp", {"pci0000:00/0000:00:18.3", "pci"}, {});
  auto virtualChip = test::addHwmon(root, 4, "acpitz", {"virtual", ""}, {});
  auto nvme = test::addHwmon(root, 5, "nvme", {"pci0000:40/0000:41:00.0", "pci"}, {});
  EXPECT_EQ(chipName(platform), "nct6775-isa-0290");
  EXPECT_EQ(chipName(coretemp), "coretemp-isa-0000");
  EXPECT_EQ(chipName(pmbus), "pmbus-i2c-7-58");
  EXPECT_EQ(chipName(k10temp), "k10temp-pci-00c3");
  EXPECT_EQ(chipName(virtualChip), "acpitz-virtual-0");
  EXPECT_EQ(chipName(nvme), "nvme-pci-4100");
}

TEST(ChipName, NeedsANameFile) {
  test::TempDir dir;
  auto hwmon = test::addHwmon(dir.path(), 0, "k10temp", {"pci0000:00/0000:00:18.3", "pci"}, {});
  std::filesystem::remove(hwmon / "name");
  EXPECT_FALSE(chipName(hwmon));
  EXPECT_FALSE(chipName(dir.path() / "no-such-dir"));
}

// A board chip and a PSU as the kernel lays them out, for the sysfs source.
std::filesystem::path sysfsBoard(const std::filesystem::path& root) {
  auto board = test::addHwmon(root, 0, "nct6798", {"platform/nct6775.656", "platform"},
                              {{"temp1_input", "34000"},
                               {"temp1_label", "SYSTIN"},
                               {"temp1_max", "80000"},
                               {"temp1_crit", "95000"},
                               {"fan1_input", "1204"},
                               {"fan1_min", "300"},
                               {"in0_input", "1032"},
                               {"in0_min", "700"},
                               {"in0_max", "1500"},
                               {"in0_lcrit", "600"},
                               {"in0_crit", "1600"},
                               {"in2_input", "garbage"},
                               {"pwm1", "128"},
                               {"pwm1_enable", "5"},
                               {"pwm2", "255"},
                               {"pwm2_enable", "1"}});
  test::addHwmon(root, 1, "pmbus", {"pci0000:00/0000:00:14.3/i2c-7/7-0058", "i2c"},
                 {{"curr1_input", "86500"},
                  {"curr1_label", "iout1"},
                  {"curr1_crit", "120000"},
                  {"power1_input", "1198000000"},
                  {"power1_label", "pin"},
                  {"power1_max", "2000000000"},
                  {"energy1_input", "5000000"},
                  {"humidity1_input", "45500"}});
  return board;
}

std::map<std::string, Reading> byId(const Report& report) {
  std::map<std::string, Reading> readings;
  for (const auto& r : report.readings) {
    readings.emplace(r.id, r);
  }
  return readings;
}

TEST(SysfsSource, ReadsValuesInUnitsWithLabelsAndThresholds) {
  test::TempDir dir;
  sysfsBoard(dir.path());
  auto source = makeSysfsSource(dir.path());
  EXPECT_EQ(source->name(), "sysfs");
  auto report = source->poll();
  EXPECT_FALSE(report.problem) << *report.problem;
  EXPECT_FALSE(report.simulated);
  auto readings = byId(report);

  const auto& temp = readings.at("nct6798-isa-0290/temp1");
  EXPECT_EQ(temp.source, "sysfs");
  EXPECT_EQ(temp.chip, "nct6798-isa-0290");
  EXPECT_EQ(temp.sensor, "temp1");
  EXPECT_EQ(temp.label, "SYSTIN");
  EXPECT_EQ(temp.kind, Kind::temperature);
  EXPECT_DOUBLE_EQ(*temp.value, 34);
  EXPECT_DOUBLE_EQ(*temp.thresholds.warningHigh, 80);
  EXPECT_DOUBLE_EQ(*temp.thresholds.criticalHigh, 95);
  EXPECT_FALSE(temp.thresholds.warningLow);

  const auto& fan = readings.at("nct6798-isa-0290/fan1");
  EXPECT_EQ(fan.label, "fan1");
  EXPECT_DOUBLE_EQ(*fan.value, 1204);
  EXPECT_DOUBLE_EQ(*fan.thresholds.warningLow, 300);

  const auto& vcore = readings.at("nct6798-isa-0290/in0");
  EXPECT_EQ(vcore.kind, Kind::voltage);
  EXPECT_DOUBLE_EQ(*vcore.value, 1.032);
  EXPECT_DOUBLE_EQ(*vcore.thresholds.warningLow, 0.7);
  EXPECT_DOUBLE_EQ(*vcore.thresholds.warningHigh, 1.5);
  EXPECT_DOUBLE_EQ(*vcore.thresholds.criticalLow, 0.6);
  EXPECT_DOUBLE_EQ(*vcore.thresholds.criticalHigh, 1.6);

  EXPECT_FALSE(readings.at("nct6798-isa-0290/in2").value) << "unparsable is absent, not 0";

  const auto& current = readings.at("pmbus-i2c-7-58/curr1");
  EXPECT_EQ(current.label, "iout1");
  EXPECT_DOUBLE_EQ(*current.value, 86.5);
  EXPECT_DOUBLE_EQ(*current.thresholds.criticalHigh, 120);
  const auto& power = readings.at("pmbus-i2c-7-58/power1");
  EXPECT_EQ(power.kind, Kind::power);
  EXPECT_DOUBLE_EQ(*power.value, 1198);
  EXPECT_DOUBLE_EQ(*power.thresholds.warningHigh, 2000);
  EXPECT_DOUBLE_EQ(*readings.at("pmbus-i2c-7-58/energy1").value, 5);
  EXPECT_DOUBLE_EQ(*readings.at("pmbus-i2c-7-58/humidity1").value, 45.5);

  const auto& pwm1 = readings.at("nct6798-isa-0290/pwm1");
  EXPECT_EQ(pwm1.kind, Kind::pwm);
  EXPECT_NEAR(*pwm1.value, 50.2, 0.01);
  EXPECT_DOUBLE_EQ(*readings.at("nct6798-isa-0290/pwm2").value, 100);
  EXPECT_EQ(report.readings.size(), 10u);
}

TEST(SysfsSource, ValuesFollowTheFilesBetweenPolls) {
  test::TempDir dir;
  auto board = sysfsBoard(dir.path());
  auto source = makeSysfsSource(dir.path());
  EXPECT_DOUBLE_EQ(*byId(source->poll()).at("nct6798-isa-0290/temp1").value, 34);
  test::writeFile(board / "temp1_input", "81500\n");
  test::writeFile(board / "fan1_input", "");
  auto readings = byId(source->poll());
  EXPECT_DOUBLE_EQ(*readings.at("nct6798-isa-0290/temp1").value, 81.5);
  EXPECT_FALSE(readings.at("nct6798-isa-0290/fan1").value);
}

TEST(SysfsSource, NoHwmonDevicesIsAProblemNamingThePath) {
  test::TempDir dir;
  auto report = makeSysfsSource(dir.path())->poll();
  ASSERT_TRUE(report.problem);
  EXPECT_NE(report.problem->find((dir.path() / "class/hwmon").string()), std::string::npos)
      << *report.problem;
  EXPECT_TRUE(report.readings.empty());
}

TEST(Pwm, ListsChannelsAndSetPwmSwitchesToManual) {
  test::TempDir dir;
  auto board = sysfsBoard(dir.path());
  auto channels = listPwm(board);
  ASSERT_EQ(channels.size(), 2u);
  EXPECT_EQ(channels[0].index, 1);
  EXPECT_EQ(channels[0].duty, 128);
  EXPECT_EQ(channels[0].enable, 5);
  EXPECT_EQ(channels[1].duty, 255);
  setPwm(board, 1, 77);
  EXPECT_EQ(test::readFile(board / "pwm1_enable"), "1");
  EXPECT_EQ(test::readFile(board / "pwm1"), "77");
  auto after = listPwm(board);
  EXPECT_EQ(after[0].duty, 77);
  EXPECT_EQ(after[0].enable, 1);
}

TEST(Pwm, OutOfRangeDutyAndMissingChannelThrow) {
  test::TempDir dir;
  auto board = sysfsBoard(dir.path());
  EXPECT_THROW(setPwm(board, 1, 256), std::system_error);
  EXPECT_THROW(setPwm(board, 1, -1), std::system_error);
  EXPECT_EQ(test::readFile(board / "pwm1"), "128\n");
  try {
    setPwm(board, 7, 100);
    FAIL() << "pwm7 does not exist";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("pwm7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aibox::hwmon
