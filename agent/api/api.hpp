#pragma once
// The agent's REST resources. One resource, one file; addRoutes registers them all.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "agent/console/console.hpp"
#include "agent/events/events.hpp"
#include "agent/hardware/hardware.hpp"
#include "agent/license/license.hpp"
#include "agent/models/models.hpp"
#include "agent/runtimes/runtimes.hpp"
#include "agent/security/security.hpp"
#include "common/config/config.hpp"
#include "common/db/db.hpp"
#include "common/http/http.hpp"
#include "common/http/metrics.hpp"
#include "common/http/tls.hpp"
#include "common/time/time.hpp"

namespace aibox::agent::api {

// What the system resource reports about this agent; fixed at start.
struct AgentInfo {
  config::Paths paths{"/"};
  std::optional<std::string> machineId;      // /etc/machine-id inside the root
  std::optional<http::CertificateInfo> tls;  // the HTTPS certificate; none with TLS off
  std::chrono::system_clock::time_point startedAt;
  std::chrono::steady_clock::time_point startedSteady;
  // Stops the agent as SIGTERM does and starts it again in the same process (exec).
  std::function<void()> restart;
};

// What the handlers work with; owned by the agent, outliving the router.
struct Services {
  const AgentInfo& info;
  db::Worker& database;
  const http::HttpMetrics& metrics;
  security::Security& security;
  const hardware::State& hardware;
  hardware::History& history;  // on the database worker only
  models::Store& store;
  models::Jobs& jobs;
  console::Files& console;
  events::Hub& events;
  license::Service& license;
  runtimes::Supervisor& runtimes;
  boost::asio::io_context& io;  // the agent's event loop, for calls it makes itself
};

// Every route of the agent.
void addRoutes(http::Router& router, Services& services);

void addHealthRoutes(http::Router& router);
void addSystemRoutes(http::Router& router, Services& services);
void addMetricsRoutes(http::Router& router, Services& services);
void addAuthRoutes(http::Router& router, Services& services);
void addUserRoutes(http::Router& router, Services& services);
void addSessionRoutes(http::Router& router, Services& services);
void addTokenRoutes(http::Router& router, Services& services);
void addAuditRoutes(http::Router& router, Services& services);
void addKeyRoutes(http::Router& router, Services& services);
void addHardwareRoutes(http::Router& router, Services& services);
void addModelRoutes(http::Router& router, Services& services);
void addJobRoutes(http::Router& router, Services& services);
void addEventRoutes(http::Router& router, Services& services);
void addConsoleRoutes(http::Router& router, Services& services);
void addLicenseRoutes(http::Router& router, Services& services);
void addRuntimeRoutes(http::Router& router, Services& services);
void addGatewayRoutes(http::Router& router, Services& services);

// aibox_license_state and the seconds to expiry, for /metrics.
void renderLicenseMetrics(license::Service& service, std::string& out);

struct LoginRequest {
  std::string username;  // lower-cased
  std::string password;
};
// The body of POST /api/v1/auth/login, or what is wrong with it.
std::variant<LoginRequest, json::Problem> parseLogin(std::string_view body);

using time::isoTime;
// Parses the body as a JSON object; on failure answers 400 and returns nullopt.
std::optional<boost::json::object> bodyObject(const http::Call& call, const http::Reply& reply);
// Runs `work` on the password-hashing thread. An exception there answers 503 and is logged,
// instead of ending the thread (and the agent).
void onHashingThread(Services& services, const http::Reply& reply, std::function<void()> work);

// 400 for a "role" field that names no role.
http::Response invalidRole();
// Answers 503 when the database fails, so a handler never leaves a call unanswered.
void databaseFailed(const http::Reply& reply, const std::exception& e);

}  // namespace aibox::agent::api
