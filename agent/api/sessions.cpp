// /api/v1/sessions: the live login sessions (permission user:admin).
#include <boost/json/array.hpp>

#include "agent/api/api.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

http::Response handleSessionsGet(const http::Call& call, Services& services) {
  boost::json::array sessions;
  for (const auto& s : services.security.sessions.list()) {
    sessions.push_back({{"id", s.id},
                        {"user", s.user},
                        {"role", s.role},
                        {"source", s.source},
                        {"created_at", isoTime(s.created)},
                        {"last_seen_at", isoTime(s.lastSeen)},
                        {"expires_at", isoTime(s.created + services.security.policy.sessionMax)},
                        {"current", s.id == call.identity.sessionId}});
  }
  return http::json(http::Status::ok, {{"sessions", sessions}});
}

void handleSessionDelete(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                         Services& services) {
  std::string id(call->param("id"));
  auto removed = services.security.sessions.revoke(id);
  if (removed.empty()) {
    reply(
        http::error(http::Status::not_found, "not_found", "no live session with id '" + id + "'"));
    return;
  }
  services.database.post([reply, removed, id](db::Database& db) {
    try {
      security::deleteSessions(db, removed);
      log::info("session revoked", {{"session", id}});
      reply(http::json(http::Status::ok, {{"status", "revoked"}, {"id", id}}));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

}  // namespace

void addSessionRoutes(http::Router& router, Services& services) {
  router.add(http::Verb::get, "/api/v1/sessions", "user:admin",
             [&services](const http::Call& call) { return handleSessionsGet(call, services); });
  router.addAsync(
      http::Verb::delete_, "/api/v1/sessions/{id}", "user:admin",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleSessionDelete(call, reply, services);
      });
}

}  // namespace aibox::agent::api
