// The NVML source against a fake libnvidia-ml.so.1 built by the tests (tests/hwmon/fake_nvml.cpp)
// that serves eight GPUs from a JSON fixture, loaded with dlopen as the driver's library is.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <map>

#include "hwmon/hwmon.hpp"
#include "tests/hwmon/fake_sysfs.hpp"

namespace aibox::hwmon {
namespace {

namespace json = boost::json;

std::map<std::string, Reading> byId(const Report& report) {
  std::map<std::string, Reading> readings;
  for (const auto& r : report.readings) {
    readings.emplace(r.id, r);
  }
  return readings;
}

const Gpu& gpuAt(const Report& report, const std::string& pciBusId) {
  auto it = std::find_if(report.gpus.begin(), report.gpus.end(),
                         [&pciBusId](const Gpu& g) { return g.pciBusId == pciBusId; });
  if (it == report.gpus.end()) {
    throw std::out_of_range("no GPU at " + pciBusId);
  }
  return *it;
}

std::vector<Event> eventsOfType(const Report& report, const std::string& type) {
  std::vector<Event> events;
  std::copy_if(report.events.begin(), report.events.end(), std::back_inserter(events),
               [&type](const Event& e) { return e.type == type; });
  return events;
}

class Nvml : public ::testing::Test {
 protected:
  void SetUp() override {
    // A copy, so that a test can take GPUs out of it between polls.
    fixture_ = dir_.path() / "nvml.json";
    test::writeFile(fixture_, test::readFile(HWMON_FIXTURES "/nvml_8gpus.json"));
    ::setenv("AIBOX_FAKE_NVML", fixture_.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
    source_ = makeNvmlSource(FAKE_NVML);
  }
  void TearDown() override {
    ::unsetenv("AIBOX_FAKE_NVML");  // NOLINT(concurrency-mt-unsafe): no other thread
  }

  // Rewrites the fixture without the GPU at `pciBusId` (as NVML writes it).
  void removeGpu(const std::string& pciBusId) {
    auto root = json::parse(test::readFile(fixture_)).as_object();
    auto& gpus = root.at("gpus").as_array();
    auto before = gpus.size();
    gpus.erase(std::remove_if(gpus.begin(), gpus.end(),
                              [&pciBusId](const json::value& g) {
                                return g.at("pci_bus_id").as_string() == pciBusId;
                              }),
               gpus.end());
    ASSERT_EQ(gpus.size(), before - 1);
    test::writeFile(fixture_, json::serialize(root));
  }

  test::TempDir dir_;
  std::filesystem::path fixture_;
  std::unique_ptr<Source> source_;
};

TEST_F(Nvml, ListsEightGpusByBusIdWithIdentity) {
  EXPECT_EQ(source_->name(), "nvml");
  auto report = source_->poll();
  EXPECT_FALSE(report.problem) << *report.problem;
  EXPECT_FALSE(report.simulated);
  ASSERT_EQ(report.gpus.size(), 8u);
  std::vector<std::string> busIds;
  for (const auto& gpu : report.gpus) {
    busIds.push_back(gpu.pciBusId);
    EXPECT_TRUE(gpu.present);
    EXPECT_EQ(gpu.chip, "gpu-" + gpu.pciBusId);
    EXPECT_EQ(gpu.name, "NVIDIA RTX 6000 Ada Generation");
    EXPECT_TRUE(gpu.problem.empty()) << gpu.problem;
  }
  // Short, lower-case, sorted: as lspci and sysfs write them.
  EXPECT_EQ(busIds, (std::vector<std::string>{"0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0",
                                              "0000:5d:00.0", "0000:9a:00.0", "0000:ab:00.0",
                                              "0000:ba:00.0", "0000:db:00.0"}));
  const auto& first = gpuAt(report, "0000:18:00.0");
  EXPECT_EQ(first.index, 0);
  EXPECT_EQ(first.uuid, "GPU-6b1c0f2e-41d7-4a8e-9c3b-000000000000");
  EXPECT_EQ(first.serial, "1652023001234");
}

TEST_F(Nvml, ConvertsValuesToReadingUnits) {
  auto report = source_->poll();
  const auto& gpu = gpuAt(report, "0000:2a:00.0");
  EXPECT_EQ(gpu.temperature, 41);
  EXPECT_EQ(gpu.slowdownTemperature, 87);
  EXPECT_EQ(gpu.shutdownTemperature, 92);
  EXPECT_DOUBLE_EQ(*gpu.powerWatts, 99);  // 99000 mW
  EXPECT_DOUBLE_EQ(*gpu.powerLimitWatts, 300);
  EXPECT_EQ(gpu.utilization, 10);
  EXPECT_EQ(gpu.memoryUtilization, 2);
  EXPECT_EQ(gpu.memoryUsedBytes, 2ULL << 30);
  EXPECT_EQ(gpu.memoryTotalBytes, 51527024640ULL);
  EXPECT_EQ(gpu.fanPercent, 31);
  EXPECT_EQ(gpu.smClockMhz, 2505);
  EXPECT_EQ(gpu.memoryClockMhz, 10001);
  EXPECT_EQ(gpu.throttleReasons, 0u);
  EXPECT_EQ(gpu.eccCorrected, 0u);
  EXPECT_EQ(gpu.eccUncorrected, 0u);
  EXPECT_EQ(gpuAt(report, "0000:ba:00.0").eccCorrected, 4u);

  auto readings = byId(report);
  const auto& temperature = readings.at("gpu-0000:2a:00.0/temperature");
  EXPECT_EQ(temperature.source, "nvml");
  EXPECT_EQ(temperature.kind, Kind::temperature);
  EXPECT_EQ(temperature.label, "GPU 1 temperature");
  EXPECT_DOUBLE_EQ(*temperature.value, 41);
  EXPECT_DOUBLE_EQ(*temperature.thresholds.warningHigh, 82);  // 5 °C below slowdown
  EXPECT_DOUBLE_EQ(*temperature.thresholds.criticalHigh, 87);
  const auto& power = readings.at("gpu-0000:2a:00.0/power");
  EXPECT_EQ(power.kind, Kind::power);
  EXPECT_DOUBLE_EQ(*power.value, 99);
  EXPECT_DOUBLE_EQ(*power.thresholds.warningHigh, 300);
  EXPECT_DOUBLE_EQ(*readings.at("gpu-0000:2a:00.0/memory_used").value, 2.0 * (1ULL << 30));
  EXPECT_DOUBLE_EQ(*readings.at("gpu-0000:2a:00.0/fan").value, 31);
  EXPECT_DOUBLE_EQ(*readings.at("gpu-0000:2a:00.0/sm_clock").value, 2505);
  EXPECT_DOUBLE_EQ(*readings.at("gpu-0000:2a:00.0/ecc_uncorrected").value, 0);
  // Eight readings a GPU, less the one fan that is not there.
  EXPECT_EQ(report.readings.size(), 8u * 8 - 1);
}

TEST_F(Nvml, AnUnsupportedFanIsLeftOutNotAbsent) {
  auto report = source_->poll();
  const auto& gpu = gpuAt(report, "0000:ab:00.0");
  EXPECT_FALSE(gpu.fanPercent);
  EXPECT_TRUE(gpu.temperature);
  auto readings = byId(report);
  EXPECT_EQ(readings.count("gpu-0000:ab:00.0/fan"), 0u);
  EXPECT_EQ(readings.count("gpu-0000:ab:00.0/temperature"), 1u);
  // It stays left out, and never counts as a failed read.
  Monitor monitor;
  for (int i = 0; i < Monitor::kFailuresToNonFunctional + 1; ++i) {
    report = source_->poll();
    monitor.evaluate(report);
  }
  EXPECT_EQ(byId(report).count("gpu-0000:ab:00.0/fan"), 0u);
}

TEST_F(Nvml, AnOverheatingGpuIsCriticalAndThrottling) {
  auto report = source_->poll();
  Monitor monitor;
  monitor.evaluate(report);
  auto readings = byId(report);
  EXPECT_EQ(readings.at("gpu-0000:5d:00.0/temperature").status, Status::critical);
  EXPECT_EQ(readings.at("gpu-0000:18:00.0/temperature").status, Status::ok);
  auto events = eventsOfType(report, "sensor_status");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events.front().subject, "gpu-0000:5d:00.0/temperature");
  EXPECT_EQ(events.front().severity, Status::critical);
  EXPECT_EQ(events.front().value, 93);
  const auto& hot = gpuAt(report, "0000:5d:00.0");
  EXPECT_EQ(throttleReasonNames(*hot.throttleReasons),
            (std::vector<std::string>{"sw_thermal_slowdown", "hw_thermal_slowdown"}));
  // Still hot on the next poll: no new event.
  report = source_->poll();
  monitor.evaluate(report);
  EXPECT_TRUE(eventsOfType(report, "sensor_status").empty());
}

TEST_F(Nvml, PendingXidIsReportedOnceAndRemembered) {
  auto first = source_->poll();
  auto xids = eventsOfType(first, "gpu_xid");
  ASSERT_EQ(xids.size(), 1u);
  const auto& xid = xids.front();
  EXPECT_EQ(xid.subject, "gpu-0000:ba:00.0");
  EXPECT_EQ(xid.source, "nvml");
  EXPECT_EQ(xid.severity, Status::critical);  // 79: fallen off the bus
  EXPECT_EQ(xid.value, 79);
  EXPECT_NE(xid.message.find("XID 79"), std::string::npos) << xid.message;
  EXPECT_NE(xid.message.find("0000:ba:00.0"), std::string::npos) << xid.message;
  EXPECT_EQ(gpuAt(first, "0000:ba:00.0").lastXid, 79u);
  EXPECT_FALSE(gpuAt(first, "0000:18:00.0").lastXid);

  auto second = source_->poll();
  EXPECT_TRUE(eventsOfType(second, "gpu_xid").empty());
  EXPECT_EQ(gpuAt(second, "0000:ba:00.0").lastXid, 79u);
}

TEST_F(Nvml, ADisappearingGpuGoesUnavailableThenNonFunctional) {
  Monitor monitor;
  auto report = source_->poll();
  monitor.evaluate(report);
  removeGpu("00000000:3A:00.0");
  const std::string chip = "gpu-0000:3a:00.0";
  for (int poll = 1; poll <= Monitor::kFailuresToNonFunctional; ++poll) {
    report = source_->poll();
    monitor.evaluate(report);
    ASSERT_EQ(report.gpus.size(), 8u) << "a lost GPU stays listed";
    const auto& gone = gpuAt(report, "0000:3a:00.0");
    EXPECT_FALSE(gone.present);
    EXPECT_FALSE(gone.problem.empty());
    EXPECT_EQ(gone.uuid, "GPU-6b1c0f2e-41d7-4a8e-9c3b-000000000002");
    EXPECT_EQ(gone.name, "NVIDIA RTX 6000 Ada Generation");
    EXPECT_FALSE(gone.temperature);
    auto expected =
        poll < Monitor::kFailuresToNonFunctional ? Status::unavailable : Status::nonFunctional;
    int readings = 0;
    for (const auto& r : report.readings) {
      if (r.chip == chip) {
        ++readings;
        EXPECT_FALSE(r.value) << r.id;
        EXPECT_EQ(r.status, expected) << r.id << " at poll " << poll;
      } else {
        EXPECT_TRUE(r.value) << r.id;
      }
    }
    EXPECT_EQ(readings, 8);
    // One event a reading when it goes unavailable and one when it is given up on.
    bool changed = poll == 1 || poll == Monitor::kFailuresToNonFunctional;
    EXPECT_EQ(eventsOfType(report, "sensor_status").size(), changed ? 8u : 0u) << poll;
    for (const auto& gpu : report.gpus) {
      EXPECT_EQ(gpu.present, gpu.pciBusId != "0000:3a:00.0") << gpu.pciBusId;
    }
  }
}

TEST_F(Nvml, AnUnreadableDeviceListIsAProblem) {
  test::writeFile(fixture_, "not json");
  auto report = source_->poll();
  ASSERT_TRUE(report.problem);
  EXPECT_NE(report.problem->find("cannot count GPUs"), std::string::npos) << *report.problem;
  EXPECT_TRUE(report.gpus.empty());
}

TEST(NvmlLibrary, AMissingLibraryMeansNoGpusAndSaysWhich) {
  const std::string library = "/nonexistent/libnvidia-ml.so.1";
  auto source = makeNvmlSource(library);
  Report report;
  EXPECT_NO_THROW(report = source->poll());
  EXPECT_TRUE(report.gpus.empty());
  EXPECT_TRUE(report.readings.empty());
  ASSERT_TRUE(report.problem);
  EXPECT_NE(report.problem->find(library), std::string::npos) << *report.problem;
  // And again on the next poll, without a crash.
  EXPECT_TRUE(source->poll().problem);
}

TEST(NvmlLibrary, ALibraryWithoutNvmlSaysWhatIsMissing) {
  auto source = makeNvmlSource("libm.so.6");
  auto report = source->poll();
  ASSERT_TRUE(report.problem);
  EXPECT_NE(report.problem->find("lacks nvmlInit_v2"), std::string::npos) << *report.problem;
  EXPECT_TRUE(report.gpus.empty());
}

}  // namespace
}  // namespace aibox::hwmon
