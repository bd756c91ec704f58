// /api/v1/gateway: what aibox-gateway pulls and pushes over the unix socket (local peers of
// the agent's own user or root only: the snapshot holds key hashes and instance tokens), and
// /api/v1/usage, what applications used through it (usage:read). See docs/gateway.md.
#include <boost/json/array.hpp>
#include <boost/url/parse.hpp>

#include "agent/api/api.hpp"
#include "agent/usage/usage.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

constexpr std::string_view kSync = "gateway:sync";

boost::json::value nullable(const std::optional<std::int64_t>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

// The gateway's own calls come over the unix socket; a user or token never gets secrets.
bool refuseUnlessLocal(const http::Call& call, const http::Reply& reply) {
  if (call.identity.kind == http::Identity::Kind::local) {
    return false;
  }
  reply(http::error(http::Status::forbidden, "local_only",
                    "this route is for aibox-gateway on the agent's unix socket"));
  return true;
}

// The ready instances with the names a request's "model" may give: the store's name:tag, the
// name alone for the tag "latest", and the name the engine serves.
boost::json::array readyInstances(runtimes::Supervisor& supervisor) {
  boost::json::array out;
  for (const auto& v : supervisor.list()) {
    if (v.state != runtimes::State::ready) {
      continue;
    }
    auto endpoint = supervisor.endpoint(v.id);
    if (!endpoint) {
      continue;
    }
    boost::json::array names{boost::json::value(v.model)};
    for (const auto& name :
         {v.servedName,
          v.model.ends_with(":latest") ? v.model.substr(0, v.model.size() - 7) : std::string()}) {
      if (!name.empty() &&
          std::find(names.begin(), names.end(), boost::json::value(name)) == names.end()) {
        names.emplace_back(name);
      }
    }
    out.push_back({{"id", v.id},
                   {"name", v.name},
                   {"model", v.model},
                   {"names", std::move(names)},
                   {"served_name", endpoint->servedName},
                   {"port", endpoint->port},
                   {"token", endpoint->token}});
  }
  return out;
}

void handleSnapshot(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                    Services& services) {
  if (refuseUnlessLocal(*call, reply)) {
    return;
  }
  services.database.post([reply, &services](db::Database& db) {
    try {
      boost::json::array keys;
      for (const auto& k : security::listInferenceKeys(db)) {
        boost::json::array models(k.models.begin(), k.models.end());
        keys.push_back(
            {{"id", k.id},
             {"name", k.name},
             {"secret_hash", k.secretHash},
             {"models", std::move(models)},
             {"requests_per_minute", nullable(k.requestsPerMinute)},
             {"tokens_per_minute", nullable(k.tokensPerMinute)},
             {"max_concurrent", nullable(k.maxConcurrent)},
             {"expires_at", k.expires ? boost::json::value(security::unixSeconds(*k.expires))
                                      : boost::json::value(nullptr)}});
      }
      reply(http::json(http::Status::ok,
                       {{"keys", std::move(keys)},
                        {"instances", readyInstances(services.runtimes)},
                        {"max_concurrency", nullable(services.license.maxConcurrency())},
                        {"generated_at", isoTime(security::Clock::now())}}));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

void handleUsagePost(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                     Services& services) {
  if (refuseUnlessLocal(*call, reply)) {
    return;
  }
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  auto batch = usage::parseBatch(*body);
  if (auto* problem = std::get_if<json::Problem>(&batch)) {
    reply(http::badRequest(*problem));
    return;
  }
  services.database.post(
      [reply, batch = std::get<usage::Batch>(std::move(batch))](db::Database& db) {
        try {
          bool added = usage::record(db, batch);
          reply(http::json(http::Status::ok, {{"batch", batch.id},
                                              {"status", added ? "recorded" : "already_recorded"},
                                              {"rows", batch.rows.size()}}));
        } catch (const db::Error& e) {
          databaseFailed(reply, e);
        }
      });
}

// ?since=&until= (ISO 8601 or unix seconds), &key=, &model=, &format=json|csv.
std::variant<std::pair<usage::Filter, bool>, json::Problem> readUsageQuery(const http::Call& call) {
  usage::Filter filter;
  bool csv = false;
  auto url = boost::urls::parse_origin_form(call.request.target());
  if (!url) {
    return json::Problem{"invalid_field", "", "the query string is malformed"};
  }
  for (const auto& param : url->params()) {
    std::string key = param.key;
    std::string value = param.value;
    if (key == "since" || key == "until") {
      auto t = time::parseTime(value);
      if (!t) {
        return json::Problem{
            "invalid_field", key,
            "parameter '" + key + "' must be a time such as 2026-12-01T00:00:00Z or unix seconds"};
      }
      (key == "since" ? filter.since : filter.until) = *t;
    } else if (key == "key") {
      filter.key = value;
    } else if (key == "model") {
      filter.model = value;
    } else if (key == "format" && (value == "json" || value == "csv")) {
      csv = value == "csv";
    } else {
      return json::Problem{"invalid_field", key,
                           key == "format" ? "parameter 'format' must be json or csv"
                                           : "unknown parameter '" + key +
                                                 "': use since, until, key, model or format"};
    }
  }
  if (filter.since) {  // the hour that holds `since` counts
    *filter.since -= *filter.since % 3600;
  }
  return std::pair{filter, csv};
}

void handleUsageGet(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                    Services& services) {
  auto query = readUsageQuery(*call);
  if (auto* problem = std::get_if<json::Problem>(&query)) {
    reply(http::badRequest(*problem));
    return;
  }
  auto [filter, csv] = std::get<0>(query);
  services.database.post([reply, filter, csv](db::Database& db) {
    try {
      auto rows = usage::query(db, filter);
      if (csv) {
        http::Response res{http::Status::ok, 11};
        res.set(boost::beast::http::field::content_type, "text/csv; charset=utf-8");
        res.set(boost::beast::http::field::content_disposition,
                "attachment; filename=\"aibox-usage.csv\"");
        res.body() = usage::csv(rows);
        reply(std::move(res));
        return;
      }
      boost::json::array out;
      std::int64_t requests = 0;
      std::int64_t prompt = 0;
      std::int64_t completion = 0;
      std::int64_t errors = 0;
      for (const auto& r : rows) {
        out.push_back(usage::rowJson(r));
        requests += r.requests;
        prompt += r.promptTokens;
        completion += r.completionTokens;
        errors += r.errors;
      }
      boost::json::object totals{{"requests", requests},
                                 {"prompt_tokens", prompt},
                                 {"completion_tokens", completion},
                                 {"errors", errors}};
      reply(http::json(http::Status::ok, {{"usage", std::move(out)}, {"totals", totals}}));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

}  // namespace

void addGatewayRoutes(http::Router& router, Services& services) {
  router.addAsync(http::Verb::get, "/api/v1/gateway/snapshot", kSync,
                  [&services](const std::shared_ptr<const http::Call>& call,
                              const http::Reply& reply) { handleSnapshot(call, reply, services); });
  router.addAsync(
      http::Verb::post, "/api/v1/gateway/usage", kSync,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleUsagePost(call, reply, services);
      });
  router.addAsync(http::Verb::get, "/api/v1/usage", "usage:read",
                  [&services](const std::shared_ptr<const http::Call>& call,
                              const http::Reply& reply) { handleUsageGet(call, reply, services); });
}

}  // namespace aibox::agent::api
