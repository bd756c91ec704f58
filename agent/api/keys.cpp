// /api/v1/keys: inference API keys for applications (key:read, key:admin).
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "agent/api/api.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

using security::Clock;

boost::json::value optional(const std::optional<std::int64_t>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

boost::json::value optionalTime(const std::optional<Clock::time_point>& t) {
  return t ? boost::json::value(isoTime(*t)) : boost::json::value(nullptr);
}

boost::json::object keyJson(const security::InferenceKey& k) {
  boost::json::array models;
  for (const auto& m : k.models) {
    models.emplace_back(m);
  }
  return {{"id", k.id},
          {"name", k.name},
          {"owner", k.owner},
          {"models", models},
          {"requests_per_minute", optional(k.requestsPerMinute)},
          {"tokens_per_minute", optional(k.tokensPerMinute)},
          {"max_concurrent", optional(k.maxConcurrent)},
          {"created_at", isoTime(k.created)},
          {"expires_at", optionalTime(k.expires)},
          {"last_used_at", optionalTime(k.lastUsed)}};
}

// A positive limit, or a problem naming the field.
std::optional<json::Problem> checkLimit(const std::optional<std::int64_t>& v, const char* field) {
  if (v && (*v < 1 || *v > 100'000'000)) {
    return json::Problem{"invalid_field", field,
                         std::string("field '") + field + "' must be 1 to 100000000"};
  }
  return std::nullopt;
}

void handleKeyCreate(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                     Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  json::Reader reader(*body);
  security::InferenceKey key;
  auto name = reader.string("name");
  auto owner = reader.string("owner", false);
  key.requestsPerMinute = reader.integer("requests_per_minute", false);
  key.tokensPerMinute = reader.integer("tokens_per_minute", false);
  key.maxConcurrent = reader.integer("max_concurrent", false);
  auto days = reader.integer("expires_in_days", false);
  auto models = reader.stringList("models", false);
  reader.rejectUnknown();
  if (!reader.ok()) {
    reply(http::badRequest(*reader.problem()));
    return;
  }
  if (models) {
    key.models = std::move(*models);
  }
  if (name->empty() || name->size() > 64) {
    reply(http::badRequest({"invalid_field", "name", "field 'name' must have 1 to 64 characters"}));
    return;
  }
  for (auto problem :
       {checkLimit(key.requestsPerMinute, "requests_per_minute"),
        checkLimit(key.tokensPerMinute, "tokens_per_minute"),
        checkLimit(key.maxConcurrent, "max_concurrent"), checkLimit(days, "expires_in_days")}) {
    if (problem) {
      reply(http::badRequest(*problem));
      return;
    }
  }
  key.name = *name;
  key.owner = owner ? *owner : call->identity.name;
  if (days) {
    key.expires = Clock::now() + std::chrono::hours(24 * *days);
  }
  services.database.post([reply, key, &services](db::Database& db) mutable {
    try {
      auto secret = security::createInferenceKey(db, key);
      log::info("inference key created", {{"key", key.id}, {"owner", key.owner}});
      services.events.publish("key", "key:read", {{"id", key.id}, {"change", "created"}});
      auto out = keyJson(key);
      out["key"] = secret;  // shown this once
      reply(http::json(http::Status::created, out));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

}  // namespace

void addKeyRoutes(http::Router& router, Services& services) {
  router.addAsync(http::Verb::get, "/api/v1/keys", "key:read",
                  [&services](const std::shared_ptr<const http::Call>&, const http::Reply& reply) {
                    services.database.post([reply](db::Database& db) {
                      try {
                        boost::json::array keys;
                        for (const auto& k : security::listInferenceKeys(db)) {
                          keys.push_back(keyJson(k));
                        }
                        reply(http::json(http::Status::ok, {{"keys", keys}}));
                      } catch (const db::Error& e) {
                        databaseFailed(reply, e);
                      }
                    });
                  });
  router.addAsync(
      http::Verb::post, "/api/v1/keys", "key:admin",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleKeyCreate(call, reply, services);
      });
  router.addAsync(
      http::Verb::delete_, "/api/v1/keys/{id}", "key:admin",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        services.database.post(
            [reply, id = std::string(call->param("id")), &services](db::Database& db) {
              try {
                if (!security::deleteInferenceKey(db, id)) {
                  reply(http::error(http::Status::not_found, "not_found",
                                    "no inference key with id '" + id + "'"));
                  return;
                }
                log::info("inference key deleted", {{"key", id}});
                // The gateway drops the key when it sees this (within a second).
                services.events.publish("key", "key:read", {{"id", id}, {"change", "deleted"}});
                reply(http::json(http::Status::ok, {{"status", "deleted"}, {"id", id}}));
              } catch (const db::Error& e) {
                databaseFailed(reply, e);
              }
            });
      });
}

}  // namespace aibox::agent::api
