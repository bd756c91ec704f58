#include <boost/asio/post.hpp>

#include "agent/hardware/hardware.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::hardware {
namespace {

constexpr std::chrono::seconds kFlushEvery{10};
constexpr std::chrono::seconds kMaintainEvery{60};

void logEvent(const hwmon::Event& e) {
  auto level = e.severity == hwmon::Status::critical ? log::Level::error
               : e.severity == hwmon::Status::ok     ? log::Level::info
                                                     : log::Level::warning;
  log::write(level, e.message,
             {{"hw_subject", e.subject},
              {"hw_source", e.source},
              {"hw_type", e.type},
              {"hw_severity", std::string(hwmon::statusName(e.severity))}});
}

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Service::Service(boost::asio::io_context& io, db::Worker& database, const Settings& settings)
    : strand_(boost::asio::make_strand(io)),
      database_(database),
      settings_(settings),
      history_(std::make_shared<History>()),
      flushTimer_(strand_),
      maintenanceTimer_(strand_) {}

Service::~Service() {
  stop();
}

void Service::start() {
  sampler_ = std::make_unique<Sampler>(
      makeSources(settings_), settings_.overrides,
      [this](std::shared_ptr<const hwmon::Report> report) {
        boost::asio::post(
            strand_, [this, report = std::move(report)]() mutable { receive(std::move(report)); });
      });
  scheduleFlush();
  boost::asio::post(strand_, [this] { scheduleMaintenance(); });
}

void Service::stop() {
  if (!sampler_) {
    return;
  }
  sampler_.reset();
  flushTimer_.cancel();
  maintenanceTimer_.cancel();
  database_.post([history = history_](db::Database& db) { history->flush(db); });
}

void Service::receive(std::shared_ptr<const hwmon::Report> report) {
  auto& last = problems_[report->source];
  std::string problem = report->problem.value_or("");
  if (problem != last) {
    if (problem.empty()) {
      log::info("hardware source is back", {{"hw_source", report->source}});
    } else {
      log::warning("hardware source cannot be read: " + problem, {{"hw_source", report->source}});
    }
    last = problem;
  }
  for (const auto& e : report->events) {
    logEvent(e);
  }
  state_.update(report);
  if (listener_.reports) {
    listener_.reports(state_);
  }
  if (listener_.event) {
    for (const auto& e : report->events) {
      listener_.event(e);
    }
  }
  database_.post([history = history_, report](db::Database& db) {
    history->record(*report);
    storeEvents(db, report->events);
  });
}

void Service::scheduleFlush() {
  flushTimer_.expires_after(kFlushEvery);
  flushTimer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) {
      return;
    }
    database_.post([history = history_](db::Database& db) { history->flush(db); });
    scheduleFlush();
  });
}

void Service::scheduleMaintenance() {
  database_.post([history = history_](db::Database& db) { history->maintain(db, unixNow()); });
  maintenanceTimer_.expires_after(kMaintainEvery);
  maintenanceTimer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      scheduleMaintenance();
    }
  });
}

}  // namespace aibox::agent::hardware
