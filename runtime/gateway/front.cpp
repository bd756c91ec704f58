#include <boost/json/array.hpp>
#include <cmath>
#include <set>

#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {
namespace {

constexpr std::string_view kInvalid = "invalid_request_error";

std::string_view header(const http::Call& call, boost::beast::http::field name) {
  auto v = call.request[name];
  return {v.data(), v.size()};
}

void logRequest(const http::Call& call, const std::string& key, const std::string& model,
                unsigned status, double seconds, const Outcome* outcome = nullptr) {
  log::info("gateway request",
            {{"remote", call.remote},
             {"path", std::string(call.request.target())},
             {"key", key.empty() ? "-" : key},
             {"model", model.empty() ? "-" : model},
             {"status", std::to_string(status)},
             {"ms", std::to_string(std::lround(seconds * 1000))},
             {"prompt_tokens", outcome ? std::to_string(outcome->promptTokens) : "0"},
             {"completion_tokens", outcome ? std::to_string(outcome->completionTokens) : "0"}});
}

// The key of the call, or the 401 to answer.
std::variant<const Key*, http::Response> authenticate(const Snapshot& snapshot,
                                                      const http::Call& call) {
  auto checked =
      checkKey(snapshot, header(call, boost::beast::http::field::authorization), Clock::now());
  if (auto* key = std::get_if<const Key*>(&checked)) {
    return *key;
  }
  switch (std::get<KeyProblem>(checked)) {
    case KeyProblem::missing:
      return openaiError(http::Status::unauthorized, kInvalid, "missing_api_key",
                         "no API key: send 'Authorization: Bearer sk-aibox-...' with a key the "
                         "box's admin made (Keys in the console, or POST /api/v1/keys)");
    case KeyProblem::expired:
      return openaiError(http::Status::unauthorized, kInvalid, "expired_api_key",
                         "this API key has expired: ask the box's admin for a new one");
    default:
      return openaiError(http::Status::unauthorized, kInvalid, "invalid_api_key",
                         "this API key is not valid (wrong, revoked, or not an sk-aibox- key)");
  }
}

http::Response rateLimited(const Rejection& r) {
  bool tokens = r.code == "rate_limit_tokens";
  auto res = openaiError(
      http::Status::too_many_requests,
      tokens ? "tokens" : (r.code == "rate_limit_requests" ? "requests" : "concurrency"), r.code,
      r.message);
  res.set(boost::beast::http::field::retry_after,
          std::to_string(std::max<long>(1, std::lround(std::ceil(r.retryAfter)))));
  boost::beast::http::fields headers;
  setRateHeaders(r.rate, headers);
  for (const auto& h : headers) {
    res.set(h.name_string(), h.value());
  }
  return res;
}

void handleInference(Front& front, std::string_view path,
                     const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
  auto started = Steady::now();
  auto refuse = [&](http::Response res, const std::string& key, const std::string& model) {
    logRequest(*call, key, model, res.result_int(),
               std::chrono::duration<double>(Steady::now() - started).count());
    reply(std::move(res));
  };
  auto snapshot = front.snapshot();
  if (!snapshot) {
    return refuse(openaiError(http::Status::service_unavailable, "server_error", "not_ready",
                              "the gateway has not yet heard from the box's agent; retry shortly"),
                  "", "");
  }
  auto key = authenticate(*snapshot, *call);
  if (auto* res = std::get_if<http::Response>(&key)) {
    return refuse(std::move(*res), "", "");
  }
  const Key& k = *std::get<const Key*>(key);
  auto parsed = json::parseObject(call->request.body());
  if (auto* problem = std::get_if<json::Problem>(&parsed)) {
    return refuse(openaiError(http::Status::bad_request, kInvalid, "invalid_json",
                              "the request body is not a JSON object: " + problem->message),
                  k.id, "");
  }
  auto& body = std::get<boost::json::object>(parsed);
  const auto* modelField = body.if_contains("model");
  if (modelField == nullptr || !modelField->is_string() || modelField->as_string().empty()) {
    return refuse(openaiError(http::Status::bad_request, kInvalid, "missing_model",
                              "'model' is required: one of the names GET /v1/models lists"),
                  k.id, "");
  }
  std::string model(modelField->as_string());
  auto candidates = instancesFor(*snapshot, model);
  if (candidates.empty() || !keyAllows(k, model, candidates)) {
    // The same answer for a model that is not there and one the key may not use, so a key
    // cannot probe what else the box serves.
    return refuse(openaiError(http::Status::not_found, kInvalid, "model_not_found",
                              "the model '" + model +
                                  "' does not exist, has no ready instance or is not allowed "
                                  "for this key; see GET /v1/models"),
                  k.id, model);
  }
  double estimate = estimateTokens(body);
  auto admitted = front.limiter.admit(k, estimate, started);
  if (auto* rejection = std::get_if<Rejection>(&admitted)) {
    front.metrics.rejected(rejection->code);
    return refuse(rateLimited(*rejection), k.id, model);
  }
  auto exchange = std::make_shared<Exchange>();
  exchange->path = std::string(path);
  const auto* stream = body.if_contains("stream");
  bool streamed = stream != nullptr && stream->is_bool() && stream->as_bool();
  const auto* options = body.if_contains("stream_options");
  const auto* include = options != nullptr && options->is_object()
                            ? options->as_object().if_contains("include_usage")
                            : nullptr;
  exchange->dropUsage =
      streamed && !(include != nullptr && include->is_bool() && include->as_bool());
  exchange->body = std::move(body);
  exchange->candidates = std::move(candidates);
  exchange->ticket = std::get<std::shared_ptr<Limiter::Ticket>>(std::move(admitted));
  exchange->started = started;
  exchange->done = [&front, call, keyId = k.id, model, started,
                    ticket = std::weak_ptr<Limiter::Ticket>(exchange->ticket)](
                       const Instance* instance, const Outcome& outcome) {
    double seconds = std::chrono::duration<double>(Steady::now() - started).count();
    if (auto t = ticket.lock(); t && outcome.usageKnown) {
      t->settle(static_cast<double>(outcome.promptTokens + outcome.completionTokens));
    }
    std::string metered = instance != nullptr ? instance->model : model;
    front.meter.record({keyId, metered, outcome.promptTokens, outcome.completionTokens,
                        outcome.error, std::lround(seconds * 1000), Clock::now()});
    front.metrics.request(metered, outcome.status, seconds, outcome.firstByteSeconds);
    logRequest(*call, keyId, metered, outcome.status, seconds, &outcome);
  };
  forward(front.proxy, std::move(exchange), reply);
}

void handleModels(Front& front, const std::shared_ptr<const http::Call>& call,
                  const http::Reply& reply) {
  auto snapshot = front.snapshot();
  if (!snapshot) {
    reply(openaiError(http::Status::service_unavailable, "server_error", "not_ready",
                      "the gateway has not yet heard from the box's agent; retry shortly"));
    return;
  }
  auto key = authenticate(*snapshot, *call);
  if (auto* res = std::get_if<http::Response>(&key)) {
    reply(std::move(*res));
    return;
  }
  const Key& k = *std::get<const Key*>(key);
  std::set<std::string> seen;
  boost::json::array data;
  for (const auto& instance : snapshot->instances) {
    const auto& name = instance.servedName.empty() ? instance.model : instance.servedName;
    if (seen.insert(name).second && keyAllows(k, name, instancesFor(*snapshot, name))) {
      data.push_back({{"id", name}, {"object", "model"}, {"created", 0}, {"owned_by", "aibox"}});
    }
  }
  reply(http::json(http::Status::ok, {{"object", "list"}, {"data", std::move(data)}}));
}

}  // namespace

void addRoutes(http::Router& router, Front& front) {
  // Public to the router: the key is checked by each handler, so that its refusal has
  // OpenAI's error shape.
  router.addAsync(
      http::Verb::post, "/v1/chat/completions", http::kPublic,
      [&front](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleInference(front, "/v1/chat/completions", call, reply);
      });
  router.addAsync(
      http::Verb::post, "/v1/completions", http::kPublic,
      [&front](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleInference(front, "/v1/completions", call, reply);
      });
  router.addAsync(
      http::Verb::post, "/v1/embeddings", http::kPublic,
      [&front](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleInference(front, "/v1/embeddings", call, reply);
      });
  router.addAsync(http::Verb::get, "/v1/models", http::kPublic,
                  [&front](const std::shared_ptr<const http::Call>& call,
                           const http::Reply& reply) { handleModels(front, call, reply); });
  router.setFallback(
      "unmatched", http::kPublic, "",
      [](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        reply(openaiError(http::Status::not_found, kInvalid, "unknown_url",
                          "unknown request URL: " + std::string(call->request.method_string()) +
                              " " + std::string(call->request.target()) +
                              "; the gateway serves /v1/chat/completions, /v1/completions, "
                              "/v1/embeddings and /v1/models"));
      });
}

}  // namespace aibox::gateway
