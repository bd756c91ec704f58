#include "runtime/server/front.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <boost/json/array.hpp>
#include <chrono>
#include <cstring>
#include <deque>

#include "common/json/json.hpp"
#include "runtime/engine/sampler.hpp"
#include "runtime/text/tool_calls.hpp"

namespace aibox::server {
namespace {

using Clock = std::chrono::steady_clock;
using http::Status;

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::Response apiError(const ApiError& error) {
  auto res = http::json(static_cast<Status>(error.status), errorBody(error));
  if (error.status == 503) {
    res.set(boost::beast::http::field::retry_after, "1");
  }
  return res;
}

// One streamed answer: the scheduler's thread queues server-sent events; the server asks for
// them as it writes. Dropped by the server when the connection closes, which cancels the job.
class EventChannel {
 public:
  void send(std::string event, bool last) {
    http::PieceReady ready;
    std::string piece;
    {
      std::lock_guard lock(mutex_);
      queued_.push_back(std::move(event));
      ended_ = ended_ || last;
      if (!waiting_) {
        return;
      }
      ready = std::exchange(waiting_, nullptr);
      piece = take();
    }
    ready(std::move(piece), !finished());
  }

  void pull(http::PieceReady ready) {
    std::string piece;
    {
      std::lock_guard lock(mutex_);
      if (queued_.empty() && !ended_) {
        waiting_ = std::move(ready);
        return;
      }
      piece = take();
    }
    ready(std::move(piece), !finished());
  }

 private:
  std::string take() {  // under mutex_
    std::string out;
    while (!queued_.empty()) {
      out += queued_.front();
      queued_.pop_front();
    }
    return out;
  }
  bool finished() {
    std::lock_guard lock(mutex_);
    return ended_ && queued_.empty();
  }

  std::mutex mutex_;
  std::deque<std::string> queued_;
  http::PieceReady waiting_;
  bool ended_ = false;
};

// Cancels its job when the server lets go of the stream (the client went away).
struct CancelOnRelease {
  std::shared_ptr<Ticket> ticket;
  CancelOnRelease(const CancelOnRelease&) = delete;
  CancelOnRelease& operator=(const CancelOnRelease&) = delete;
  explicit CancelOnRelease(std::shared_ptr<Ticket> t) : ticket(std::move(t)) {}
  ~CancelOnRelease() { ticket->cancel(); }
};

std::string sse(const boost::json::value& value) {
  return "data: " + json::serialize(value) + "\n\n";
}

boost::json::value usageJson(const Finish& f) {
  return boost::json::object{{"prompt_tokens", f.promptTokens},
                             {"completion_tokens", f.completionTokens},
                             {"total_tokens", f.promptTokens + f.completionTokens},
                             {"prompt_tokens_details", {{"cached_tokens", f.cachedTokens}}}};
}

const std::string& requestedModel(const ChatRequest& r) {
  return r.generation.model;
}
const std::string& requestedModel(const CompletionRequest& r) {
  return r.generation.model;
}
const std::string& requestedModel(const EmbeddingRequest& r) {
  return r.model;
}

// The little-endian float32 bytes of `values` in base64, as OpenAI's encoding_format "base64".
std::string base64Floats(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());  // x86-64 and arm64: little-endian
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

// The embeddings of one request, gathered from its jobs (one per input) on the scheduler's
// thread; answered when the last one ends.
struct EmbeddingGather {
  std::mutex mutex;
  std::vector<std::vector<float>> vectors;
  std::size_t left = 0;
  std::size_t tokens = 0;
  std::string failure;
  bool base64 = false;
  std::string model;
  http::Reply reply;
};

// OpenAI's tool_calls entries (with their index in a stream).
boost::json::array toolCallsJson(const std::vector<text::ToolCall>& calls, bool stream) {
  boost::json::array out;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    boost::json::object call{
        {"id", newCallId()},
        {"type", "function"},
        {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (stream) {
      call["index"] = i;
    }
    out.push_back(std::move(call));
  }
  return out;
}

// A token's text as valid UTF-8 (a token may hold part of a character: U+FFFD stands for it;
// the chat shape's "bytes" keep the exact bytes).
std::string tokenText(const text::Tokenizer& tokenizer, Token token, bool asId = false) {
  if (asId) {
    return "token_id:" + std::to_string(token);
  }
  engine::Utf8Joiner joiner;
  auto text = joiner.push(tokenizer.piece(token, true));
  return text + joiner.flush();
}

// One token's log-probabilities, in the chat shape ({"token","logprob","bytes","top_logprobs"}).
boost::json::object chatLogprob(const text::Tokenizer& tokenizer, const TokenChoice& choice,
                                const std::vector<TokenChoice>& top, bool asIds) {
  auto entry = [&tokenizer, asIds](const TokenChoice& c) {
    boost::json::array bytes;
    for (unsigned char b : tokenizer.piece(c.token, true)) {
      bytes.push_back(b);
    }
    return boost::json::object{
        {"token", tokenText(tokenizer, c.token, asIds)}, {"logprob", c.logprob}, {"bytes", bytes}};
  };
  auto out = entry(choice);
  boost::json::array alternatives;
  for (const auto& c : top) {
    alternatives.push_back(entry(c));
  }
  out["top_logprobs"] = alternatives;
  return out;
}

// The state of one request while the scheduler generates it; touched on its thread only.
struct Generation {
  bool chat = false;
  bool stream = false;
  bool includeUsage = false;
  bool wantLogprobs = false;
  bool tokensAsIds = false;
  std::string id;
  std::int64_t created = 0;
  std::string model;
  const text::Tokenizer* tokenizer = nullptr;
  std::optional<ReasoningSplitter> reasoning;
  std::optional<text::ToolCallGate> tools;  // tools offered: calls are held back and parsed
  std::vector<text::ToolCall> calls;
  std::string content, reasoningText;
  boost::json::array logprobs;                            // chat: content entries
  boost::json::array tokens, tokenLogprobs, topLogprobs;  // completions
  std::shared_ptr<EventChannel> channel;
  Clock::time_point submitted = Clock::now();
  std::optional<Clock::time_point> firstToken;
  http::Reply reply;  // non-streamed: answered at the end

  std::string finishReason(const Finish& f) const {
    return !calls.empty() ? "tool_calls" : f.reason == "length" ? "length" : "stop";
  }

  boost::json::object chunk(boost::json::object choice) const {
    choice["index"] = 0;
    return {{"id", id},
            {"object", chat ? "chat.completion.chunk" : "text_completion"},
            {"created", created},
            {"model", model},
            {"choices", boost::json::array{choice}}};
  }
};

}  // namespace

void Histogram::observe(double seconds) {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) {
      ++counts_[i];
      break;
    }
  }
  ++count_;
  sum_ += seconds;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view labels) const {
  std::lock_guard lock(mutex_);
  std::uint64_t cumulative = 0;
  auto number = [](double d) { return json::serialize(d); };
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    out += std::string(name) + "_bucket{" + std::string(labels) + ",le=\"" + number(kBounds[i]) +
           "\"} " + std::to_string(cumulative) + "\n";
  }
  out += std::string(name) + "_bucket{" + std::string(labels) + ",le=\"+Inf\"} " +
         std::to_string(count_) + "\n";
  out += std::string(name) + "_sum{" + std::string(labels) + "} " + number(sum_) + "\n";
  out += std::string(name) + "_count{" + std::string(labels) + "} " + std::to_string(count_) + "\n";
}

// The bearer token of --api-token-file, compared in constant time. Without one every caller
// may use the routes (the port is on loopback).
class Front::TokenCheck final : public http::Authenticator {
 public:
  explicit TokenCheck(std::string token) : token_(std::move(token)) {}
  std::optional<http::Response> authenticate(http::Call& call,
                                             std::string_view permission) const override {
    if (!token_.empty() && permission != http::kPublic) {
      auto header = call.request[boost::beast::http::field::authorization];
      constexpr std::string_view kBearer = "Bearer ";
      std::string_view given;
      if (header.size() > kBearer.size() && header.substr(0, kBearer.size()) == kBearer) {
        given = header.substr(kBearer.size());
      }
      if (given.size() != token_.size() ||
          CRYPTO_memcmp(given.data(), token_.data(), token_.size()) != 0) {
        return apiError({.status = 401,
                         .message = "a valid API token is required: send 'Authorization: Bearer "
                                    "TOKEN' with the instance's token",
                         .code = "invalid_api_key"});
      }
    }
    call.identity.kind = http::Identity::Kind::token;
    call.identity.name = "client";
    call.identity.admin = true;
    return std::nullopt;
  }

 private:
  std::string token_;
};

Front::Front(std::string servedName, std::string token)
    : servedName_(std::move(servedName)),
      tokenCheck_(std::make_unique<TokenCheck>(std::move(token))),
      metrics_(std::make_shared<Metrics>()) {}

Front::~Front() = default;

void Front::install(http::Router& router) {
  constexpr std::string_view kUse = "inference";
  router.setAuthenticator(tokenCheck_.get());
  router.add(http::Verb::get, "/health", http::kPublic,
             [this](const http::Call& c) { return handleHealth(c); });
  router.add(http::Verb::get, "/metrics", kUse,
             [this](const http::Call& c) { return handleMetrics(c); });
  router.add(http::Verb::get, "/v1/models", kUse,
             [this](const http::Call& c) { return handleModels(c); });
  router.add(http::Verb::post, "/tokenize", kUse,
             [this](const http::Call& c) { return handleTokenize(c); });
  router.add(http::Verb::post, "/detokenize", kUse,
             [this](const http::Call& c) { return handleDetokenize(c); });
  router.addAsync(http::Verb::post, "/v1/chat/completions", kUse,
                  [this](std::shared_ptr<const http::Call> c, http::Reply r) { handleChat(c, r); });
  router.addAsync(
      http::Verb::post, "/v1/embeddings", kUse,
      [this](std::shared_ptr<const http::Call> c, http::Reply r) { handleEmbeddings(c, r); });
  router.addAsync(
      http::Verb::post, "/v1/completions", kUse,
      [this](std::shared_ptr<const http::Call> c, http::Reply r) { handleCompletion(c, r); });
  router.setFallback("unmatched", kUse, "", [](std::shared_ptr<const http::Call> c, http::Reply r) {
    r(apiError({.status = 404,
                .message = "no route " + std::string(c->request.target()) +
                           ": see GET /v1/models and POST "
                           "/v1/chat/completions",
                .code = "not_found"}));
  });
}

void Front::setReady(LoadedModel loaded, double loadSeconds) {
  loaded_ = std::move(loaded);
  loadSeconds_ = loadSeconds;
  created_ = unixNow();
  progress_ = 1;
  ready_ = true;
}

void Front::setFailed(std::string reason) {
  std::lock_guard lock(mutex_);
  failure_ = std::move(reason);
}

std::optional<http::Response> Front::notReady() const {
  if (draining_) {
    return apiError({.status = 503,
                     .message = "the server is shutting down: retry on another instance",
                     .type = "server_error",
                     .code = "shutting_down"});
  }
  if (!ready_) {
    return apiError({.status = 503,
                     .message = "the model is still loading: retry in a moment",
                     .type = "server_error",
                     .code = "model_loading"});
  }
  return std::nullopt;
}

std::optional<http::Response> Front::wrongModel(const std::string& model) const {
  if (model.empty() || model == servedName_) {
    return std::nullopt;
  }
  return apiError({.status = 404,
                   .message = "The model '" + model +
                              "' does not exist here; this instance "
                              "serves '" +
                              servedName_ + "'",
                   .param = "model",
                   .code = "model_not_found"});
}

http::Response Front::handleHealth(const http::Call& /*call*/) const {
  if (ready_) {
    auto stats = loaded_.scheduler->stats();
    return http::json(Status::ok, {{"status", draining_ ? "draining" : "ok"},
                                   {"model", servedName_},
                                   {"running", stats.running},
                                   {"waiting", stats.waiting}});
  }
  std::lock_guard lock(mutex_);
  if (!failure_.empty()) {
    return http::json(Status::service_unavailable, {{"status", "failed"}, {"error", failure_}});
  }
  return http::json(Status::service_unavailable,
                    {{"status", "loading"}, {"progress", std::round(progress_ * 100) / 100}});
}

http::Response Front::handleModels(const http::Call& /*call*/) const {
  boost::json::object model{
      {"id", servedName_}, {"object", "model"}, {"created", created_}, {"owned_by", "aibox"}};
  if (ready_) {
    model["max_model_len"] = loaded_.scheduler->options().context;
  }
  return http::json(
      Status::ok,
      {{"object", "list"}, {"data", ready_ ? boost::json::array{model} : boost::json::array{}}});
}

http::Response Front::handleTokenize(const http::Call& call) const {
  if (auto refused = notReady()) {
    return *refused;
  }
  auto parsed = parseBody(call.request.body());
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    return apiError(*error);
  }
  const auto& body = std::get<boost::json::object>(parsed);
  const auto* prompt = body.if_contains("prompt");
  if (prompt == nullptr || !prompt->is_string()) {
    return apiError({.message = "'prompt' must be a string", .param = "prompt"});
  }
  const auto* special = body.if_contains("add_special_tokens");
  if (special != nullptr && !special->is_bool()) {
    return apiError(
        {.message = "'add_special_tokens' must be true or false", .param = "add_special_tokens"});
  }
  auto tokens = loaded_.model->tokenizer().encode(prompt->as_string(),
                                                  special == nullptr || special->as_bool(), true);
  boost::json::array ids(tokens.begin(), tokens.end());
  return http::json(Status::ok, {{"tokens", ids},
                                 {"count", tokens.size()},
                                 {"max_model_len", loaded_.scheduler->options().context}});
}

http::Response Front::handleDetokenize(const http::Call& call) const {
  if (auto refused = notReady()) {
    return *refused;
  }
  auto parsed = parseBody(call.request.body());
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    return apiError(*error);
  }
  const auto& body = std::get<boost::json::object>(parsed);
  const auto* tokens = body.if_contains("tokens");
  const auto& tokenizer = loaded_.model->tokenizer();
  std::vector<Token> ids;
  if (tokens != nullptr && tokens->is_array()) {
    for (const auto& t : tokens->as_array()) {
      if (!t.is_int64() || t.as_int64() < 0 ||
          static_cast<std::size_t>(t.as_int64()) >= tokenizer.size()) {
        return apiError({.message = "'tokens' must be token ids from 0 to " +
                                    std::to_string(tokenizer.size() - 1),
                         .param = "tokens"});
      }
      ids.push_back(static_cast<Token>(t.as_int64()));
    }
  } else {
    return apiError({.message = "'tokens' must be a list of token ids", .param = "tokens"});
  }
  return http::json(Status::ok, {{"prompt", tokenizer.decode(ids, true)}});
}

template <typename Request>
std::optional<Request> Front::admit(std::variant<Request, ApiError> parsed,
                                    const http::Reply& reply) const {
  if (auto refused = notReady()) {
    reply(*refused);
    return std::nullopt;
  }
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    reply(apiError(*error));
    return std::nullopt;
  }
  auto& request = std::get<Request>(parsed);
  if (auto wrong = wrongModel(requestedModel(request))) {
    reply(*wrong);
    return std::nullopt;
  }
  return std::move(request);
}

void Front::handleChat(const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
  auto request = admit(parseChatRequest(call->request.body()), reply);
  if (!request) {
    return;
  }
  if (!loaded_.chatTemplate) {
    reply(apiError(
        {.message = loaded_.chatTemplateError + "; use /v1/completions", .param = "messages"}));
    return;
  }
  const auto family = *loaded_.chatTemplate;
  text::ChatOptions options = loaded_.chatOptions;
  if (!request->tools.empty() && !options.variant.tools) {
    reply(apiError({.message = "this model's chat template (" +
                               std::string(text::chatTemplateName(family)) +
                               ") does not render tools: call it without 'tools'",
                    .param = "tools"}));
    return;
  }
  options.tools = request->tools;
  auto rendered = text::renderChat(family, request->messages, options);
  if (auto* error = std::get_if<text::Error>(&rendered)) {
    reply(apiError({.message = error->message, .param = "messages"}));
    return;
  }
  std::optional<text::ChatTemplate> toolCalls;
  if (!request->tools.empty() && request->toolChoice != ToolChoice::None) {
    toolCalls = family;
  }
  if (toolCalls &&
      (request->toolChoice == ToolChoice::Required || request->toolChoice == ToolChoice::Named)) {
    auto schema = toolCallSchema(*request, family);
    if (auto* error = std::get_if<ApiError>(&schema)) {
      reply(apiError(*error));
      return;
    }
    request->generation.schema = std::get<std::shared_ptr<const JsonSchema>>(schema);
  }
  auto prompt = loaded_.model->tokenizer().encode(std::get<std::string>(rendered), false, true);
  start(std::move(prompt), request->generation, true, reply, toolCalls);
}

void Front::handleEmbeddings(const std::shared_ptr<const http::Call>& call,
                             const http::Reply& reply) {
  auto request = admit(parseEmbeddingRequest(call->request.body()), reply);
  if (!request) {
    return;
  }
  const auto& config = loaded_.model->config();
  if (config.pooling == engine::Pooling::None) {
    reply(apiError({.message = "this model is not an embedding model: its GGUF file declares no " +
                               config.architecture +
                               ".pooling_type (mean, cls or last); serve an embedding model for "
                               "/v1/embeddings",
                    .code = "model_not_embedding"}));
    return;
  }
  if (request->dimensions && *request->dimensions != config.embedding) {
    reply(apiError({.message = "this model's embeddings have " + std::to_string(config.embedding) +
                               " dimensions: leave 'dimensions' out or set it to that",
                    .param = "dimensions"}));
    return;
  }
  const auto& tokenizer = loaded_.model->tokenizer();
  const auto context = loaded_.scheduler->options().context;
  std::vector<std::vector<Token>> prompts;
  for (std::size_t i = 0; i < request->inputs.size(); ++i) {
    std::vector<Token> prompt;
    if (const auto* text = std::get_if<std::string>(&request->inputs[i])) {
      prompt = tokenizer.encode(*text, true, true);
    } else {
      prompt = std::get<std::vector<std::int32_t>>(request->inputs[i]);
      for (auto t : prompt) {
        if (static_cast<std::size_t>(t) >= tokenizer.size()) {
          reply(apiError({.message = "'input' has the token id " + std::to_string(t) +
                                     ", outside the vocabulary of " +
                                     std::to_string(tokenizer.size()),
                          .param = "input"}));
          return;
        }
      }
    }
    if (prompt.size() > context) {
      reply(
          apiError({.message = "This model's maximum context length is " + std::to_string(context) +
                               " tokens. However, input " + std::to_string(i) + " has " +
                               std::to_string(prompt.size()) + " tokens. Please shorten it.",
                    .param = "input",
                    .code = "context_length_exceeded"}));
      return;
    }
    prompts.push_back(std::move(prompt));
  }
  auto gather = std::make_shared<EmbeddingGather>();
  gather->vectors.resize(prompts.size());
  gather->left = prompts.size();
  gather->base64 = request->base64;
  gather->model = servedName_;
  gather->reply = reply;
  std::vector<std::shared_ptr<Ticket>> tickets;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    Job job;
    job.prompt = std::move(prompts[i]);
    job.pooling = config.pooling;
    job.onFinish = [gather, i](const Finish& f) {
      std::unique_lock lock(gather->mutex);
      gather->tokens += f.promptTokens;
      if (f.reason != "stop" && gather->failure.empty()) {
        gather->failure = f.reason == "error" ? f.error : "the request was cancelled";
      }
      gather->vectors[i] = f.embedding;
      if (--gather->left > 0) {
        return;
      }
      lock.unlock();
      if (!gather->failure.empty()) {
        gather->reply(apiError({.status = 503,
                                .message = "embedding failed: " + gather->failure,
                                .type = "server_error",
                                .code = "embedding_failed"}));
        return;
      }
      boost::json::array data;
      for (std::size_t k = 0; k < gather->vectors.size(); ++k) {
        boost::json::value embedding;
        if (gather->base64) {
          embedding = base64Floats(gather->vectors[k]);
        } else {
          embedding = boost::json::array(gather->vectors[k].begin(), gather->vectors[k].end());
        }
        data.push_back({{"object", "embedding"}, {"index", k}, {"embedding", embedding}});
      }
      gather->reply(http::json(
          Status::ok,
          {{"object", "list"},
           {"data", data},
           {"model", gather->model},
           {"usage", {{"prompt_tokens", gather->tokens}, {"total_tokens", gather->tokens}}}}));
    };
    auto ticket = loaded_.scheduler->submit(std::move(job));
    if (!ticket) {
      // The queue is full: the jobs already queued are cancelled and answer nothing more.
      {
        std::lock_guard lock(gather->mutex);
        gather->failure = "busy";
        gather->left += prompts.size() - i;  // never reaches 0: the reply below is the answer
      }
      for (auto& queued : tickets) {
        queued->cancel();
      }
      ++metrics_->rejected;
      reply(apiError({.status = 503,
                      .message = "the server is busy: the wait queue is full; retry shortly",
                      .type = "server_error",
                      .code = "server_overloaded"}));
      return;
    }
    tickets.push_back(std::move(ticket));
  }
}

void Front::handleCompletion(const std::shared_ptr<const http::Call>& call,
                             const http::Reply& reply) {
  auto request = admit(parseCompletionRequest(call->request.body()), reply);
  if (!request) {
    return;
  }
  const auto& tokenizer = loaded_.model->tokenizer();
  std::vector<Token> prompt;
  if (auto* text = std::get_if<std::string>(&request->prompt)) {
    prompt = tokenizer.encode(*text, true, true);
  } else {
    prompt = std::get<std::vector<std::int32_t>>(request->prompt);
    for (auto t : prompt) {
      if (static_cast<std::size_t>(t) >= tokenizer.size()) {
        reply(
            apiError({.message = "'prompt' has the token id " + std::to_string(t) +
                                 ", outside the vocabulary of " + std::to_string(tokenizer.size()),
                      .param = "prompt"}));
        return;
      }
    }
  }
  start(std::move(prompt), request->generation, false, reply, std::nullopt);
}

// Checks the context, submits the job and answers: at the end, or as a stream of events.
void Front::start(std::vector<Token> prompt, const GenerationRequest& request, bool chat,
                  const http::Reply& reply, std::optional<text::ChatTemplate> toolCalls) {
  const auto context = loaded_.scheduler->options().context;
  if (prompt.empty()) {
    reply(apiError({.message = "the prompt is empty", .param = chat ? "messages" : "prompt"}));
    return;
  }
  if (prompt.size() + 1 > context ||
      (request.maxTokens && prompt.size() + *request.maxTokens > context)) {
    std::string asked = request.maxTokens ? std::to_string(prompt.size() + *request.maxTokens)
                                          : std::to_string(prompt.size() + 1);
    reply(apiError(
        {.message = "This model's maximum context length is " + std::to_string(context) +
                    " tokens. However, you requested " + asked + " tokens (" +
                    std::to_string(prompt.size()) + " in the " + (chat ? "messages" : "prompt") +
                    ", " +
                    (request.maxTokens ? std::to_string(*request.maxTokens) : std::string("1")) +
                    " in the completion). Please reduce the length of the " +
                    (chat ? "messages" : "prompt") + " or the completion.",
         .param = chat ? "messages" : "prompt",
         .code = "context_length_exceeded"}));
    return;
  }
  if (auto problem = engine::validate(request.sampling); !problem.empty()) {
    reply(apiError({.message = problem}));
    return;
  }

  auto g = std::make_shared<Generation>();
  g->chat = chat;
  g->stream = request.stream;
  g->includeUsage = request.includeUsage;
  g->wantLogprobs = request.topLogprobs >= 0;
  g->tokensAsIds = request.tokensAsIds;
  g->id = newId(chat ? "chatcmpl" : "cmpl");
  g->created = unixNow();
  g->model = servedName_;
  g->tokenizer = &loaded_.model->tokenizer();
  if (chat && loaded_.splitReasoning) {
    g->reasoning.emplace(loaded_.openThinking);
  }
  if (toolCalls) {
    g->tools.emplace(*toolCalls);
  }
  if (g->stream) {
    g->channel = std::make_shared<EventChannel>();
    if (chat) {
      g->channel->send(sse(g->chunk({{"delta", {{"role", "assistant"}, {"content", ""}}},
                                     {"logprobs", nullptr},
                                     {"finish_reason", nullptr}})),
                       false);
    }
  } else {
    g->reply = reply;
  }

  Job job;
  job.prompt = std::move(prompt);
  job.sampling = request.sampling;
  job.maxTokens = request.maxTokens.value_or(0);
  job.stops = request.stops;
  job.logitBias = request.logitBias;
  job.topLogprobs = request.topLogprobs;
  job.ignoreEos = request.ignoreEos;
  job.schema = request.schema;
  job.filter = loaded_.filter;
  job.onPiece = [g](Piece piece) {
    if (!g->firstToken) {
      g->firstToken = Clock::now();
    }
    ReasoningSplitter::Parts parts{{}, piece.text};
    if (g->reasoning) {
      parts = g->reasoning->push(piece.text);
    }
    if (g->tools) {
      parts.content = g->tools->push(parts.content);
    }
    boost::json::value logprob = nullptr;
    if (g->wantLogprobs && piece.chosen) {
      if (g->chat) {
        logprob = chatLogprob(*g->tokenizer, *piece.chosen, piece.top, g->tokensAsIds);
      } else {
        auto text = tokenText(*g->tokenizer, piece.chosen->token, g->tokensAsIds);
        boost::json::object top;
        for (const auto& c : piece.top) {
          top[tokenText(*g->tokenizer, c.token, g->tokensAsIds)] = c.logprob;
        }
        g->tokens.push_back(boost::json::string(text));
        g->tokenLogprobs.push_back(piece.chosen->logprob);
        g->topLogprobs.push_back(top);
      }
    }
    if (!g->stream) {
      g->content += parts.content;
      g->reasoningText += parts.reasoning;
      if (!logprob.is_null()) {
        g->logprobs.push_back(logprob);
      }
      return;
    }
    if (parts.content.empty() && parts.reasoning.empty() && logprob.is_null()) {
      return;
    }
    if (g->chat) {
      boost::json::object delta;
      if (!parts.reasoning.empty()) {
        delta["reasoning_content"] = parts.reasoning;
      }
      if (!parts.content.empty() || parts.reasoning.empty()) {
        delta["content"] = parts.content;
      }
      boost::json::value lp = nullptr;
      if (!logprob.is_null()) {
        lp = boost::json::object{{"content", boost::json::array{logprob}}};
      }
      g->channel->send(
          sse(g->chunk({{"delta", delta}, {"logprobs", lp}, {"finish_reason", nullptr}})), false);
    } else {
      boost::json::value lp = nullptr;
      if (g->wantLogprobs && !g->tokens.empty()) {
        lp = boost::json::object{{"tokens", boost::json::array{g->tokens.back()}},
                                 {"token_logprobs", boost::json::array{g->tokenLogprobs.back()}},
                                 {"top_logprobs", boost::json::array{g->topLogprobs.back()}}};
      }
      g->channel->send(
          sse(g->chunk({{"text", parts.content}, {"logprobs", lp}, {"finish_reason", nullptr}})),
          false);
    }
  };
  job.onFinish = [g, metrics = metrics_](const Finish& f) {
    double e2e = since(g->submitted);
    static constexpr const char* kReasons[] = {"stop", "length", "cancelled", "error"};
    for (std::size_t i = 0; i < 4; ++i) {
      if (f.reason == kReasons[i]) {
        ++metrics->finished[i];
      }
    }
    metrics->e2e.observe(e2e);
    if (g->firstToken) {
      metrics->ttft.observe(std::chrono::duration<double>(*g->firstToken - g->submitted).count());
      if (f.completionTokens > 1) {
        metrics->tpot.observe(since(*g->firstToken) / static_cast<double>(f.completionTokens - 1));
      }
    }
    metrics->queue.observe(f.queueSeconds);
    ReasoningSplitter::Parts rest;
    if (g->reasoning) {
      rest = g->reasoning->flush();
    }
    if (g->tools) {
      rest.content = g->tools->push(rest.content);
      auto parsed = g->tools->finish();
      rest.content += parsed.content;
      g->calls = std::move(parsed.calls);
    }
    if (f.reason == "error") {
      ApiError error{.status = 503,
                     .message = "generation failed: " + f.error,
                     .type = "server_error",
                     .code = "generation_failed"};
      if (g->stream) {
        g->channel->send(sse(errorBody(error)) + "data: [DONE]\n\n", true);
      } else {
        g->reply(apiError(error));
      }
      return;
    }
    if (!g->stream) {
      if (f.reason == "cancelled") {
        g->reply(apiError({.status = 503,
                           .message = "the request was cancelled: the server is shutting down",
                           .type = "server_error",
                           .code = "cancelled"}));
        return;
      }
      g->content += rest.content;
      g->reasoningText += rest.reasoning;
      boost::json::object choice{{"index", 0}, {"finish_reason", g->finishReason(f)}};
      boost::json::value logprobs = nullptr;
      if (g->chat) {
        boost::json::object message{{"role", "assistant"}, {"content", g->content}};
        if (g->reasoning) {
          message["reasoning_content"] = g->reasoningText;
        }
        if (!g->calls.empty()) {
          if (g->content.empty()) {
            message["content"] = nullptr;
          }
          message["tool_calls"] = toolCallsJson(g->calls, false);
        }
        choice["message"] = message;
        if (g->wantLogprobs) {
          logprobs = boost::json::object{{"content", g->logprobs}};
        }
      } else {
        choice["text"] = g->content;
        if (g->wantLogprobs) {
          logprobs = boost::json::object{{"tokens", g->tokens},
                                         {"token_logprobs", g->tokenLogprobs},
                                         {"top_logprobs", g->topLogprobs}};
        }
      }
      choice["logprobs"] = logprobs;
      g->reply(http::json(Status::ok, {{"id", g->id},
                                       {"object", g->chat ? "chat.completion" : "text_completion"},
                                       {"created", g->created},
                                       {"model", g->model},
                                       {"choices", boost::json::array{choice}},
                                       {"usage", usageJson(f)}}));
      return;
    }
    std::string tail;
    if (!rest.content.empty() || !rest.reasoning.empty()) {
      boost::json::object delta;
      if (!rest.reasoning.empty()) {
        delta["reasoning_content"] = rest.reasoning;
      }
      if (!rest.content.empty()) {
        delta["content"] = rest.content;
      }
      tail += sse(g->chunk({{"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}));
    }
    if (!g->calls.empty()) {
      tail += sse(g->chunk({{"delta", {{"tool_calls", toolCallsJson(g->calls, true)}}},
                            {"logprobs", nullptr},
                            {"finish_reason", nullptr}}));
    }
    boost::json::object last{{"logprobs", nullptr}, {"finish_reason", g->finishReason(f)}};
    if (g->chat) {
      last["delta"] = boost::json::object();
    } else {
      last["text"] = "";
    }
    tail += sse(g->chunk(last));
    if (g->includeUsage) {
      auto usage = g->chunk({});
      usage["choices"] = boost::json::array();
      usage["usage"] = usageJson(f);
      tail += sse(usage);
    }
    tail += "data: [DONE]\n\n";
    g->channel->send(std::move(tail), true);
  };

  auto ticket = loaded_.scheduler->submit(std::move(job));
  if (!ticket) {
    ++metrics_->rejected;
    reply(apiError({.status = 503,
                    .message = "the server is busy: every slot is running and the wait queue "
                               "is full; retry shortly",
                    .type = "server_error",
                    .code = "server_overloaded"}));
    return;
  }
  if (!request.stream) {
    return;
  }
  http::StreamedResponse res;
  res.headers.set(boost::beast::http::field::content_type, "text/event-stream");
  res.headers.set(boost::beast::http::field::cache_control, "no-cache");
  auto guard = std::make_shared<CancelOnRelease>(ticket);
  res.push = [channel = g->channel, guard](std::size_t /*max*/, http::PieceReady ready) {
    channel->pull(std::move(ready));
  };
  reply(std::move(res));
}

http::Response Front::handleMetrics(const http::Call& /*call*/) const {
  std::string out;
  std::string labels = "model_name=\"" + http::labelValue(servedName_) + "\"";
  auto gauge = [&out, &labels](std::string_view name, std::string_view help, double value) {
    out += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " +
           std::string(name) + " gauge\n" + std::string(name) + "{" + labels + "} " +
           json::serialize(value) + "\n";
  };
  auto counter = [&out, &labels](std::string_view name, std::string_view help, double value) {
    out += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " +
           std::string(name) + " counter\n" + std::string(name) + "{" + labels + "} " +
           json::serialize(value) + "\n";
  };
  out +=
      "# HELP aibox_model_state 1 for the state the model is in.\n# TYPE aibox_model_state gauge\n";
  bool failed = false;
  {
    std::lock_guard lock(mutex_);
    failed = !failure_.empty();
  }
  for (const char* state : {"loading", "ready", "failed"}) {
    bool on = std::string_view(state) == "ready"    ? ready_.load()
              : std::string_view(state) == "failed" ? failed
                                                    : !ready_ && !failed;
    out += "aibox_model_state{" + labels + ",state=\"" + state + "\"} " + (on ? "1" : "0") + "\n";
  }
  gauge("aibox_model_load_progress", "Fraction of the model's weights read.", progress_);
  if (ready_) {
    gauge("aibox_model_load_seconds", "Seconds the model took to load.", loadSeconds_);
    auto s = loaded_.scheduler->stats();
    gauge("vllm:num_requests_running", "Requests in the running batch.",
          static_cast<double>(s.running));
    gauge("vllm:num_requests_waiting", "Requests waiting for a slot.",
          static_cast<double>(s.waiting));
    double usage =
        s.kvBlocks > 0 ? static_cast<double>(s.kvBlocksInUse) / static_cast<double>(s.kvBlocks) : 0;
    gauge("vllm:kv_cache_usage_perc",
          "Fraction of KV cache blocks held by running requests (1 = full).", usage);
    gauge("vllm:gpu_cache_usage_perc", "The same as vllm:kv_cache_usage_perc (older name).", usage);
    gauge("aibox_kv_cache_blocks", "Blocks of the KV cache (16 positions each).",
          static_cast<double>(s.kvBlocks));
    gauge("aibox_kv_cache_blocks_cached", "KV blocks holding a cached prompt prefix.",
          static_cast<double>(s.kvBlocksCached));
    counter("vllm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
            static_cast<double>(s.prefixQueries));
    counter("vllm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.",
            static_cast<double>(s.prefixHits));
    counter("vllm:prompt_tokens_total", "Prompt tokens computed.",
            static_cast<double>(s.promptTokens));
    counter("vllm:generation_tokens_total", "Tokens generated.",
            static_cast<double>(s.generationTokens));
    counter("aibox_scheduler_steps_total", "Forward passes run by the scheduler.",
            static_cast<double>(s.steps));
  }
  out +=
      "# HELP vllm:request_success_total Requests finished, by reason.\n"
      "# TYPE vllm:request_success_total counter\n";
  static constexpr const char* kReasons[] = {"stop", "length", "abort", "error"};
  for (std::size_t i = 0; i < 4; ++i) {
    out += "vllm:request_success_total{" + labels + ",finished_reason=\"" + kReasons[i] + "\"} " +
           std::to_string(metrics_->finished[i].load()) + "\n";
  }
  counter("aibox_requests_rejected_total", "Requests refused because the wait queue was full.",
          static_cast<double>(metrics_->rejected.load()));
  auto histogram = [&out, &labels](std::string_view name, std::string_view help,
                                   const Histogram& h) {
    out += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " +
           std::string(name) + " histogram\n";
    h.render(out, name, labels);
  };
  histogram("vllm:time_to_first_token_seconds", "Time to first token.", metrics_->ttft);
  histogram("vllm:time_per_output_token_seconds", "Time per output token after the first.",
            metrics_->tpot);
  histogram("vllm:e2e_request_latency_seconds", "End-to-end request latency.", metrics_->e2e);
  histogram("vllm:request_queue_time_seconds", "Time spent waiting for a slot.", metrics_->queue);
  http::renderProcessMetrics(out);
  http::Response res{Status::ok, 11};
  res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = std::move(out);
  return res;
}

}  // namespace aibox::server
