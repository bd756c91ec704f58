#pragma once
// Chat templates: turning OpenAI-style messages into the prompt text a model was trained on.
// A GGUF model carries its Jinja template in tokenizer.chat_template. Rather than run Jinja,
// the engine recognises the template of each supported family by its markers and renders
// it with a built-in renderer that produces the same text. An unrecognised template is an
// error that names the setting that forces a built-in one.

#include <boost/json/array.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/modelfile/modelfile.hpp"

namespace aibox::text {

// A function call an assistant message made (OpenAI's tool_calls entries).
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as OpenAI's API carries it
};

struct Message {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
  std::vector<ToolCall> toolCalls;  // assistant: the calls it made
  std::string toolCallId;           // tool: the call it answers
};

enum class ChatTemplate {
  ChatMl,      // Qwen2 / Qwen2.5: <|im_start|>role\n...<|im_end|>\n, default system prompt
  Llama3,      // Llama 3.x: <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  DeepSeekR1,  // DeepSeek-R1 and its distills: <｜User｜>...<｜Assistant｜>, reasoning dropped
  Llama2,      // Llama 2 / Mistral style: [INST] ... [/INST]
};

// "chatml", "llama3", "deepseek-r1", "llama2".
std::string_view chatTemplateName(ChatTemplate chatTemplate);
std::optional<ChatTemplate> chatTemplateFromName(std::string_view name);
// Every name, comma separated, for messages.
std::string chatTemplateNames();

// The built-in template that renders `source` (a tokenizer.chat_template), if any.
std::optional<ChatTemplate> detectChatTemplate(std::string_view source);

// What a model's template adds to its family's format, read from the template source by
// detectChatVariant; the defaults (all empty) render the family's plain format.
struct ChatVariant {
  // ChatMl: the system message written when the messages do not start with one. Qwen2's template
  // writes "You are a helpful assistant.", Qwen2.5's "You are Qwen, created by Alibaba Cloud. You
  // are a helpful assistant.", plain ChatML none.
  std::string defaultSystemPrompt;
  // Llama3: the text that opens a system turn written before every conversation (Llama 3.1 to
  // 3.3: "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"). Empty: Llama
  // 3.0, where a system message is a turn like the others. Llama 3.2's template writes today's
  // date when the renderer offers strftime_now; the variant keeps its fixed fallback date, so a
  // prompt stays the same from day to day (set this field to change it).
  std::string systemPreamble;
  // DeepSeekR1: the generation prompt ends with "<think>\n", as in the newer template revision.
  bool openThinking = false;
  // ChatMl and Llama3: the template renders tools, tool calls and tool results (Qwen2.5's
  // <tool_call> format; Llama 3.1+'s JSON calls in the ipython environment).
  bool tools = false;
};

// The variant of `chatTemplate` that `source` (a tokenizer.chat_template) asks for: the default
// system prompt of a ChatML template, the preamble of a Llama 3.1+ template, the opened
// <think> of a DeepSeek-R1 template. An empty or foreign source gives the plain format.
ChatVariant detectChatVariant(ChatTemplate chatTemplate, std::string_view source);

struct ChatOptions {
  std::string bosText;  // the model's BOS token text, for templates that write it
  std::string eosText;
  bool addGenerationPrompt = true;  // end with the assistant's turn opening
  ChatVariant variant;              // from detectChatVariant on the model's template
  // The request's tools, as OpenAI's API sends them ({"type": "function", "function": {...}}).
  boost::json::array tools;
};

// Renders `messages` with `chatTemplate`, byte for byte as the model's Jinja template does for
// plain system/user/assistant conversations, and as Qwen2.5's and Llama 3.1's templates do
// with tools (see renderToolChat in chat.cpp):
//  - ChatMl: every message as <|im_start|>role\ncontent<|im_end|>\n, after the variant's default
//    system message when the first message is not a system one; "<|im_start|>assistant\n".
//  - Llama3: bosText, then <|start_header_id|>role<|end_header_id|>\n\n content <|eot_id|> per
//    message with the content trimmed; with a preamble, a first system message goes after it in
//    the system turn that is always written; "<|start_header_id|>assistant<|end_header_id|>\n\n".
//  - DeepSeekR1: bosText, the last system message's content, then <｜User｜>content and
//    <｜Assistant｜>content<｜end▁of▁sentence｜>, an assistant's content cut to what follows its
//    last "</think>"; "<｜Assistant｜>" (and "<think>\n" with openThinking).
//  - Llama2: an optional first system message in <<SYS>> inside the first user turn, then
//    bosText[INST] user [/INST] and " assistant " eosText, contents stripped; user and assistant
//    must alternate, starting with the user; the template has no generation prompt.
// Errors: no messages, an unknown role (system, user and assistant are known; tool where the
// template renders tools), tools or tool calls for a template without tool support, a Llama2
// conversation that is not a system message then alternating user/assistant turns.
modelfile::Result<std::string> renderChat(ChatTemplate chatTemplate,
                                          const std::vector<Message>& messages,
                                          const ChatOptions& options);

// Picks the template: `forced` (a name from the settings) when given, else detection on
// `source`; a missing or unrecognised template is an error naming the setting
// (--chat-template) and the built-in names.
modelfile::Result<ChatTemplate> chooseChatTemplate(std::string_view source,
                                                   std::string_view forced);

}  // namespace aibox::text
