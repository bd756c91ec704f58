// /api/v1/events: live updates for the web console as server-sent events (system:read; each
// event goes only to callers whose role may read what it reports). See docs/api.md, "Events".
#include "agent/events/events.hpp"

#include <boost/json/array.hpp>

#include "agent/api/api.hpp"

namespace aibox::agent::api {
namespace {

// Whether the caller's credentials still hold: a session not revoked, expired or changed in
// role, a token not revoked. A local peer's connection is its credential.
events::Hub::StillValid stillValid(const http::Call& call, security::Security& security) {
  const auto& who = call.identity;
  if (who.kind == http::Identity::Kind::session) {
    return [&security, id = who.sessionId, role = who.role] {
      auto s = security.sessions.active(id);
      return s && s->role == role && !s->mustChangePassword;
    };
  }
  if (who.kind == http::Identity::Kind::token) {
    auto header = call.request[boost::beast::http::field::authorization];
    std::string_view value(header.data(), header.size());
    std::string bearer(value.substr(std::min<std::size_t>(value.size(), 7)));  // "Bearer "
    return [&security, bearer] {
      return security.tokens.check(bearer, security::Clock::now()).has_value();
    };
  }
  return nullptr;
}

void handleEventsGet(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                     Services& services) {
  const auto& who = call->identity;
  boost::json::array kinds{"hello", "resync", "end"};
  for (const auto& [permission, names] :
       {std::pair{"hardware:read", std::array{"hardware", "hardware_event"}},
        std::pair{"model:read", std::array{"job", "model"}}}) {
    if (who.allows(permission)) {
      kinds.insert(kinds.end(), names.begin(), names.end());
    }
  }
  if (who.allows("license:read")) {
    kinds.emplace_back("license");
  }
  if (who.allows("runtime:read")) {
    kinds.emplace_back("runtime");
  }
  if (who.allows("key:read")) {
    kinds.emplace_back("key");
  }
  auto hello = events::format(
      "hello", boost::json::object{{"user", who.name},
                                   {"role", who.kind == http::Identity::Kind::local
                                                ? boost::json::value(who.admin ? "admin" : "")
                                                : boost::json::value(who.role)},
                                   {"heartbeat_s", services.events.options().heartbeat.count()},
                                   {"events", std::move(kinds)}});
  auto source = services.events.subscribe(
      std::move(hello),
      [identity = who](std::string_view permission) { return identity.allows(permission); },
      stillValid(*call, services.security));
  if (!source) {
    auto res = http::error(
        http::Status::service_unavailable, "too_many_streams",
        "the agent already serves " + std::to_string(services.events.options().maxClients) +
            " event streams (server.events_max_clients): close a console tab, or retry later");
    res.set(boost::beast::http::field::retry_after, "30");
    reply(std::move(res));
    return;
  }
  http::StreamedResponse res;
  res.headers.set(boost::beast::http::field::content_type, "text/event-stream");
  res.headers.set(boost::beast::http::field::cache_control, "no-store");
  res.headers.set("X-Accel-Buffering", "no");  // for a reverse proxy in front: do not buffer
  res.push = std::move(*source);
  reply(std::move(res));
}

}  // namespace

void addEventRoutes(http::Router& router, Services& services) {
  router.addAsync(
      http::Verb::get, "/api/v1/events", "system:read",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleEventsGet(call, reply, services);
      });
}

}  // namespace aibox::agent::api
