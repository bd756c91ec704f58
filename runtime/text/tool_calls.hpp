#pragma once
// Tool calls in a model's output: the calls Qwen2.5 writes in <tool_call> tags and Llama 3.1
// writes as a bare JSON object, read back into OpenAI's shape; a gate that lets a streamed
// answer's plain text through at once and holds back what may be a call until it is whole;
// and the JSON text the templates write with Python's json.dumps (HF's tojson filter).

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/text/chat.hpp"

namespace aibox::text {

// json.dumps(value, ensure_ascii=False, indent=indent): ", " and ": " between items, or each
// item on its own line indented by `indent` spaces when indent > 0; floats as Python's repr.
std::string pythonJson(const boost::json::value& value, int indent = 0);

struct ParsedOutput {
  std::string content;          // the text that is not a call (trimmed when there are calls)
  std::vector<ToolCall> calls;  // ids left empty; arguments as compact JSON text
};

// The calls in `output` as `chatTemplate` writes them (ChatMl: each {"name", "arguments"} in
// <tool_call>...</tool_call>; Llama3: the whole answer one {"name", "parameters"} object). Text
// that does not parse as a call stays content.
ParsedOutput parseToolCalls(ChatTemplate chatTemplate, std::string_view output);

// Streams the plain text of an answer while tools are offered: push gives the text that cannot
// be part of a call, at once; from the start of a call on, everything waits for finish.
class ToolCallGate {
 public:
  explicit ToolCallGate(ChatTemplate chatTemplate) : chatTemplate_(chatTemplate) {}
  std::string push(std::string_view text);
  // What is left, parsed: the content not yet given out and the calls.
  ParsedOutput finish();

 private:
  ChatTemplate chatTemplate_;
  std::string held_;      // may start a call (a partial opening tag, leading spaces)
  bool calling_ = false;  // a call has started: everything is held
  bool plain_ = false;    // Llama3: the answer did not open with '{', so it is text
};

}  // namespace aibox::text
