#include <array>
#include <boost/asio/post.hpp>
#include <ctime>

#include "agent/api/api.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {

void addRoutes(http::Router& router, Services& services) {
  addHealthRoutes(router);
  addSystemRoutes(router, services);
  addMetricsRoutes(router, services);
  addAuthRoutes(router, services);
  addUserRoutes(router, services);
  addSessionRoutes(router, services);
  addTokenRoutes(router, services);
  addAuditRoutes(router, services);
  addKeyRoutes(router, services);
  addHardwareRoutes(router, services);
  addModelRoutes(router, services);
  addJobRoutes(router, services);
  addEventRoutes(router, services);
  addConsoleRoutes(router, services);
  addLicenseRoutes(router, services);
  addRuntimeRoutes(router, services);
  addGatewayRoutes(router, services);
}

std::optional<boost::json::object> bodyObject(const http::Call& call, const http::Reply& reply) {
  auto parsed = json::parseObject(call.request.body());
  if (auto* problem = std::get_if<json::Problem>(&parsed)) {
    reply(http::badRequest(*problem));
    return std::nullopt;
  }
  return std::get<boost::json::object>(std::move(parsed));
}

void onHashingThread(Services& services, const http::Reply& reply, std::function<void()> work) {
  boost::asio::post(services.security.hashing, [reply, work = std::move(work)] {
    try {
      work();
    } catch (const std::exception& e) {
      log::error("password hashing failed", {{"error", e.what()}});
      reply(http::error(http::Status::service_unavailable, "hashing_failed",
                        "the password could not be checked; see the agent log"));
    }
  });
}

http::Response invalidRole() {
  return http::badRequest(
      {"invalid_field", "role", "field 'role' must be admin, operator, auditor or viewer"});
}

void databaseFailed(const http::Reply& reply, const std::exception& e) {
  log::error("database request failed", {{"error", e.what()}});
  reply(http::error(http::Status::service_unavailable, "database_unavailable",
                    "the agent database cannot be used right now; see the agent log "
                    "(journalctl -u aibox-agent)"));
}

}  // namespace aibox::agent::api
