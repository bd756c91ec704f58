// /api/v1/hardware: overall health, sensors, GPUs, power (PSUs and UPSes), history and events.
// Everything needs hardware:read.
#include <boost/url/parse.hpp>
#include <charconv>
#include <limits>

#include "agent/api/api.hpp"

namespace aibox::agent::api {
namespace {

constexpr std::string_view kPermission = "hardware:read";

using Params = std::map<std::string, std::string, std::less<>>;

// The query string as a map, or a 400 naming the first parameter not in `allowed`.
std::optional<Params> queryParams(const http::Call& call, const http::Reply& reply,
                                  std::initializer_list<std::string_view> allowed) {
  auto url = boost::urls::parse_origin_form(call.request.target());
  if (!url) {
    reply(http::badRequest({"invalid_field", "", "the query string is malformed"}));
    return std::nullopt;
  }
  Params params;
  for (const auto& param : url->params()) {
    if (std::find(allowed.begin(), allowed.end(), param.key) == allowed.end()) {
      std::string names;
      for (auto name : allowed) {
        names += (names.empty() ? "" : ", ") + std::string(name);
      }
      reply(http::badRequest({"invalid_field", param.key,
                              "unknown parameter '" + std::string(param.key) + "': use " +
                                  (names.empty() ? "none" : names)}));
      return std::nullopt;
    }
    params.insert_or_assign(param.key, param.value);
  }
  return params;
}

http::Response invalid(const std::string& field, const std::string& message) {
  return http::badRequest({"invalid_field", field, message});
}

void handleSensorsGet(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                      const hardware::State& state) {
  auto params = queryParams(*call, reply, {"kind", "status"});
  if (!params) {
    return;
  }
  hardware::SensorFilter filter;
  if (auto it = params->find("kind"); it != params->end()) {
    filter.kind = hwmon::parseKind(it->second);
    if (!filter.kind) {
      reply(invalid("kind", "unknown kind '" + it->second +
                                "': use temperature, fan, voltage, current, power, energy, "
                                "humidity, pwm, utilization, memory, clock, charge, runtime, "
                                "load or errors"));
      return;
    }
  }
  if (auto it = params->find("status"); it != params->end()) {
    filter.status = hwmon::parseStatus(it->second);
    if (!filter.status) {
      reply(invalid("status", "unknown status '" + it->second +
                                  "': use ok, warning, critical, unavailable or non_functional"));
      return;
    }
  }
  reply(http::json(http::Status::ok, hardware::sensorsJson(state.reports(), filter)));
}

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void handleHistoryGet(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                      Services& services) {
  auto params = queryParams(*call, reply, {"from", "to", "step"});
  if (!params) {
    return;
  }
  auto now = unixNow();
  hardware::HistoryQuery query{now - 3600, now, 0};
  auto time = [&params, &reply](const char* key, std::int64_t& into) {
    auto it = params->find(key);
    if (it == params->end()) {
      return true;
    }
    auto parsed = time::parseTime(it->second);
    if (!parsed) {
      reply(invalid(key, std::string("parameter '") + key +
                             "' must be a time: unix seconds or 2026-11-23T08:00:00Z"));
      return false;
    }
    into = *parsed;
    return true;
  };
  if (!time("from", query.from) || !time("to", query.to)) {
    return;
  }
  if (auto it = params->find("step"); it != params->end()) {
    auto step = time::parseDuration(it->second);
    if (!step || *step < 1) {
      reply(invalid("step", "parameter 'step' must be a duration: 10s, 5m, 1h or seconds"));
      return;
    }
    query.step = *step;
  }
  if (query.from >= query.to) {
    reply(invalid("from", "'from' must be before 'to'"));
    return;
  }
  std::string sensor = std::string(call->param("chip")) + "/" + std::string(call->param("sensor"));
  services.database.post([reply, sensor, query, now, &services](db::Database& db) {
    try {
      services.history.flush(db);
      auto result = hardware::History::query(db, sensor, query, now);
      if (!result) {
        reply(http::error(http::Status::not_found, "not_found",
                          "sensor '" + sensor +
                              "' has no history: list sensors with GET /api/v1/hardware/sensors"));
        return;
      }
      boost::json::array points;
      for (const auto& p : result->points) {
        points.push_back(boost::json::object{
            {"time", time::isoTime(p.time)}, {"min", p.min}, {"avg", p.avg}, {"max", p.max}});
      }
      reply(http::json(http::Status::ok, {{"sensor", sensor},
                                          {"tier", result->tier},
                                          {"step_seconds", result->step},
                                          {"from", time::isoTime(query.from)},
                                          {"to", time::isoTime(query.to)},
                                          {"points", std::move(points)}}));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

void handleEventsGet(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                     Services& services) {
  auto params = queryParams(*call, reply, {"severity", "subject", "limit", "before"});
  if (!params) {
    return;
  }
  hardware::EventQuery query;
  if (auto it = params->find("severity"); it != params->end()) {
    query.minSeverity = hwmon::parseStatus(it->second);
    if (!query.minSeverity) {
      reply(invalid("severity", "parameter 'severity' must be ok, warning or critical"));
      return;
    }
  }
  if (auto it = params->find("subject"); it != params->end()) {
    query.subject = it->second;
  }
  auto positive = [&params](const char* key, std::int64_t most) -> std::optional<std::int64_t> {
    const auto& text = params->at(key);
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    bool ok = ec == std::errc() && end == text.data() + text.size() && n >= 1 && n <= most;
    return ok ? std::optional(n) : std::nullopt;
  };
  if (params->contains("limit")) {
    auto limit = positive("limit", 1000);
    if (!limit) {
      reply(invalid("limit", "parameter 'limit' must be an integer from 1 to 1000"));
      return;
    }
    query.limit = *limit;
  }
  if (params->contains("before")) {
    query.before = positive("before", std::numeric_limits<std::int64_t>::max());
    if (!query.before) {
      reply(invalid("before", "parameter 'before' must be an event id (next_before of a page)"));
      return;
    }
  }
  services.database.post([reply, query](db::Database& db) {
    try {
      reply(http::json(http::Status::ok, hardware::eventsJson(db, query)));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

// A view of the latest readings that takes no parameters.
template <class View>
void addView(http::Router& router, const char* path, Services& services, View view) {
  router.addAsync(
      http::Verb::get, path, kPermission,
      [&services, view](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        if (queryParams(*call, reply, {})) {
          reply(http::json(http::Status::ok, view(services.hardware.reports())));
        }
      });
}

}  // namespace

void addHardwareRoutes(http::Router& router, Services& services) {
  addView(router, "/api/v1/hardware", services, hardware::summaryJson);
  addView(router, "/api/v1/hardware/gpus", services, hardware::gpusJson);
  addView(router, "/api/v1/hardware/power", services, hardware::powerJson);
  router.addAsync(
      http::Verb::get, "/api/v1/hardware/sensors", kPermission,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleSensorsGet(call, reply, services.hardware);
      });
  router.addAsync(
      http::Verb::get, "/api/v1/hardware/sensors/{chip}/{sensor}/history", kPermission,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleHistoryGet(call, reply, services);
      });
  router.addAsync(
      http::Verb::get, "/api/v1/hardware/events", kPermission,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleEventsGet(call, reply, services);
      });
}

}  // namespace aibox::agent::api
