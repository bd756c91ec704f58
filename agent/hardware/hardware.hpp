#pragma once
// The agent's view of the hardware: the sources named in the settings, polled on their own
// threads; the latest reports; history tiers and events in SQLite; JSON and Prometheus views.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/config/config.hpp"
#include "common/db/db.hpp"
#include "hwmon/hwmon.hpp"

namespace aibox::agent::hardware {

struct Settings {
  std::vector<std::string> sources{"libsensors", "nvml", "nut"};
  std::filesystem::path sysfsRoot = "/sys";
  std::string nvmlLibrary = "libnvidia-ml.so.1";
  std::optional<std::filesystem::path> sensorsConfig;
  std::vector<hwmon::UpsAddress> upses;
  std::chrono::milliseconds pollInterval{1000};
  std::chrono::milliseconds upsPollInterval{5000};
  std::vector<hwmon::ThresholdOverride> overrides;
  int simExtraSensors = 0;
};

// The [hardware] settings, for the agent's settings and for `aiboxctl hw --direct`.
void addSettings(boost::program_options::options_description& description, Settings& settings);
// After the notifiers ran: the paths of the settings, taken inside the root.
void resolvePaths(const boost::program_options::variables_map& vm, const config::Paths& paths,
                  Settings& settings);

// The sources the settings name, in order; with the interval each is polled at.
struct PolledSource {
  std::unique_ptr<hwmon::Source> source;
  std::chrono::milliseconds interval;
};
std::vector<PolledSource> makeSources(const Settings& settings);

// The latest report of every source. Any thread may read; sampler results replace reports.
class State {
 public:
  using Reports = std::map<std::string, std::shared_ptr<const hwmon::Report>, std::less<>>;

  void update(std::shared_ptr<const hwmon::Report> report);
  Reports reports() const;

 private:
  mutable std::mutex mutex_;
  Reports reports_;
};

// --- views, shared by the REST API and `aiboxctl hw --direct` ------------------------------

struct SensorFilter {
  std::optional<hwmon::Kind> kind;
  std::optional<hwmon::Status> status;
};
boost::json::object summaryJson(const State::Reports& reports);
boost::json::object sensorsJson(const State::Reports& reports, const SensorFilter& filter);
boost::json::object gpusJson(const State::Reports& reports);
boost::json::object powerJson(const State::Reports& reports);
boost::json::object readingJson(const hwmon::Reading& reading, bool isSimulated);

// node_exporter's hwmon names, dcgm-exporter's for GPUs and nut_exporter's for UPSes.
void renderMetrics(const State::Reports& reports, std::string& out);

// --- history and events (run on the database worker) -------------------------------------

// Schema migrations of the hardware tables.
extern const char* const kSchema;

struct HistoryPoint {
  std::int64_t time = 0;  // unix seconds, start of the bucket
  double min = 0;
  double avg = 0;
  double max = 0;
};
struct HistoryQuery {
  std::int64_t from = 0;  // unix seconds
  std::int64_t to = 0;
  std::int64_t step = 0;  // 0: chosen for about 720 points
};
struct HistoryResult {
  std::string tier;  // "raw" (every sample, 24 h), "minute" (30 days) or "hour" (1 year)
  std::int64_t step = 0;
  std::vector<HistoryPoint> points;
};

// Samples are kept three ways: raw for 24 h, 1-minute min/avg/max for 30 days, 1-hour for a
// year. Raw samples and minute aggregates collect in memory and are written every 10 s in one
// transaction, merged into what an earlier run wrote for the same minute.
class History {
 public:
  static constexpr std::int64_t kRawKeep = 24 * 3600;
  static constexpr std::int64_t kMinuteKeep = 30 * 86400;
  static constexpr std::int64_t kHourKeep = 365 * 86400;

  void record(const hwmon::Report& report);
  // Writes what record() collected. Returns the number of samples written.
  std::size_t flush(db::Database& db);
  // Rolls minutes up into hours and drops rows past their tier's age.
  void maintain(db::Database& db, std::int64_t now);

  // nullopt when the sensor has no history.
  static std::optional<HistoryResult> query(db::Database& db, const std::string& sensor,
                                            const HistoryQuery& query, std::int64_t now);

 private:
  struct Pending {
    std::string samples;  // (second of the minute: u8, value: f32 little-endian) pairs
    double min = 0;
    double max = 0;
    double sum = 0;
    std::int64_t count = 0;
  };
  struct SensorInfo {
    std::string kind;
    std::string unit;
    std::string source;
    std::string label;
  };
  std::int64_t sensorRow(db::Database& db, const std::string& id, const SensorInfo& info);

  std::map<std::pair<std::string, std::int64_t>, Pending> pending_;  // (sensor, minute)
  std::unordered_map<std::string, SensorInfo> info_;
  std::unordered_map<std::string, std::int64_t> rows_;
};

void storeEvents(db::Database& db, const std::vector<hwmon::Event>& events);
struct EventQuery {
  std::optional<hwmon::Status> minSeverity;
  std::optional<std::string> subject;
  std::int64_t limit = 100;
  std::optional<std::int64_t> before;  // id, for paging
};
boost::json::object eventsJson(db::Database& db, const EventQuery& query);

// --- the sampler -----------------------------------------------------------------------

// Polls each source on its own thread at its interval, runs threshold evaluation there, and
// hands each finished report to `deliver` (which the agent posts to its event loop).
class Sampler {
 public:
  using Deliver = std::function<void(std::shared_ptr<const hwmon::Report>)>;
  Sampler(std::vector<PolledSource> sources, std::vector<hwmon::ThresholdOverride> overrides,
          Deliver deliver);
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;
  ~Sampler();  // stops and joins the threads

 private:
  std::vector<std::jthread> threads_;
};

// --- the agent's hardware service ------------------------------------------------------

// Told of what the service takes in, on its strand; must not block.
struct Listener {
  std::function<void(const State& state)> reports;  // after each report replaced the last
  std::function<void(const hwmon::Event& event)> event;
};

// Wires it together: sampler threads deliver reports to the event loop (on a strand), which
// keeps the latest, logs events, and hands samples and events to the database worker; timers
// write the history every 10 s and roll it up every minute.
class Service {
 public:
  Service(boost::asio::io_context& io, db::Worker& database, const Settings& settings);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  ~Service();

  // Before start().
  void listen(Listener listener) { listener_ = std::move(listener); }
  void start();
  // Joins the sampler threads and writes the samples not yet written.
  void stop();
  const State& state() const { return state_; }
  // For the database worker only: queries write what is pending first, so they are current.
  History& history() { return *history_; }

 private:
  void receive(std::shared_ptr<const hwmon::Report> report);
  void scheduleFlush();
  void scheduleMaintenance();

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  db::Worker& database_;
  const Settings& settings_;
  State state_;
  std::shared_ptr<History> history_;             // used only on the database worker
  std::map<std::string, std::string> problems_;  // last problem logged per source
  Listener listener_;
  boost::asio::steady_timer flushTimer_;
  boost::asio::steady_timer maintenanceTimer_;
  std::unique_ptr<Sampler> sampler_;
};

}  // namespace aibox::agent::hardware
