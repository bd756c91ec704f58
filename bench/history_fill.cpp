// Fills an aibox database with synthetic hardware history for bench/hardware.sh: the last 24 h
// of 1 Hz samples through the agent's own History writer (raw and minute tiers), the 29 days
// before as minute rows, then the agent's roll-up into hours.
//   aibox-bench-history-fill DATABASE SENSORS [DAYS]
#include <charconv>
#include <cmath>
#include <iostream>
#include <string>

#include "agent/hardware/hardware.hpp"
#include "agent/migrations.hpp"

namespace {

using aibox::agent::hardware::History;

int parse(const char* text) {
  int value = 0;
  std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() ? value : -1;
}

double synthetic(int sensor, std::int64_t t) {
  return 45 + 20 * std::sin(static_cast<double>(t) / 900 + sensor) + (sensor % 7);
}

}  // namespace

int main(int argc, char** argv) {
  int sensors = argc >= 3 ? parse(argv[2]) : -1;
  int days = argc >= 4 ? parse(argv[3]) : 30;
  if (sensors < 1 || days < 1) {
    std::cerr << "usage: aibox-bench-history-fill DATABASE SENSORS [DAYS]\n";
    return 2;
  }
  auto db = aibox::db::Database::open(argv[1]);
  aibox::db::migrate(db, aibox::agent::migrations());
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  History history;
  aibox::hwmon::Report report;
  report.source = "bench";
  for (int s = 0; s < sensors; ++s) {
    aibox::hwmon::Reading r;
    r.source = "bench";
    r.chip = "bench-virtual-0";
    r.sensor = "temp" + std::to_string(s + 1);
    r.id = r.chip + "/" + r.sensor;
    r.label = "Bench sensor " + std::to_string(s + 1);
    report.readings.push_back(r);
  }
  std::int64_t rawStart = now - History::kRawKeep;
  for (std::int64_t t = rawStart; t < now; ++t) {
    report.time = std::chrono::system_clock::time_point(std::chrono::seconds(t));
    for (int s = 0; s < sensors; ++s) {
      report.readings[static_cast<std::size_t>(s)].value = synthetic(s, t);
    }
    history.record(report);
    if ((t - rawStart) % 600 == 599) {
      history.flush(db);
    }
  }
  history.flush(db);
  std::cerr << "history-fill: 24 h of raw samples written\n";
  // The older days as minute aggregates, straight into the minute tier.
  db.transaction([&](aibox::db::Database& d) {
    auto insert = d.prepare(
        "INSERT OR IGNORE INTO hw_minutes(sensor, minute, min, avg, max, count) "
        "SELECT id, ?, ?, ?, ?, 60 FROM hw_sensors WHERE sensor = ?");
    for (int s = 0; s < sensors; ++s) {
      std::string id = "bench-virtual-0/temp" + std::to_string(s + 1);
      for (std::int64_t minute = (now - days * 86400LL) / 60; minute < rawStart / 60; ++minute) {
        double v = synthetic(s, minute * 60);
        insert.bind(1, minute).bind(2, v - 0.5).bind(3, v).bind(4, v + 0.5).bind(5, id).step();
        insert.reset();
      }
    }
  });
  std::cerr << "history-fill: " << days << " days of minutes written\n";
  history.maintain(db, now);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  std::cerr << "history-fill: rolled up into hours\n";
  return 0;
}
