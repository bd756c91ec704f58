// /api/v1/audit: the audit log, its JSON-lines export and its verification (audit:read).
#include "agent/audit/audit.hpp"

#include <boost/json/array.hpp>
#include <boost/url/parse.hpp>

#include "agent/api/api.hpp"

namespace aibox::agent::api {
namespace {

constexpr std::string_view kPermission = "audit:read";

// The filter from ?actor=&action=&since=&until=&before=&limit=; a problem names the parameter.
std::variant<audit::Filter, json::Problem> readFilter(const http::Call& call) {
  audit::Filter filter;
  auto url = boost::urls::parse_origin_form(call.request.target());
  if (!url) {
    return json::Problem{"invalid_field", "", "the query string is malformed"};
  }
  for (const auto& param : url->params()) {
    std::string key = param.key;
    std::string value = param.value;
    auto number = [&value]() -> std::optional<std::int64_t> {
      try {
        std::size_t used = 0;
        auto n = std::stoll(value, &used);
        return used == value.size() && n > 0 ? std::optional(n) : std::nullopt;
      } catch (const std::exception&) {
        return std::nullopt;
      }
    };
    if (key == "actor") {
      filter.actor = value;
    } else if (key == "action") {
      filter.action = value;
    } else if (key == "since") {
      filter.since = value;
    } else if (key == "until") {
      filter.until = value;
    } else if (key == "before" || key == "limit") {
      auto n = number();
      if (!n || (key == "limit" && *n > 1000)) {
        return json::Problem{"invalid_field", key,
                             "parameter '" + key + "' must be a positive integer" +
                                 (key == "limit" ? " up to 1000" : "")};
      }
      if (key == "before") {
        filter.before = *n;
      } else {
        filter.limit = *n;
      }
    } else {
      return json::Problem{
          "invalid_field", key,
          "unknown parameter '" + key + "': use actor, action, since, until, before or limit"};
    }
  }
  return filter;
}

template <class Work>
void withFilter(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                Services& services, Work work) {
  auto filter = readFilter(*call);
  if (auto* problem = std::get_if<json::Problem>(&filter)) {
    reply(http::badRequest(*problem));
    return;
  }
  services.database.post([reply, filter = std::get<audit::Filter>(filter), work](db::Database& db) {
    try {
      reply(work(db, filter));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

http::Response listEntries(db::Database& db, const audit::Filter& filter) {
  boost::json::array entries;
  auto rows = audit::query(db, filter);
  for (const auto& e : rows) {
    entries.push_back(audit::toJson(e));
  }
  boost::json::object body{{"entries", entries}};
  body["next_before"] = rows.size() == static_cast<std::size_t>(filter.limit)
                            ? boost::json::value(rows.back().id)
                            : boost::json::value(nullptr);
  return http::json(http::Status::ok, body);
}

// Everything that matches, oldest first, one JSON object per line.
http::Response exportEntries(db::Database& db, audit::Filter filter) {
  filter.oldestFirst = true;
  filter.limit = 1000;
  std::string text;
  while (true) {
    auto rows = audit::query(db, filter);
    for (const auto& e : rows) {
      text += json::serialize(audit::toJson(e));
      text += '\n';
    }
    if (rows.size() < static_cast<std::size_t>(filter.limit)) {
      break;
    }
    filter.after = rows.back().id;
  }
  http::Response res{http::Status::ok, 11};
  res.set(boost::beast::http::field::content_type, "application/x-ndjson");
  res.set(boost::beast::http::field::content_disposition,
          "attachment; filename=\"aibox-audit.jsonl\"");
  res.body() = std::move(text);
  return res;
}

}  // namespace

void addAuditRoutes(http::Router& router, Services& services) {
  router.addAsync(
      http::Verb::get, "/api/v1/audit", kPermission,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        withFilter(call, reply, services, listEntries);
      });
  router.addAsync(
      http::Verb::get, "/api/v1/audit/export", kPermission,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        withFilter(call, reply, services, exportEntries);
      });
  router.addAsync(
      http::Verb::get, "/api/v1/audit/verify", kPermission,
      [&services](const std::shared_ptr<const http::Call>& /*call*/, const http::Reply& reply) {
        services.database.post([reply, &services](db::Database& db) {
          try {
            auto v = audit::verify(db, services.info.paths.stateDir() / "audit");
            boost::json::array problems;
            for (const auto& p : v.problems) {
              problems.push_back({{"where", p.where}, {"problem", p.what}});
            }
            reply(http::json(http::Status::ok, {{"ok", v.problems.empty()},
                                                {"rows_checked", v.rows},
                                                {"archives_checked", v.archives},
                                                {"problems", problems}}));
          } catch (const db::Error& e) {
            databaseFailed(reply, e);
          }
        });
      });
}

}  // namespace aibox::agent::api
