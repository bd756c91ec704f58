// /api/v1/tokens: admin API tokens for automation (permission user:admin).
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "agent/api/api.hpp"
#include "common/http/roles.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

using security::Clock;

boost::json::value optionalTime(const std::optional<Clock::time_point>& t) {
  return t ? boost::json::value(isoTime(*t)) : boost::json::value(nullptr);
}

boost::json::object tokenJson(const security::ApiToken& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"role", t.role},
          {"created_by", t.createdBy},
          {"created_at", isoTime(t.created)},
          {"expires_at", optionalTime(t.expires)},
          {"last_used_at", optionalTime(t.lastUsed)}};
}

http::Response handleTokensGet(Services& services) {
  boost::json::array tokens;
  for (const auto& t : services.security.tokens.list()) {
    tokens.push_back(tokenJson(t));
  }
  return http::json(http::Status::ok, {{"tokens", tokens}});
}

void handleTokenCreate(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                       Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  json::Reader reader(*body);
  auto name = reader.string("name");
  auto role = reader.string("role");
  auto days = reader.integer("expires_in_days", false);
  reader.rejectUnknown();
  if (!reader.ok()) {
    reply(http::badRequest(*reader.problem()));
    return;
  }
  if (name->empty() || name->size() > 64) {
    reply(http::badRequest({"invalid_field", "name", "field 'name' must have 1 to 64 characters"}));
    return;
  }
  if (!http::isRole(*role)) {
    reply(invalidRole());
    return;
  }
  if (days && (*days < 1 || *days > 3650)) {
    reply(http::badRequest(
        {"invalid_field", "expires_in_days", "field 'expires_in_days' must be 1 to 3650"}));
    return;
  }
  std::optional<Clock::time_point> expires;
  if (days) {
    expires = Clock::now() + std::chrono::hours(24 * *days);
  }
  auto [secret, token] =
      services.security.tokens.create(*name, *role, call->identity.name, expires);
  services.database.post([reply, secret = secret, token = token](db::Database& db) {
    try {
      security::storeToken(db, token);
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
      return;
    }
    log::info("API token created", {{"token", token.id}, {"role", token.role}});
    auto out = tokenJson(token);
    out["token"] = secret;  // shown this once
    reply(http::json(http::Status::created, out));
  });
}

void handleTokenDelete(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                       Services& services) {
  std::string id(call->param("id"));
  if (!services.security.tokens.revoke(id)) {
    reply(http::error(http::Status::not_found, "not_found", "no API token with id '" + id + "'"));
    return;
  }
  services.database.post([reply, id](db::Database& db) {
    try {
      security::deleteToken(db, id);
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
      return;
    }
    log::info("API token revoked", {{"token", id}});
    reply(http::json(http::Status::ok, {{"status", "revoked"}, {"id", id}}));
  });
}

}  // namespace

void addTokenRoutes(http::Router& router, Services& services) {
  router.add(http::Verb::get, "/api/v1/tokens", "user:admin",
             [&services](const http::Call&) { return handleTokensGet(services); });
  router.addAsync(
      http::Verb::post, "/api/v1/tokens", "user:admin",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleTokenCreate(call, reply, services);
      });
  router.addAsync(
      http::Verb::delete_, "/api/v1/tokens/{id}", "user:admin",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleTokenDelete(call, reply, services);
      });
}

}  // namespace aibox::agent::api
