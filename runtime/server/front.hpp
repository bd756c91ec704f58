#pragma once
// The HTTP front of `aibox-runtime serve` (private to runtime/server): the routes, the bearer
// token check, the OpenAI responses and streams, and the metrics. serve.cpp wires it.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/http/http.hpp"
#include "common/http/metrics.hpp"
#include "runtime/server/openai.hpp"
#include "runtime/server/scheduler.hpp"
#include "runtime/server/server.hpp"
#include "runtime/text/chat.hpp"

namespace aibox::server {

// A Prometheus histogram with fixed bucket bounds.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08,
                                                  0.1,   0.25,  0.5,  1.0,  2.5,  5.0,  10.0};
  void observe(double seconds);
  void render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  mutable std::mutex mutex_;
  std::array<std::uint64_t, kBounds.size()> counts_{};
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// What the front knows of the model once it is loaded.
struct LoadedModel {
  const engine::Model* model = nullptr;
  Scheduler* scheduler = nullptr;
  const TokenFilter* filter = nullptr;             // for response_format
  std::optional<text::ChatTemplate> chatTemplate;  // none: /v1/chat/completions answers 400
  std::string chatTemplateError;
  text::ChatOptions chatOptions;
  bool splitReasoning = false;
  bool openThinking = false;  // the generation prompt ends inside <think>
};

class Front {
 public:
  Front(std::string servedName, std::string token);
  Front(const Front&) = delete;
  Front& operator=(const Front&) = delete;
  ~Front();

  // Adds every route to `router` (and the authenticator that checks the token).
  void install(http::Router& router);

  // The model's load: progress in [0, 1], then ready (or failed with the reason).
  void setProgress(double fraction) { progress_ = fraction; }
  void setReady(LoadedModel loaded, double loadSeconds);
  void setFailed(std::string reason);
  // Draining: new requests are refused with 503.
  void setDraining() { draining_ = true; }

 private:
  class TokenCheck;
  struct Metrics {
    Histogram ttft, tpot, e2e, queue;
    std::atomic<std::uint64_t> finished[4] = {};  // stop, length, cancelled, error
    std::atomic<std::uint64_t> rejected{0};
  };

  http::Response handleHealth(const http::Call& call) const;
  http::Response handleMetrics(const http::Call& call) const;
  http::Response handleModels(const http::Call& call) const;
  http::Response handleTokenize(const http::Call& call) const;
  http::Response handleDetokenize(const http::Call& call) const;
  void handleChat(const std::shared_ptr<const http::Call>& call, const http::Reply& reply);
  void handleCompletion(const std::shared_ptr<const http::Call>& call, const http::Reply& reply);
  void handleEmbeddings(const std::shared_ptr<const http::Call>& call, const http::Reply& reply);

  // Null when the model is ready; else the 503 to send.
  std::optional<http::Response> notReady() const;
  std::optional<http::Response> wrongModel(const std::string& model) const;
  // The parsed request once the model is ready and the name is right; else nullopt, answered.
  template <typename Request>
  std::optional<Request> admit(std::variant<Request, ApiError> parsed,
                               const http::Reply& reply) const;
  // toolCalls: tools are offered, so calls in that template's format are parsed from the answer.
  void start(std::vector<Token> prompt, const GenerationRequest& request, bool chat,
             const http::Reply& reply, std::optional<text::ChatTemplate> toolCalls);

  std::string servedName_;
  std::unique_ptr<TokenCheck> tokenCheck_;
  std::atomic<double> progress_{0};
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  mutable std::mutex mutex_;  // guards failure_
  std::string failure_;
  LoadedModel loaded_;  // set once, before ready_
  double loadSeconds_ = 0;
  std::int64_t created_ = 0;
  std::shared_ptr<Metrics> metrics_;
};

}  // namespace aibox::server
