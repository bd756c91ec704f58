// /api/v1/models: the model store (model:read, model:write). Imports and verifications are
// jobs, answered 202 with the job; see /api/v1/jobs.
#include "agent/models/models.hpp"

#include <boost/json/array.hpp>

#include "agent/api/api.hpp"
#include "agent/models/download.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

http::Response notFound(const std::string& id) {
  return http::error(http::Status::not_found, "not_found",
                     "no model '" + id + "': list them with GET /api/v1/models");
}

// Runs `work` on the database worker and turns the store's exceptions into answers.
template <class Work>
void withStore(Services& services, const http::Reply& reply, Work work) {
  services.database.post([reply, work](db::Database& db) {
    try {
      reply(work(db));
    } catch (const models::Conflict& e) {
      reply(http::error(http::Status::conflict, "conflict", e.what()));
    } catch (const models::NoSpace& e) {
      reply(http::error(http::Status::insufficient_storage, "insufficient_storage", e.what()));
    } catch (const std::invalid_argument& e) {
      reply(http::badRequest({"invalid_field", "", e.what()}));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    } catch (const std::exception& e) {
      log::error("model store request failed", {{"error", e.what()}});
      reply(http::error(http::Status::service_unavailable, "store_unavailable",
                        std::string("the model store cannot do this now: ") + e.what()));
    }
  });
}

void handleModelsGet(const std::shared_ptr<const http::Call>& /*call*/, const http::Reply& reply,
                     Services& services) {
  withStore(services, reply, [](db::Database& db) {
    boost::json::array list;
    for (const auto& m : models::listModels(db)) {
      list.push_back(models::modelJson(m));
    }
    return http::json(http::Status::ok, {{"models", std::move(list)}});
  });
}

void handleModelGet(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                    Services& services) {
  std::string id(call->param("id"));
  withStore(services, reply, [id](db::Database& db) {
    auto m = models::findModel(db, id);
    return m ? http::json(http::Status::ok, models::modelJson(*m)) : notFound(id);
  });
}

void handleModelImport(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                       Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  json::Reader reader(*body);
  models::ImportRequest request;
  auto source = reader.string("source");
  auto name = reader.string("name");
  auto tag = reader.string("tag", false);
  request.sha256 = reader.string("sha256", false);
  auto labels = reader.stringMap("labels", false);
  reader.rejectUnknown();
  if (!reader.ok()) {
    reply(http::badRequest(*reader.problem()));
    return;
  }
  request.source = *source;
  request.name = *name;
  request.tag = tag.value_or("latest");
  request.labels = labels.value_or(std::map<std::string, std::string>{});
  call->auditDetails["model"] = request.name + ":" + request.tag;
  call->auditDetails["source"] = models::redactUrl(request.source);  // never a password
  withStore(services, reply, [&services, request](db::Database& db) {
    auto models = models::listModels(db);
    bool replaces = std::any_of(models.begin(), models.end(), [&request](const auto& m) {
      return m.name == request.name && m.tag == request.tag;
    });
    if (!replaces) {
      auto wanted = static_cast<std::int64_t>(models.size()) + 1;
      if (auto refusal = services.license.refuse(license::Limit::models, wanted)) {
        return http::error(static_cast<http::Status>(refusal->status), refusal->code,
                           refusal->message);
      }
    }
    auto job = services.jobs.startImport(db, request);
    return http::json(http::Status::accepted,
                      {{"job", models::jobJson(job)}, {"model_id", job.modelId}});
  });
}

void handleModelDelete(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                       Services& services) {
  std::string id(call->param("id"));
  call->auditDetails["model"] = id;
  withStore(services, reply, [&services, id](db::Database& db) {
    auto m = models::findModel(db, id);
    if (!m) {
      return notFound(id);
    }
    if (m->inUse > 0) {
      throw models::Conflict("model " + m->name + ":" + m->tag + " is in use by " +
                             std::to_string(m->inUse) + " runtime instance(s): stop them first");
    }
    if (m->state == models::State::importing || m->state == models::State::verifying) {
      throw models::Conflict("model " + m->name + ":" + m->tag + " is " +
                             std::string(models::stateName(m->state)) +
                             ": cancel its job first (aiboxctl models jobs)");
    }
    // Marked first, so a crash half-way is finished by the reconciliation at the next start.
    models::setState(db, m->id, models::State::deleting);
    db.prepare("DELETE FROM models WHERE id = ?").bind(1, m->id).step();
    services.store.collect(db, m->id);
    services.store.modelChanged({m->id, m->name, m->tag, "deleted", ""});
    log::info("model removed", {{"model", m->name + ":" + m->tag}});
    return http::json(http::Status::ok, {{"status", "deleted"}, {"id", m->id}});
  });
}

void handleModelVerify(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                       Services& services) {
  std::string id(call->param("id"));
  call->auditDetails["model"] = id;
  withStore(services, reply, [&services, id](db::Database& db) {
    auto m = models::findModel(db, id);
    if (!m) {
      return notFound(id);
    }
    auto job = services.jobs.startVerify(db, *m);
    return http::json(http::Status::accepted,
                      {{"job", models::jobJson(job)}, {"model_id", job.modelId}});
  });
}

// The model as a tar bundle, streamed from its blobs.
void handleModelBundle(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                       Services& services) {
  std::string id(call->param("id"));
  services.database.post([reply, id, &services](db::Database& db) {
    try {
      auto m = models::findModel(db, id);
      if (!m) {
        reply(notFound(id));
        return;
      }
      if (m->state != models::State::ready) {
        reply(http::error(http::Status::conflict, "conflict",
                          "model " + m->name + ":" + m->tag + " is " +
                              std::string(models::stateName(m->state)) +
                              ": only a ready model can be exported"));
        return;
      }
      http::StreamedResponse res;
      res.headers.set(boost::beast::http::field::content_type, "application/x-tar");
      res.headers.set(boost::beast::http::field::content_disposition,
                      "attachment; filename=\"" + m->name + "-" + m->tag + ".aibox.tar\"");
      res.contentLength = models::bundleSize(*m);
      res.source = models::bundleSource(services.store, *m);
      reply(std::move(res));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

}  // namespace

void addModelRoutes(http::Router& router, Services& services) {
  router.addAsync(
      http::Verb::get, "/api/v1/models", "model:read",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleModelsGet(call, reply, services);
      });
  router.addAsync(
      http::Verb::post, "/api/v1/models", "model:write",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleModelImport(call, reply, services);
      });
  router.addAsync(http::Verb::get, "/api/v1/models/{id}", "model:read",
                  [&services](const std::shared_ptr<const http::Call>& call,
                              const http::Reply& reply) { handleModelGet(call, reply, services); });
  router.addAsync(
      http::Verb::delete_, "/api/v1/models/{id}", "model:write",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleModelDelete(call, reply, services);
      });
  router.addAsync(
      http::Verb::get, "/api/v1/models/{id}/bundle", "model:read",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleModelBundle(call, reply, services);
      });
  router.addAsync(
      http::Verb::post, "/api/v1/models/{id}/verify", "model:write",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleModelVerify(call, reply, services);
      });
}

}  // namespace aibox::agent::api
