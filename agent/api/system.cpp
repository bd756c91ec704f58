#include <unistd.h>

#include <array>
#include <boost/json/object.hpp>
#include <ctime>

#include "agent/api/api.hpp"
#include "aibox_build_info.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

std::string isoTime(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text.data();
}

std::string hostName() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) {
    return "unknown";
  }
  return name.data();
}

}  // namespace

void handleSystemGet(const std::shared_ptr<const http::Call>& /*call*/, const http::Reply& reply,
                     const AgentInfo& info, db::Worker& database) {
  database.post([reply, &info](db::Database& db) {
    try {
      reply(systemReport(db, info));
    } catch (const db::Error& e) {
      log::error("cannot read the system report from the database", {{"error", e.what()}});
      reply(http::error(
          http::Status::service_unavailable, "database_unavailable",
          "the agent database cannot be read; see the agent log (journalctl -u aibox-agent)"));
    }
  });
}

http::Response systemReport(db::Database& db, const AgentInfo& info) {
  auto stmt = db.prepare(
      "SELECT (SELECT COALESCE(MAX(version), 0) FROM schema_version), (SELECT COUNT(*) FROM "
      "agent_starts)");
  stmt.step();
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 info.startedSteady);
  boost::json::object body{
      {"hostname", hostName()},
      {"serial", info.serial ? boost::json::value(*info.serial) : boost::json::value(nullptr)},
      {"version", build::kVersion},
      {"build_id", build::kBuildId},
      {"started_at", isoTime(info.startedAt)},
      {"uptime_seconds", uptime.count()},
      {"root", info.paths.root().string()},
      {"schema_version", stmt.integer(0)},
      {"starts", stmt.integer(1)},
  };
  return http::json(http::Status::ok, body);
}

void addSystemRoutes(http::Router& router, const AgentInfo& info, db::Worker& database) {
  router.addAsync(
      http::Verb::get, "/api/v1/system", "system:read",
      [&info, &database](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleSystemGet(call, reply, info, database);
      });
}

}  // namespace aibox::agent::api
