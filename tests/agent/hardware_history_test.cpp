// History tiers on a real SQLite database: writing, merging across restarts, roll-up, pruning,
// and which tier a query reads.
#include <gtest/gtest.h>

#include "agent/hardware/hardware.hpp"
#include "agent/migrations.hpp"
#include "tests/support/support.hpp"

namespace aibox::agent::hardware {
namespace {

constexpr std::int64_t kNow = 1'795'400'000;  // a fixed "now": 2026-11-23T00:53:20Z

hwmon::Report report(std::int64_t t, std::optional<double> value) {
  hwmon::Report r;
  r.source = "test";
  r.time = std::chrono::system_clock::time_point(std::chrono::seconds(t));
  hwmon::Reading reading;
  reading.id = "chip-virtual-0/temp1";
  reading.chip = "chip-virtual-0";
  reading.sensor = "temp1";
  reading.label = "temp1";
  reading.source = "test";
  reading.value = value;
  r.readings.push_back(reading);
  return r;
}

class HistoryTest : public ::testing::Test {
 protected:
  HistoryTest() : db(db::Database::open(dir.path() / "aibox.db")) { db::migrate(db, migrations()); }
  std::int64_t count(const char* table) {
    auto s = db.prepare(std::string("SELECT count(*) FROM ") + table);
    s.step();
    return s.integer(0);
  }
  test::TempDir dir;
  db::Database db;
};

TEST_F(HistoryTest, RawAndMinuteTiersHoldEverySampleAndAbsentStaysAbsent) {
  History history;
  std::int64_t start = kNow - 600;  // 10 minutes ago, at a minute boundary
  start -= start % 60;
  for (std::int64_t t = start; t < start + 120; ++t) {
    history.record(report(t, t % 10 == 0 ? std::nullopt : std::optional(double(t - start))));
  }
  EXPECT_EQ(history.flush(db), 108u);  // 120 samples less the 12 absent ones
  auto raw = History::query(db, "chip-virtual-0/temp1", {start, start + 119, 1}, kNow);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->tier, "raw");
  ASSERT_EQ(raw->points.size(), 108u);
  EXPECT_EQ(raw->points.front().time, start + 1);
  EXPECT_DOUBLE_EQ(raw->points.front().avg, 1);
  auto minutes = History::query(db, "chip-virtual-0/temp1", {start, start + 119, 60}, kNow);
  ASSERT_TRUE(minutes);
  EXPECT_EQ(minutes->tier, "minute");
  ASSERT_EQ(minutes->points.size(), 2u);
  EXPECT_DOUBLE_EQ(minutes->points[0].min, 1);
  EXPECT_DOUBLE_EQ(minutes->points[0].max, 59);
  EXPECT_DOUBLE_EQ(minutes->points[1].min, 61);
  EXPECT_FALSE(History::query(db, "chip-virtual-0/nothing", {start, start + 60, 0}, kNow));
}

TEST_F(HistoryTest, ARestartMergesIntoTheSameMinute) {
  std::int64_t minute = (kNow - 300) / 60 * 60;
  {
    History first;
    for (int s = 0; s < 30; ++s) {
      first.record(report(minute + s, 10));
    }
    first.flush(db);
  }
  History second;  // a new agent process
  for (int s = 30; s < 60; ++s) {
    second.record(report(minute + s, 20));
  }
  second.flush(db);
  EXPECT_EQ(count("hw_samples"), 1);
  auto m = History::query(db, "chip-virtual-0/temp1", {minute, minute + 59, 60}, kNow);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->points.size(), 1u);
  EXPECT_DOUBLE_EQ(m->points[0].min, 10);
  EXPECT_DOUBLE_EQ(m->points[0].max, 20);
  EXPECT_DOUBLE_EQ(m->points[0].avg, 15);
  auto raw = History::query(db, "chip-virtual-0/temp1", {minute, minute + 59, 1}, kNow);
  EXPECT_EQ(raw->points.size(), 60u);
}

TEST_F(HistoryTest, MaintenanceRollsUpHoursAndDropsRowsPastTheirAge) {
  History history;
  std::int64_t hourStart = (kNow - 7200) / 3600 * 3600;
  for (std::int64_t t = hourStart; t < hourStart + 3600; t += 10) {
    history.record(report(t, static_cast<double>((t - hourStart) / 10 % 7)));
  }
  history.record(report(kNow - History::kRawKeep - 120, 1));     // raw too old, minute kept
  history.record(report(kNow - History::kMinuteKeep - 120, 2));  // minute too old
  history.flush(db);
  history.maintain(db, kNow);
  auto hours =
      History::query(db, "chip-virtual-0/temp1", {hourStart, hourStart + 3599, 3600}, kNow);
  ASSERT_TRUE(hours);
  EXPECT_EQ(hours->tier, "hour");
  ASSERT_EQ(hours->points.size(), 1u);
  EXPECT_DOUBLE_EQ(hours->points[0].min, 0);
  EXPECT_DOUBLE_EQ(hours->points[0].max, 6);
  auto oldRaw = db.prepare("SELECT count(*) FROM hw_samples WHERE minute < ?");
  oldRaw.bind(1, (kNow - History::kRawKeep) / 60).step();
  EXPECT_EQ(oldRaw.integer(0), 0);
  auto oldMinutes = db.prepare("SELECT count(*) FROM hw_minutes WHERE minute < ?");
  oldMinutes.bind(1, (kNow - History::kMinuteKeep) / 60).step();
  EXPECT_EQ(oldMinutes.integer(0), 0);
  auto keptMinute =
      History::query(db, "chip-virtual-0/temp1",
                     {kNow - History::kRawKeep - 180, kNow - History::kRawKeep - 60, 60}, kNow);
  ASSERT_TRUE(keptMinute);
  EXPECT_EQ(keptMinute->points.size(), 1u);
}

TEST_F(HistoryTest, TheQueryPicksTheFinestTierThatCoversTheRange) {
  History history;
  history.record(report(kNow - 30, 1));
  history.flush(db);
  auto pick = [this](std::int64_t from, std::int64_t step) {
    return History::query(db, "chip-virtual-0/temp1", {from, kNow, step}, kNow)->tier;
  };
  EXPECT_EQ(pick(kNow - 3600, 0), "raw");           // an hour: 5 s points from raw samples
  EXPECT_EQ(pick(kNow - 86400, 0), "minute");       // a day: 2-minute points
  EXPECT_EQ(pick(kNow - 86400 - 60, 1), "minute");  // past raw retention
  EXPECT_EQ(pick(kNow - 90 * 86400, 0), "hour");
  EXPECT_EQ(pick(kNow - 3600, 3600), "hour");
  auto day = History::query(db, "chip-virtual-0/temp1", {kNow - 86400, kNow, 0}, kNow);
  EXPECT_EQ(day->step, 120);
}

}  // namespace
}  // namespace aibox::agent::hardware
