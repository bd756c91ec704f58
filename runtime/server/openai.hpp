#pragma once
// The OpenAI API's request and response shapes, as its reference defines them: reading
// /v1/chat/completions and /v1/completions bodies (unknown fields ignored, as OpenAI does;
// wrong types and out-of-range values name the field in `param`), and writing completions,
// streamed chunks and errors.

#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/engine/sampler.hpp"
#include "runtime/server/json_schema.hpp"
#include "runtime/text/chat.hpp"

namespace aibox::server {

// An error in OpenAI's shape: {"error":{"message","type","param","code"}}.
struct ApiError {
  unsigned status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};
boost::json::object errorBody(const ApiError& error);

// What both kinds of completion request share.
struct GenerationRequest {
  std::string model;  // empty when not given
  engine::SamplingParams sampling;
  std::optional<std::uint32_t> maxTokens;
  std::vector<std::string> stops;
  std::map<std::int32_t, float> logitBias;
  int topLogprobs = -1;      // -1: no log-probabilities
  bool tokensAsIds = false;  // vLLM's return_tokens_as_token_ids: logprob tokens as "token_id:N"
  bool ignoreEos = false;    // vLLM's ignore_eos: generate up to max_tokens (benchmarks)
  bool stream = false;
  bool includeUsage = false;
  std::string user;
  std::shared_ptr<const JsonSchema> schema;  // response_format json_object / json_schema
};

// tool_choice: auto (the model decides), none (no calls), required (a call to one of the
// tools), or a call to the named function.
enum class ToolChoice { Auto, None, Required, Named };

struct ChatRequest {
  GenerationRequest generation;
  std::vector<text::Message> messages;
  boost::json::array tools;  // {"type": "function", "function": {"name", ...}} each
  ToolChoice toolChoice = ToolChoice::Auto;
  std::string toolName;  // Named: the function
};

struct CompletionRequest {
  GenerationRequest generation;
  // The prompt as text, or as token ids when the client sent them.
  std::variant<std::string, std::vector<std::int32_t>> prompt;
  bool echo = false;
};

// POST /v1/embeddings: "input" a string, a list of strings, a list of token ids or a list of
// such lists (at most 256 inputs); "encoding_format" float or base64; "dimensions" only the
// model's own width.
struct EmbeddingRequest {
  std::string model;
  std::vector<std::variant<std::string, std::vector<std::int32_t>>> inputs;
  bool base64 = false;
  std::optional<std::int64_t> dimensions;
  std::string user;
};

std::variant<ChatRequest, ApiError> parseChatRequest(std::string_view body);
std::variant<EmbeddingRequest, ApiError> parseEmbeddingRequest(std::string_view body);
std::variant<CompletionRequest, ApiError> parseCompletionRequest(std::string_view body);

// The constraint that makes the answer a call, written as `chatTemplate` writes calls (ChatMl:
// in <tool_call> tags; Llama3: a bare {"name", "parameters"} object): to the named function with
// its parameters' schema (also for "required" with a single tool), or to any of several tools
// with object arguments. An ApiError names a
// function whose parameters constrained decoding cannot follow.
std::variant<std::shared_ptr<const JsonSchema>, ApiError> toolCallSchema(
    const ChatRequest& request, text::ChatTemplate chatTemplate);

// "call_<24 hex>", random: the id of a tool call.
std::string newCallId();

// Reads a JSON object body; an ApiError when it is not one.
std::variant<boost::json::object, ApiError> parseBody(std::string_view body);

// "chatcmpl-<24 hex>" / "cmpl-<24 hex>", random.
std::string newId(std::string_view prefix);

// Splits DeepSeek-R1 output into reasoning (between <think> and </think>) and the answer,
// piece by piece: a tag split across pieces is held back until it is whole or cannot be one.
class ReasoningSplitter {
 public:
  // `thinking`: the prompt already opened <think> (the generation starts inside it).
  explicit ReasoningSplitter(bool thinking) : thinking_(thinking) {}
  struct Parts {
    std::string reasoning;
    std::string content;
  };
  Parts push(std::string_view text);
  Parts flush();

 private:
  void answer(std::string text, Parts& out);

  std::string pending_;
  bool thinking_;
  bool answering_ = false;   // past the reasoning: everything else is the answer
  bool trimAnswer_ = false;  // drop the newlines that open the answer
};

}  // namespace aibox::server
