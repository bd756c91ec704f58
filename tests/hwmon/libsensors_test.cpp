// The real libsensors on fake sysfs trees of two servers: the tree's class directory is
// bind-mounted over /sys/class in a private mount namespace (libsensors insists that /sys is a
// real sysfs, so only /sys/class is replaced). libsensors reads the chips when it starts, so
// each test mounts its tree before it makes the source.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>

#include "hwmon/hwmon.hpp"
#include "tests/hwmon/fake_sysfs.hpp"
#include "tests/support/mount_sandbox.hpp"

namespace aibox::hwmon {
namespace {

namespace stdfs = std::filesystem;

// Tree A: an Intel board with a Nuvoton NCT6798D super-I/O (temperatures, several fans, voltages
// before the board's dividers, PWM) and the CPU's coretemp.
void buildIntelServer(const stdfs::path& root) {
  test::addHwmon(root, 1, "coretemp", {"platform/coretemp.0", "platform"},
                 {{"temp1_input", "52000"},
                  {"temp1_label", "Package id 0"},
                  {"temp1_max", "84000"},
                  {"temp1_crit", "100000"},
                  {"temp1_crit_alarm", "0"},
                  {"temp2_input", "49000"},
                  {"temp2_label", "Core 0"},
                  {"temp2_max", "84000"},
                  {"temp2_crit", "100000"},
                  {"temp3_input", "51000"},
                  {"temp3_label", "Core 1"},
                  {"temp3_max", "84000"},
                  {"temp3_crit", "100000"}});
  auto board = test::addHwmon(root, 2, "nct6798", {"platform/nct6775.656", "platform"},
                              {{"temp1_input", "34000"},
                               {"temp1_label", "SYSTIN"},
                               {"temp1_max", "80000"},
                               {"temp1_max_hyst", "75000"},
                               {"temp2_input", "45500"},
                               {"temp2_label", "CPUTIN"},
                               {"temp2_max", "90000"},
                               {"temp2_crit", "100000"},
                               {"fan1_input", "1204"},
                               {"fan1_min", "300"},
                               {"fan2_input", "0"},
                               {"fan2_min", "0"},
                               {"fan3_input", "987"},
                               {"fan3_min", "600"},
                               {"in0_input", "1032"},
                               {"in0_min", "700"},
                               {"in0_max", "1500"},
                               {"in1_input", "1008"},
                               {"in1_min", "950"},
                               {"in1_max", "1050"},
                               {"in4_input", "not a number"},
                               {"in5_input", "3300"},
                               {"pwm1", "128"},
                               {"pwm1_enable", "5"},
                               {"pwm2", "255"},
                               {"pwm2_enable", "1"}});
  // A sensor file the driver made unreadable.
  ::chmod((board / "in5_input").c_str(), 0);
}

// Tree B: an AMD server: k10temp on the northbridge's PCI function, a PMBus power supply on I2C
// bus 7 at 0x58, and ACPI's thermal zone without a device link.
void buildAmdServer(const stdfs::path& root) {
  test::addHwmon(root, 0, "k10temp", {"pci0000:00/0000:00:18.3", "pci"},
                 {{"temp1_input", "61250"},
                  {"temp1_label", "Tctl"},
                  {"temp3_input", "58000"},
                  {"temp3_label", "Tccd1"}});
  test::addHwmon(
      root, 1, "pmbus", {"pci0000:00/0000:00:14.3/i2c-7/7-0058", "i2c"},
      {{"in1_input", "230250"},      {"in1_label", "vin"},           {"in1_lcrit", "180000"},
       {"in1_min", "200000"},        {"in1_max", "250000"},          {"in1_crit", "264000"},
       {"in2_input", "12125"},       {"in2_label", "vout1"},         {"in2_lcrit", "10800"},
       {"in2_crit", "13200"},        {"curr1_input", "5210"},        {"curr1_label", "iin"},
       {"curr1_max", "10000"},       {"curr2_input", "86500"},       {"curr2_label", "iout1"},
       {"curr2_crit", "120000"},     {"power1_input", "1198000000"}, {"power1_label", "pin"},
       {"power1_max", "2000000000"}, {"power2_input", "1050000000"}, {"power2_label", "pout1"},
       {"temp1_input", "38000"},     {"temp1_max", "70000"},         {"temp1_crit", "85000"},
       {"fan1_input", "8240"}});
  test::addHwmon(root, 2, "acpitz", {"virtual", ""},
                 {{"temp1_input", "27800"}, {"temp1_crit", "105000"}});
}

std::map<std::string, Reading> byId(const Report& report) {
  std::map<std::string, Reading> readings;
  for (const auto& r : report.readings) {
    readings.emplace(r.id, r);
  }
  return readings;
}

class Libsensors : public ::testing::Test {
 protected:
  // Mounts the tree made by `build` over /sys/class and starts libsensors with `config`.
  void start(void (*build)(const stdfs::path&), const std::string& config) {
    build(dir_.path());
    mount_.emplace(dir_.path() / "class", "/sys/class");
    ASSERT_EQ(mount_->error(), "") << "the libsensors tests need mount rights (CI runs as root)";
    auto configFile = dir_.path() / "sensors.conf";
    test::writeFile(configFile, config);
    source_ = makeLibsensorsSource({configFile});
    report_ = source_->poll();
    readings_ = byId(report_);
  }

  const Reading& at(const std::string& id) const {
    auto it = readings_.find(id);
    if (it == readings_.end()) {
      std::string ids;
      for (const auto& [known, r] : readings_) {
        ids += " " + known;
      }
      throw std::out_of_range("no reading " + id + "; have:" + ids);
    }
    return it->second;
  }

  void TearDown() override {
    source_.reset();  // libsensors lets go of the tree before it is unmounted
    mount_.reset();
  }

  test::TempDir dir_;
  std::optional<test::Mount> mount_;
  std::unique_ptr<Source> source_;
  Report report_;
  std::map<std::string, Reading> readings_;
};

constexpr const char* kIntelConfig = R"(
chip "nct6798-isa-0290"
    label temp1 "System"
    label in0 "Vcore"
    label in1 "+12V"
    compute in1 @*12, @/12

chip "coretemp-isa-*"
    label temp1 "CPU Package"
)";

TEST_F(Libsensors, NamesIntelBoardChipsAsSensorsDoes) {
  start(buildIntelServer, kIntelConfig);
  EXPECT_FALSE(report_.problem) << *report_.problem;
  EXPECT_EQ(source_->name(), "libsensors");
  EXPECT_EQ(at("nct6798-isa-0290/temp2").chip, "nct6798-isa-0290");
  EXPECT_EQ(at("coretemp-isa-0000/temp2").chip, "coretemp-isa-0000");
  for (const auto& r : report_.readings) {
    EXPECT_EQ(r.source, "libsensors");
    EXPECT_EQ(r.id, r.chip + "/" + r.sensor);
  }
}

TEST_F(Libsensors, ReadsValuesInUnitsWithLabelsAndThresholds) {
  start(buildIntelServer, kIntelConfig);
  const auto& package = at("coretemp-isa-0000/temp1");
  EXPECT_EQ(package.kind, Kind::temperature);
  EXPECT_EQ(package.label, "CPU Package");  // sensors.conf wins over temp1_label
  EXPECT_DOUBLE_EQ(*package.value, 52);
  EXPECT_DOUBLE_EQ(*package.thresholds.warningHigh, 84);
  EXPECT_DOUBLE_EQ(*package.thresholds.criticalHigh, 100);
  EXPECT_FALSE(package.thresholds.warningLow);
  EXPECT_FALSE(package.thresholds.criticalLow);
  EXPECT_EQ(at("coretemp-isa-0000/temp2").label, "Core 0");
  EXPECT_EQ(at("coretemp-isa-0000/temp3").label, "Core 1");
  EXPECT_DOUBLE_EQ(*at("coretemp-isa-0000/temp3").value, 51);

  EXPECT_EQ(at("nct6798-isa-0290/temp1").label, "System");
  EXPECT_EQ(at("nct6798-isa-0290/temp2").label, "CPUTIN");
  EXPECT_DOUBLE_EQ(*at("nct6798-isa-0290/temp2").value, 45.5);
  EXPECT_DOUBLE_EQ(*at("nct6798-isa-0290/temp2").thresholds.criticalHigh, 100);

  const auto& fan1 = at("nct6798-isa-0290/fan1");
  EXPECT_EQ(fan1.kind, Kind::fan);
  EXPECT_EQ(fan1.label, "fan1");
  EXPECT_DOUBLE_EQ(*fan1.value, 1204);
  EXPECT_DOUBLE_EQ(*fan1.thresholds.warningLow, 300);
  EXPECT_DOUBLE_EQ(*at("nct6798-isa-0290/fan3").value, 987);

  const auto& vcore = at("nct6798-isa-0290/in0");
  EXPECT_EQ(vcore.kind, Kind::voltage);
  EXPECT_EQ(vcore.label, "Vcore");
  EXPECT_DOUBLE_EQ(*vcore.value, 1.032);
  EXPECT_DOUBLE_EQ(*vcore.thresholds.warningLow, 0.7);
  EXPECT_DOUBLE_EQ(*vcore.thresholds.warningHigh, 1.5);
}

TEST_F(Libsensors, ComputeLinesScaleValuesAndLimits) {
  start(buildIntelServer, kIntelConfig);
  const auto& twelve = at("nct6798-isa-0290/in1");
  EXPECT_EQ(twelve.label, "+12V");
  EXPECT_DOUBLE_EQ(*twelve.value, 1.008 * 12);
  EXPECT_DOUBLE_EQ(*twelve.thresholds.warningLow, 0.95 * 12);
  EXPECT_DOUBLE_EQ(*twelve.thresholds.warningHigh, 1.05 * 12);
}

TEST_F(Libsensors, WithoutComputeLinesValuesAreRaw) {
  start(buildIntelServer, "");
  EXPECT_DOUBLE_EQ(*at("nct6798-isa-0290/in1").value, 1.008);
  EXPECT_EQ(at("nct6798-isa-0290/in1").label, "in1");
  EXPECT_EQ(at("nct6798-isa-0290/temp1").label, "SYSTIN");
}

TEST_F(Libsensors, BrokenOrUnreadableAttributesAreAbsentNotZero) {
  start(buildIntelServer, kIntelConfig);
  const auto& garbage = at("nct6798-isa-0290/in4");
  EXPECT_FALSE(garbage.value) << *garbage.value;
  const auto& unreadable = at("nct6798-isa-0290/in5");
  EXPECT_FALSE(unreadable.value) << *unreadable.value;
  Monitor monitor;
  monitor.evaluate(report_);
  for (const auto& r : report_.readings) {
    if (r.id == garbage.id || r.id == unreadable.id) {
      EXPECT_EQ(r.status, Status::unavailable) << r.id;
    }
  }
}

TEST_F(Libsensors, FanPwmComesFromTheChipDirectory) {
  start(buildIntelServer, kIntelConfig);
  const auto& pwm1 = at("nct6798-isa-0290/pwm1");
  EXPECT_EQ(pwm1.kind, Kind::pwm);
  EXPECT_NEAR(*pwm1.value, 50.2, 0.01);
  EXPECT_DOUBLE_EQ(*at("nct6798-isa-0290/pwm2").value, 100);
  EXPECT_EQ(readings_.count("coretemp-isa-0000/pwm1"), 0u);
}

TEST_F(Libsensors, MonitorGivesAHealthyIntelBoardNoWarnings) {
  start(buildIntelServer, kIntelConfig);
  Monitor monitor;
  monitor.evaluate(report_);
  for (const auto& r : report_.readings) {
    if (r.value) {
      EXPECT_EQ(r.status, Status::ok) << r.id << " = " << *r.value;
    }
  }
  // fan2 reads 0 with a minimum of 0: an empty header, not a stopped fan.
  EXPECT_DOUBLE_EQ(*at("nct6798-isa-0290/fan2").value, 0);
}

TEST_F(Libsensors, NamesAmdServerChipsOnPciI2cAndVirtualBuses) {
  start(buildAmdServer, "");
  EXPECT_FALSE(report_.problem) << *report_.problem;
  EXPECT_EQ(at("k10temp-pci-00c3/temp1").label, "Tctl");
  EXPECT_DOUBLE_EQ(*at("k10temp-pci-00c3/temp1").value, 61.25);
  EXPECT_EQ(at("k10temp-pci-00c3/temp3").label, "Tccd1");
  EXPECT_EQ(at("pmbus-i2c-7-58/in1").chip, "pmbus-i2c-7-58");
  EXPECT_EQ(at("acpitz-virtual-0/temp1").chip, "acpitz-virtual-0");
  EXPECT_DOUBLE_EQ(*at("acpitz-virtual-0/temp1").value, 27.8);
  EXPECT_DOUBLE_EQ(*at("acpitz-virtual-0/temp1").thresholds.criticalHigh, 105);
}

TEST_F(Libsensors, ReadsAPmbusPowerSupplyInUnits) {
  start(buildAmdServer, "");
  const auto& vin = at("pmbus-i2c-7-58/in1");
  EXPECT_EQ(vin.label, "vin");
  EXPECT_DOUBLE_EQ(*vin.value, 230.25);
  EXPECT_DOUBLE_EQ(*vin.thresholds.criticalLow, 180);
  EXPECT_DOUBLE_EQ(*vin.thresholds.warningLow, 200);
  EXPECT_DOUBLE_EQ(*vin.thresholds.warningHigh, 250);
  EXPECT_DOUBLE_EQ(*vin.thresholds.criticalHigh, 264);
  const auto& vout = at("pmbus-i2c-7-58/in2");
  EXPECT_DOUBLE_EQ(*vout.value, 12.125);
  EXPECT_DOUBLE_EQ(*vout.thresholds.criticalLow, 10.8);
  EXPECT_DOUBLE_EQ(*vout.thresholds.criticalHigh, 13.2);
  const auto& iin = at("pmbus-i2c-7-58/curr1");
  EXPECT_EQ(iin.kind, Kind::current);
  EXPECT_EQ(iin.label, "iin");
  EXPECT_DOUBLE_EQ(*iin.value, 5.21);
  EXPECT_DOUBLE_EQ(*iin.thresholds.warningHigh, 10);
  EXPECT_DOUBLE_EQ(*at("pmbus-i2c-7-58/curr2").thresholds.criticalHigh, 120);
  const auto& pin = at("pmbus-i2c-7-58/power1");
  EXPECT_EQ(pin.kind, Kind::power);
  EXPECT_EQ(pin.label, "pin");
  EXPECT_DOUBLE_EQ(*pin.value, 1198);
  EXPECT_DOUBLE_EQ(*pin.thresholds.warningHigh, 2000);
  EXPECT_DOUBLE_EQ(*at("pmbus-i2c-7-58/power2").value, 1050);
  EXPECT_DOUBLE_EQ(*at("pmbus-i2c-7-58/temp1").value, 38);
  EXPECT_DOUBLE_EQ(*at("pmbus-i2c-7-58/temp1").thresholds.criticalHigh, 85);
  EXPECT_DOUBLE_EQ(*at("pmbus-i2c-7-58/fan1").value, 8240);
}

TEST_F(Libsensors, ValuesFollowTheFilesBetweenPolls) {
  start(buildAmdServer, "");
  test::writeFile(dir_.path() / "devices/pci0000:00/0000:00:18.3/hwmon/hwmon0/temp1_input",
                  "91000\n");
  auto readings = byId(source_->poll());
  EXPECT_DOUBLE_EQ(*readings.at("k10temp-pci-00c3/temp1").value, 91);
}

// libsensors fails to start on a chip statement for an I2C bus that no bus statement declares.
constexpr const char* kUndeclaredBus = "chip \"pmbus-i2c-7-*\"\n    label in1 \"Mains\"\n";

TEST_F(Libsensors, AFailedStartDoesNotStopTheNextSource) {
  auto broken = dir_.path() / "broken.conf";
  test::writeFile(broken, kUndeclaredBus);
  auto failed = makeLibsensorsSource({broken});
  ASSERT_TRUE(failed->poll().problem);
  start(buildAmdServer, "");
  failed.reset();
  auto readings = byId(source_->poll());
  ASSERT_EQ(readings.count("k10temp-pci-00c3/temp1"), 1u);
  EXPECT_DOUBLE_EQ(*readings.at("k10temp-pci-00c3/temp1").value, 61.25);
}

TEST_F(Libsensors, OnlyOneSourceAtATime) {
  start(buildAmdServer, "");
  EXPECT_THROW(makeLibsensorsSource({}), std::logic_error);
  source_.reset();
  auto again = makeLibsensorsSource({dir_.path() / "sensors.conf"});
  EXPECT_FALSE(again->poll().problem);
}

TEST(LibsensorsConfig, AMissingConfigurationIsAProblemNamingIt) {
  auto source = makeLibsensorsSource({"/nonexistent/sensors.conf"});
  auto report = source->poll();
  ASSERT_TRUE(report.problem);
  EXPECT_NE(report.problem->find("/nonexistent/sensors.conf"), std::string::npos)
      << *report.problem;
  EXPECT_TRUE(report.readings.empty());
}

TEST(LibsensorsConfig, ABrokenConfigurationIsAProblemNamingItAndWhatIsWrong) {
  test::TempDir dir;
  auto config = dir.path() / "sensors.conf";
  test::writeFile(config, kUndeclaredBus);
  auto report = makeLibsensorsSource({config})->poll();
  ASSERT_TRUE(report.problem);
  EXPECT_NE(report.problem->find(config.string()), std::string::npos) << *report.problem;
  EXPECT_NE(report.problem->find("line 1: Undeclared bus id referenced"), std::string::npos)
      << *report.problem;
  // A failed start leaves libsensors free for the next one.
  EXPECT_NO_THROW(makeLibsensorsSource({}));
}

}  // namespace
}  // namespace aibox::hwmon
