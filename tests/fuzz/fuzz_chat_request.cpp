// The bodies of POST /v1/chat/completions and /v1/completions as `aibox-runtime serve` reads
// them: a refusal is a 400 that names what is wrong; an accepted chat renders with tools (both
// tool formats), a forced call compiles to a constraint, and an answer parses back.
#include <cstdint>
#include <string_view>

#include "runtime/server/openai.hpp"
#include "runtime/text/tool_calls.hpp"

namespace {

using aibox::server::ApiError;

void checkRefusal(const ApiError& error) {
  if (error.message.empty() || error.status != 400) {
    __builtin_trap();  // a refusal always says what is wrong, as a 400
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace aibox;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (auto completion = server::parseCompletionRequest(body);
      std::holds_alternative<ApiError>(completion)) {
    checkRefusal(std::get<ApiError>(completion));
  }
  auto parsed = server::parseChatRequest(body);
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    checkRefusal(*error);
    return 0;
  }
  auto& request = std::get<server::ChatRequest>(parsed);
  for (auto family : {text::ChatTemplate::ChatMl, text::ChatTemplate::Llama3}) {
    text::ChatOptions options;
    options.variant.tools = true;
    options.variant.systemPreamble = family == text::ChatTemplate::Llama3 ? "Today\n\n" : "";
    options.tools = request.tools;
    auto rendered = text::renderChat(family, request.messages, options);
    if (auto* error = std::get_if<text::Error>(&rendered);
        error != nullptr && error->message.empty()) {
      __builtin_trap();
    }
    if (request.toolChoice == server::ToolChoice::Named ||
        request.toolChoice == server::ToolChoice::Required) {
      auto schema = server::toolCallSchema(request, family);
      if (auto* error = std::get_if<ApiError>(&schema)) {
        checkRefusal(*error);
      } else {
        server::JsonMatcher matcher(std::get<std::shared_ptr<const server::JsonSchema>>(schema));
        matcher.feed(body);
      }
    }
    text::ToolCallGate gate(family);
    gate.push(body.substr(0, size / 2));
    gate.push(body.substr(size / 2));
    gate.finish();
  }
  return 0;
}
