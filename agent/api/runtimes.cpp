// /api/v1/runtimes: model instances the agent supervises (runtime:read to look, runtime:control
// to create, change, start, stop, restart and delete); /api/v1/engines: the engine profiles and
// whether their binary is installed. docs/runtimes.md.
#include <boost/json/array.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

#include "agent/api/api.hpp"
#include "agent/runtimes/relay.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

constexpr std::string_view kRead = "runtime:read";
constexpr std::string_view kControl = "runtime:control";

http::Response refused(const runtimes::Refusal& r) {
  return http::error(static_cast<http::Status>(r.status), r.code, r.message);
}

http::Response answer(const runtimes::Result<runtimes::View>& result,
                      http::Status ok = http::Status::ok) {
  if (const auto* r = std::get_if<runtimes::Refusal>(&result)) {
    return refused(*r);
  }
  return http::json(ok, runtimes::viewJson(std::get<runtimes::View>(result)));
}

// Runs `work` on the database worker (the supervisor's changes read the model and write the
// row there; a start forks there, off the event loop).
template <class Work>
void onDatabase(Services& services, const http::Reply& reply, Work work) {
  services.database.post([reply, work](db::Database& db) {
    try {
      reply(work(db));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

// An integer query parameter, or `fallback`.
std::optional<int> queryInt(const http::Call& call, std::string_view key, int fallback) {
  auto url = boost::urls::parse_origin_form(call.request.target());
  if (!url) {
    return std::nullopt;
  }
  for (const auto& p : url->params()) {
    if (p.key == key) {
      int v = 0;
      std::string value = p.value;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || end != value.data() + value.size() || v < 1 || v > 10000) {
        return std::nullopt;
      }
      return v;
    }
  }
  return fallback;
}

http::Response handleRuntimesList(Services& services) {
  boost::json::array list;
  for (const auto& v : services.runtimes.list()) {
    list.push_back(runtimes::viewJson(v));
  }
  return http::json(http::Status::ok, {{"runtimes", std::move(list)}});
}

// The "settings" member of a body, when there is one.
std::variant<runtimes::InstanceSettings, json::Problem> settingsOf(
    const boost::json::object& body) {
  const auto* v = body.if_contains("settings");
  if (v == nullptr || v->is_null()) {
    return runtimes::InstanceSettings{};
  }
  if (!v->is_object()) {
    return json::Problem{"invalid_field", "settings", "field 'settings' must be an object"};
  }
  auto parsed = runtimes::parseSettings(v->as_object());
  if (auto* p = std::get_if<json::Problem>(&parsed)) {
    p->field = "settings." + p->field;
  }
  return parsed;
}

void handleRuntimeCreate(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                         Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  auto settings = settingsOf(*body);
  if (auto* p = std::get_if<json::Problem>(&settings)) {
    return reply(http::badRequest(*p));
  }
  boost::json::object rest = *body;
  rest.erase("settings");
  json::Reader r(rest);
  runtimes::CreateRequest request;
  auto name = r.string("name");
  auto model = r.string("model");
  request.engine = r.string("engine", false).value_or("builtin");
  request.start = r.boolean("start", false).value_or(true);
  r.rejectUnknown();
  if (!r.ok()) {
    return reply(http::badRequest(*r.problem()));
  }
  if (!models::isName(*name)) {
    return reply(http::badRequest({"invalid_field", "name",
                                   "field 'name' must be 1 to 64 of a-z, 0-9, '.', '_' and '-', "
                                   "starting with a letter or a digit"}));
  }
  request.name = *name;
  request.settings = std::get<runtimes::InstanceSettings>(std::move(settings));
  call->auditDetails["runtime"] = request.name;
  call->auditDetails["model"] = *model;
  onDatabase(services, reply, [&services, request, model = *model](db::Database& db) {
    auto m = models::findModel(db, model);
    if (!m) {
      return http::error(http::Status::not_found, "not_found",
                         "no model '" + model + "': list them with aiboxctl models ls");
    }
    return answer(services.runtimes.create(db, *m, request), http::Status::created);
  });
}

void handleRuntimeUpdate(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                         Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  if (body->size() != 1 || !body->contains("settings")) {
    return reply(http::badRequest({"invalid_field", "",
                                   "the body must be {\"settings\": {...}}: the settings replace "
                                   "the old ones"}));
  }
  auto settings = settingsOf(*body);
  if (auto* p = std::get_if<json::Problem>(&settings)) {
    return reply(http::badRequest(*p));
  }
  std::string id(call->param("id"));
  call->auditDetails["runtime"] = id;
  onDatabase(services, reply,
             [&services, id, s = std::get<runtimes::InstanceSettings>(settings)](db::Database& db) {
               return answer(services.runtimes.update(db, id, s));
             });
}

void handleRuntimeDelete(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                         Services& services) {
  std::string id(call->param("id"));
  call->auditDetails["runtime"] = id;
  onDatabase(services, reply, [&services, id](db::Database& db) {
    auto result = services.runtimes.remove(db, id);
    if (const auto* r = std::get_if<runtimes::Refusal>(&result)) {
      return refused(*r);
    }
    return http::json(http::Status::ok,
                      {{"status", "deleted"}, {"id", std::get<runtimes::View>(result).id}});
  });
}

void handleRuntimeAction(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                         Services& services, const std::string& action) {
  std::string id(call->param("id"));
  call->auditDetails["runtime"] = id;
  std::string actor = call->identity.name;
  onDatabase(services, reply, [&services, id, action, actor](db::Database& db) {
    if (action == "start") {
      return answer(services.runtimes.startInstance(db, id));
    }
    if (action == "stop") {
      return answer(services.runtimes.stopInstance(id, "stopped by " + actor));
    }
    return answer(services.runtimes.restartInstance(db, id));
  });
}

http::Response handleRuntimeLogs(const http::Call& call, Services& services) {
  auto lines = queryInt(call, "lines", 100);
  if (!lines) {
    return http::badRequest(
        {"invalid_field", "lines", "parameter 'lines' must be a number from 1 to 10000"});
  }
  std::string id(call.param("id"));
  auto logs = services.runtimes.logs(id, static_cast<std::size_t>(*lines));
  if (!logs) {
    return refused({404, "not_found", "no runtime instance " + id + " (see aiboxctl runtimes ls)"});
  }
  return http::json(http::Status::ok,
                    {{"id", id}, {"lines", boost::json::array(logs->begin(), logs->end())}});
}

void handleRuntimeEvents(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                         Services& services) {
  std::string id(call->param("id"));
  auto view = services.runtimes.find(id);
  if (!view) {
    return reply(
        refused({404, "not_found", "no runtime instance " + id + " (see aiboxctl runtimes ls)"}));
  }
  onDatabase(services, reply, [&services, id = view->id](db::Database& db) {
    boost::json::array list;
    for (const auto& e : services.runtimes.history(db, id, 100)) {
      list.push_back(runtimes::eventJson(e));
    }
    return http::json(http::Status::ok, {{"events", std::move(list)}});
  });
}

http::Response handleRuntimeMetrics(const http::Call& call, Services& services) {
  std::string id(call.param("id"));
  auto view = services.runtimes.find(id);
  if (!view) {
    return refused({404, "not_found", "no runtime instance " + id + " (see aiboxctl runtimes ls)"});
  }
  std::string text;
  services.runtimes.renderInstanceMetrics(view->id, text);
  http::Response res{http::Status::ok, 11};
  res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(boost::beast::http::field::cache_control, "no-store");
  res.body() = std::move(text);
  return res;
}

// The console's chat playground: a chat completion on a ready instance, passed through as the
// engine streams it; `model` is set to the instance's served name.
void handleRuntimeChat(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                       Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  std::string id(call->param("id"));
  call->auditDetails["runtime"] = id;
  auto view = services.runtimes.find(id);
  if (!view) {
    return reply(
        refused({404, "not_found", "no runtime instance " + id + " (see aiboxctl runtimes ls)"}));
  }
  auto endpoint = services.runtimes.endpoint(view->id);
  if (!endpoint) {
    return reply(
        refused({409, "not_ready",
                 "instance " + view->name + " is " + std::string(runtimes::stateName(view->state)) +
                     ", not ready: start it and wait until it is ready "
                     "(aiboxctl runtimes start " +
                     view->name + ")"}));
  }
  (*body)["model"] = endpoint->servedName;
  runtimes::relay::post(services.io, {endpoint->port, "/v1/chat/completions", endpoint->token},
                        json::serialize(*body), std::chrono::minutes(2), reply);
}

http::Response handleEnginesList(Services& services) {
  boost::json::array list;
  for (const auto& [name, p] : services.runtimes.engines()) {
    boost::json::object o{{"name", name},
                          {"description", p.description},
                          {"binary", p.binary},
                          {"installed", p.resolved.has_value()},
                          {"formats", boost::json::array(p.formats.begin(), p.formats.end())},
                          {"gpus", p.gpus},
                          {"profile", p.file.string()}};
    if (p.resolved) {
      o["path"] = p.resolved->string();
    } else if (!p.install.empty()) {
      o["install"] = p.install;
    }
    list.push_back(std::move(o));
  }
  return http::json(http::Status::ok, {{"engines", std::move(list)}});
}

}  // namespace

void addRuntimeRoutes(http::Router& router, Services& services) {
  router.add(http::Verb::get, "/api/v1/runtimes", kRead,
             [&services](const http::Call&) { return handleRuntimesList(services); });
  router.addAsync(
      http::Verb::post, "/api/v1/runtimes", kControl,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleRuntimeCreate(call, reply, services);
      });
  router.add(http::Verb::get, "/api/v1/runtimes/{id}", kRead, [&services](const http::Call& call) {
    std::string id(call.param("id"));
    auto view = services.runtimes.find(id);
    return view ? http::json(http::Status::ok, runtimes::viewJson(*view))
                : refused({404, "not_found",
                           "no runtime instance " + id + " (see aiboxctl runtimes ls)"});
  });
  router.addAsync(
      http::Verb::patch, "/api/v1/runtimes/{id}", kControl,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleRuntimeUpdate(call, reply, services);
      });
  router.addAsync(
      http::Verb::delete_, "/api/v1/runtimes/{id}", kControl,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleRuntimeDelete(call, reply, services);
      });
  router.addAsync(
      http::Verb::post, "/api/v1/runtimes/{id}/start", kControl,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleRuntimeAction(call, reply, services, "start");
      });
  router.addAsync(
      http::Verb::post, "/api/v1/runtimes/{id}/stop", kControl,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleRuntimeAction(call, reply, services, "stop");
      });
  router.addAsync(
      http::Verb::post, "/api/v1/runtimes/{id}/restart", kControl,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleRuntimeAction(call, reply, services, "restart");
      });
  router.add(http::Verb::get, "/api/v1/runtimes/{id}/logs", kRead,
             [&services](const http::Call& call) { return handleRuntimeLogs(call, services); });
  router.addAsync(
      http::Verb::get, "/api/v1/runtimes/{id}/events", kRead,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleRuntimeEvents(call, reply, services);
      });
  router.add(http::Verb::get, "/api/v1/runtimes/{id}/metrics", kRead,
             [&services](const http::Call& call) { return handleRuntimeMetrics(call, services); });
  router.addAsync(
      http::Verb::post, "/api/v1/runtimes/{id}/chat", kControl,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleRuntimeChat(call, reply, services);
      });
  router.add(http::Verb::get, "/api/v1/engines", kRead,
             [&services](const http::Call&) { return handleEnginesList(services); });
}

}  // namespace aibox::agent::api
