#include <unistd.h>

#include <array>
#include <boost/json/object.hpp>

#include "agent/api/api.hpp"
#include "aibox_build_info.hpp"

namespace aibox::agent::api {
namespace {

std::string hostName() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) {
    return "unknown";
  }
  return name.data();
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

}  // namespace

void addSystemRoutes(http::Router& router, Services& services) {
  router.addAsync(
      http::Verb::get, "/api/v1/system", "system:read",
      [&services](const std::shared_ptr<const http::Call>& /*call*/, const http::Reply& reply) {
        services.database.post([reply, &services](db::Database& db) {
          try {
            reply(systemReport(db, services.info));
          } catch (const db::Error& e) {
            databaseFailed(reply, e);
          }
        });
      });
}

}  // namespace aibox::agent::api
