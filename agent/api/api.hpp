#pragma once
// The agent's REST resources. One resource, one file; each registers its routes here.

#include <chrono>
#include <optional>
#include <string>

#include "common/config/config.hpp"
#include "common/db/db.hpp"
#include "common/http/http.hpp"
#include "common/http/metrics.hpp"

namespace aibox::agent::api {

// What the system resource reports about this agent; fixed at start.
struct AgentInfo {
  config::Paths paths{"/"};
  std::optional<std::string> serial;  // from the provisioned identity, when present
  std::chrono::system_clock::time_point startedAt;
  std::chrono::steady_clock::time_point startedSteady;
};

void addHealthRoutes(http::Router& router);
void addSystemRoutes(http::Router& router, const AgentInfo& info, db::Worker& database);
void addMetricsRoutes(http::Router& router, const http::HttpMetrics& metrics);

// Handlers, named so tests can call them directly.
http::Response handleHealthGet(const http::Call& call);
void handleSystemGet(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                     const AgentInfo& info, db::Worker& database);
http::Response systemReport(db::Database& db, const AgentInfo& info);
http::Response handleMetricsGet(const http::Call& call, const http::HttpMetrics& metrics);

}  // namespace aibox::agent::api
