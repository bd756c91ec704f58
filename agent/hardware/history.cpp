// History tiers in SQLite. Raw samples are packed per sensor and minute into one row (5 bytes a
// sample), so 24 h of 200 sensors at 1 Hz stays under 100 MB and a day's query reads 1440 rows.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "agent/hardware/hardware.hpp"
#include "common/time/time.hpp"

namespace aibox::agent::hardware {
namespace {

static_assert(std::endian::native == std::endian::little, "samples are stored little-endian");

constexpr std::size_t kSampleBytes = 5;

void appendSample(std::string& out, std::int64_t secondOfMinute, float value) {
  out.push_back(static_cast<char>(secondOfMinute));
  std::array<char, 4> bytes{};
  std::memcpy(bytes.data(), &value, sizeof value);
  out.append(bytes.data(), bytes.size());
}

struct Bucket {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  std::int64_t count = 0;
  void add(double lo, double avg, double hi, std::int64_t n) {
    min = std::min(min, lo);
    max = std::max(max, hi);
    sum += avg * static_cast<double>(n);
    count += n;
  }
};

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

}  // namespace

const char* const kSchema =
    "CREATE TABLE hw_sensors ("
    " id INTEGER PRIMARY KEY,"
    " sensor TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL,"
    " unit TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " label TEXT NOT NULL);"
    "CREATE TABLE hw_samples ("
    " sensor INTEGER NOT NULL REFERENCES hw_sensors(id),"
    " minute INTEGER NOT NULL,"
    " samples BLOB NOT NULL,"
    " PRIMARY KEY (sensor, minute)) WITHOUT ROWID;"
    "CREATE TABLE hw_minutes ("
    " sensor INTEGER NOT NULL REFERENCES hw_sensors(id),"
    " minute INTEGER NOT NULL,"
    " min REAL NOT NULL, avg REAL NOT NULL, max REAL NOT NULL, count INTEGER NOT NULL,"
    " PRIMARY KEY (sensor, minute)) WITHOUT ROWID;"
    "CREATE TABLE hw_hours ("
    " sensor INTEGER NOT NULL REFERENCES hw_sensors(id),"
    " hour INTEGER NOT NULL,"
    " min REAL NOT NULL, avg REAL NOT NULL, max REAL NOT NULL, count INTEGER NOT NULL,"
    " PRIMARY KEY (sensor, hour)) WITHOUT ROWID;"
    "CREATE TABLE hw_events ("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL,"
    " subject TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " severity TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " message TEXT NOT NULL,"
    " value REAL);"
    "CREATE INDEX hw_events_time ON hw_events(time);";

void History::record(const hwmon::Report& report) {
  auto now =
      std::chrono::duration_cast<std::chrono::seconds>(report.time.time_since_epoch()).count();
  std::int64_t minute = floorDiv(now, 60);
  for (const auto& r : report.readings) {
    if (!r.value || !std::isfinite(*r.value)) {
      continue;  // absent stays absent: no sample, not a zero
    }
    info_.try_emplace(r.id, SensorInfo{std::string(hwmon::kindName(r.kind)),
                                       std::string(hwmon::unitName(r.kind)), r.source, r.label});
    auto& p = pending_[{r.id, minute}];
    double v = *r.value;
    if (p.count == 0) {
      p.min = v;
      p.max = v;
    }
    p.min = std::min(p.min, v);
    p.max = std::max(p.max, v);
    p.sum += v;
    ++p.count;
    appendSample(p.samples, now - minute * 60, static_cast<float>(v));
  }
}

std::int64_t History::sensorRow(db::Database& db, const std::string& id, const SensorInfo& info) {
  if (auto it = rows_.find(id); it != rows_.end()) {
    return it->second;
  }
  db.prepare(
        "INSERT INTO hw_sensors(sensor, kind, unit, source, label) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(sensor) DO UPDATE SET kind = excluded.kind, unit = excluded.unit, "
        "source = excluded.source, label = excluded.label")
      .bind(1, id)
      .bind(2, info.kind)
      .bind(3, info.unit)
      .bind(4, info.source)
      .bind(5, info.label)
      .step();
  auto select = db.prepare("SELECT id FROM hw_sensors WHERE sensor = ?");
  select.bind(1, id);
  select.step();
  auto row = select.integer(0);
  rows_.emplace(id, row);
  return row;
}

std::size_t History::flush(db::Database& db) {
  if (pending_.empty()) {
    return 0;
  }
  std::size_t written = 0;
  db.transaction([this, &written](db::Database& d) {
    auto samples = d.prepare(
        "INSERT INTO hw_samples(sensor, minute, samples) VALUES (?, ?, ?) "
        "ON CONFLICT(sensor, minute) DO UPDATE SET samples = samples || excluded.samples");
    auto minutes = d.prepare(
        "INSERT INTO hw_minutes(sensor, minute, min, avg, max, count) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(sensor, minute) DO UPDATE SET min = min(min, excluded.min), "
        "max = max(max, excluded.max), "
        "avg = (avg * count + excluded.avg * excluded.count) / (count + excluded.count), "
        "count = count + excluded.count");
    for (const auto& [key, p] : pending_) {
      auto row = sensorRow(d, key.first, info_.at(key.first));
      samples.bind(1, row).bind(2, key.second).bindBlob(3, p.samples).step();
      samples.reset();
      minutes.bind(1, row)
          .bind(2, key.second)
          .bind(3, p.min)
          .bind(4, p.sum / static_cast<double>(p.count))
          .bind(5, p.max)
          .bind(6, p.count)
          .step();
      minutes.reset();
      written += static_cast<std::size_t>(p.count);
    }
  });
  pending_.clear();
  return written;
}

void History::maintain(db::Database& db, std::int64_t now) {
  std::int64_t hour = floorDiv(now, 3600);
  db.transaction([now, hour](db::Database& d) {
    // Roll up from the newest hour already there (it may have been partial) to the current one.
    // Sensor by sensor, so each statement walks the primary key instead of the whole table.
    auto newest = d.prepare("SELECT max(hour) FROM hw_hours WHERE sensor = ?");
    auto rollUp = d.prepare(
        "INSERT OR REPLACE INTO hw_hours(sensor, hour, min, avg, max, count) "
        "SELECT sensor, minute / 60, min(min), sum(avg * count) / sum(count), max(max), "
        "sum(count) FROM hw_minutes WHERE sensor = ?1 AND minute >= ?2 AND minute < ?3 "
        "GROUP BY minute / 60");
    auto sensors = d.prepare("SELECT id FROM hw_sensors");
    auto dropSamples = d.prepare("DELETE FROM hw_samples WHERE sensor = ? AND minute < ?");
    auto dropMinutes = d.prepare("DELETE FROM hw_minutes WHERE sensor = ? AND minute < ?");
    auto dropHours = d.prepare("DELETE FROM hw_hours WHERE sensor = ? AND hour < ?");
    while (sensors.step()) {
      auto id = sensors.integer(0);
      newest.bind(1, id).step();
      std::int64_t from = newest.isNull(0) ? floorDiv(now - kMinuteKeep, 3600) : newest.integer(0);
      newest.reset();
      rollUp.bind(1, id).bind(2, from * 60).bind(3, (hour + 1) * 60).step();
      rollUp.reset();
      dropSamples.bind(1, id).bind(2, floorDiv(now - kRawKeep, 60)).step();
      dropSamples.reset();
      dropMinutes.bind(1, id).bind(2, floorDiv(now - kMinuteKeep, 60)).step();
      dropMinutes.reset();
      dropHours.bind(1, id).bind(2, floorDiv(now - kHourKeep, 3600)).step();
      dropHours.reset();
    }
    d.prepare("DELETE FROM hw_events WHERE time < ?").bind(1, now - kHourKeep).step();
  });
}

std::optional<HistoryResult> History::query(db::Database& db, const std::string& sensor,
                                            const HistoryQuery& q, std::int64_t now) {
  auto find = db.prepare("SELECT id FROM hw_sensors WHERE sensor = ?");
  find.bind(1, sensor);
  if (!find.step()) {
    return std::nullopt;
  }
  auto id = find.integer(0);
  HistoryResult result;
  std::int64_t span = std::max<std::int64_t>(q.to - q.from, 1);
  result.step = q.step > 0 ? q.step : std::max<std::int64_t>(1, span / 720);
  // The finest tier that covers the range and is no finer than the step.
  if (result.step < 60 && q.from >= now - kRawKeep) {
    result.tier = "raw";
  } else if (result.step < 3600 && q.from >= now - kMinuteKeep) {
    result.tier = "minute";
    result.step = std::max<std::int64_t>(result.step, 60);
  } else {
    result.tier = "hour";
    result.step = std::max<std::int64_t>(result.step, 3600);
  }
  std::map<std::int64_t, Bucket> buckets;
  auto bucketOf = [&result](std::int64_t t) { return floorDiv(t, result.step) * result.step; };
  if (result.tier == "raw") {
    auto rows = db.prepare(
        "SELECT minute, samples FROM hw_samples WHERE sensor = ? AND minute >= ? AND minute <= ? "
        "ORDER BY minute");
    rows.bind(1, id).bind(2, floorDiv(q.from, 60)).bind(3, floorDiv(q.to, 60));
    while (rows.step()) {
      auto minute = rows.integer(0);
      auto blob = rows.blob(1);
      for (std::size_t i = 0; i + kSampleBytes <= blob.size(); i += kSampleBytes) {
        std::int64_t t = minute * 60 + static_cast<unsigned char>(blob[i]);
        if (t < q.from || t > q.to) {
          continue;
        }
        float v = 0;
        std::memcpy(&v, blob.data() + i + 1, sizeof v);
        buckets[bucketOf(t)].add(v, v, v, 1);
      }
    }
  } else {
    bool hours = result.tier == "hour";
    std::int64_t unit = hours ? 3600 : 60;
    auto rows = db.prepare(hours ? "SELECT hour, min, avg, max, count FROM hw_hours "
                                   "WHERE sensor = ? AND hour >= ? AND hour <= ? ORDER BY hour"
                                 : "SELECT minute, min, avg, max, count FROM hw_minutes "
                                   "WHERE sensor = ? AND minute >= ? AND minute <= ? "
                                   "ORDER BY minute");
    rows.bind(1, id).bind(2, floorDiv(q.from, unit)).bind(3, floorDiv(q.to, unit));
    while (rows.step()) {
      buckets[bucketOf(rows.integer(0) * unit)].add(rows.real(1), rows.real(2), rows.real(3),
                                                    rows.integer(4));
    }
  }
  result.points.reserve(buckets.size());
  for (const auto& [t, b] : buckets) {
    result.points.push_back({t, b.min, b.sum / static_cast<double>(b.count), b.max});
  }
  return result;
}

void storeEvents(db::Database& db, const std::vector<hwmon::Event>& events) {
  if (events.empty()) {
    return;
  }
  db.transaction([&events](db::Database& d) {
    auto insert = d.prepare(
        "INSERT INTO hw_events(time, subject, source, severity, type, message, value) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    for (const auto& e : events) {
      insert
          .bind(1,
                std::chrono::duration_cast<std::chrono::seconds>(e.time.time_since_epoch()).count())
          .bind(2, e.subject)
          .bind(3, e.source)
          .bind(4, hwmon::statusName(e.severity))
          .bind(5, e.type)
          .bind(6, e.message);
      if (e.value) {
        insert.bind(7, *e.value);
      } else {
        insert.bind(7, nullptr);
      }
      insert.step();
      insert.reset();
    }
  });
}

boost::json::object eventsJson(db::Database& db, const EventQuery& q) {
  auto rows = db.prepare(
      "SELECT id, time, subject, source, severity, type, message, value FROM hw_events "
      "WHERE (?1 IS NULL OR id < ?1) AND (?2 IS NULL OR subject = ?2) ORDER BY id DESC");
  if (q.before) {
    rows.bind(1, *q.before);
  } else {
    rows.bind(1, nullptr);
  }
  if (q.subject) {
    rows.bind(2, *q.subject);
  } else {
    rows.bind(2, nullptr);
  }
  boost::json::array events;
  std::optional<std::int64_t> last;
  while (static_cast<std::int64_t>(events.size()) < q.limit && rows.step()) {
    auto severity = hwmon::parseStatus(rows.text(4)).value_or(hwmon::Status::ok);
    if (q.minSeverity && hwmon::severity(severity) < hwmon::severity(*q.minSeverity)) {
      continue;
    }
    last = rows.integer(0);
    events.push_back(
        boost::json::object{{"id", rows.integer(0)},
                            {"time", time::isoTime(rows.integer(1))},
                            {"subject", rows.text(2)},
                            {"source", rows.text(3)},
                            {"severity", rows.text(4)},
                            {"type", rows.text(5)},
                            {"message", rows.text(6)},
                            {"value", rows.isNull(7) ? boost::json::value(nullptr)
                                                     : boost::json::value(rows.real(7))}});
  }
  bool more = rows.step();
  boost::json::object page{{"events", std::move(events)}};
  page["next_before"] = more && last ? boost::json::value(*last) : nullptr;
  return page;
}

}  // namespace aibox::agent::hardware
