// The simulated box.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "hwmon/hwmon.hpp"
#include "tests/hwmon/fake_sysfs.hpp"

namespace aibox::hwmon {
namespace {

TEST(SimSource, IsASimulatedEightGpuBox) {
  auto source = makeSimSource();
  EXPECT_EQ(source->name(), "sim");
  auto report = source->poll();
  EXPECT_TRUE(report.simulated);
  EXPECT_FALSE(report.problem);
  EXPECT_GE(report.readings.size(), 115u);
  EXPECT_EQ(report.gpus.size(), 8u);
  EXPECT_EQ(report.upses.size(), 2u);
  for (const auto& r : report.readings) {
    EXPECT_EQ(r.source, "sim");
    EXPECT_TRUE(r.value) << r.id;
    EXPECT_EQ(r.id, r.chip + "/" + r.sensor);
  }
  for (const auto& gpu : report.gpus) {
    EXPECT_TRUE(gpu.present);
    EXPECT_EQ(gpu.chip, "gpu-" + gpu.pciBusId);
  }
  Monitor monitor;
  monitor.evaluate(report);
  for (const auto& r : report.readings) {
    EXPECT_NE(r.status, Status::critical) << r.id << " " << *r.value;
  }
}

TEST(SimSource, ExtraSensorsAddBoardReadings) {
  auto base = makeSimSource(0)->poll().readings.size();
  auto report = makeSimSource(40)->poll();
  EXPECT_EQ(report.readings.size(), base + 40);
  EXPECT_EQ(std::count_if(report.readings.begin(), report.readings.end(),
                          [](const Reading& r) { return r.chip == "sim-board-virtual-0"; }),
            40);
}

}  // namespace
}  // namespace aibox::hwmon
