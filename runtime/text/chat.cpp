#include "runtime/text/chat.hpp"

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <utility>

#include "runtime/text/tool_calls.hpp"
#include "runtime/text/unicode.hpp"

namespace aibox::text {
namespace {

using modelfile::Error;
using modelfile::Result;

constexpr std::array<std::pair<ChatTemplate, std::string_view>, 4> kNames = {{
    {ChatTemplate::ChatMl, "chatml"},
    {ChatTemplate::Llama3, "llama3"},
    {ChatTemplate::DeepSeekR1, "deepseek-r1"},
    {ChatTemplate::Llama2, "llama2"},
}};

constexpr std::string_view kDeepSeekUser = "<｜User｜>";
constexpr std::string_view kDeepSeekAssistant = "<｜Assistant｜>";
constexpr std::string_view kDeepSeekEnd = "<｜end▁of▁sentence｜>";
constexpr std::string_view kLlama3Date = "26 Jul 2024";  // Llama 3.1's date_string default

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The text of a Jinja string literal from `offset` up to `terminator`, with its escapes undone;
// nullopt when the literal closes or an expression starts first (the text is not a constant).
std::optional<std::string> literalUpTo(std::string_view source, std::size_t offset,
                                       std::string_view terminator, char quote) {
  std::string text;
  while (offset < source.size() && !source.substr(offset).starts_with(terminator)) {
    const char c = source[offset];
    if (c == quote || (quote == '\0' && (c == '\'' || c == '"')) || c == '{' || c == '}') {
      return std::nullopt;
    }
    if (c == '\\' && offset + 1 < source.size()) {
      switch (const char escaped = source[offset + 1]) {
        case 'n':
          text += '\n';
          break;
        case 't':
          text += '\t';
          break;
        default:
          text += escaped;  // \\, \' and \" stand for themselves
      }
      offset += 2;
      continue;
    }
    text += c;
    ++offset;
  }
  if (offset >= source.size()) {
    return std::nullopt;
  }
  return text;
}

// The constant system message a ChatML template writes: the literal text that follows
// "<|im_start|>system\n" up to "<|im_end|>".
std::string chatMlDefaultSystemPrompt(std::string_view source) {
  constexpr std::string_view kOpening = "<|im_start|>system";
  for (std::size_t found = source.find(kOpening); found != std::string_view::npos;
       found = source.find(kOpening, found + 1)) {
    const char before = found > 0 ? source[found - 1] : '\0';
    const char quote = before == '\'' || before == '"' ? before : '\0';
    std::size_t offset = found + kOpening.size();
    if (source.substr(offset).starts_with("\\n")) {
      offset += 2;
    } else if (source.substr(offset).starts_with("\n")) {
      offset += 1;
    } else {
      continue;
    }
    if (auto text = literalUpTo(source, offset, "<|im_end|>", quote); text && !text->empty()) {
      return *text;
    }
  }
  return {};
}

// Llama 3.1+: "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n".
std::string llama3SystemPreamble(std::string_view source) {
  constexpr std::string_view kKnowledge = "Cutting Knowledge Date: ";
  const std::size_t knowledge = source.find(kKnowledge);
  if (knowledge == std::string_view::npos) {
    return {};
  }
  std::size_t end = knowledge + kKnowledge.size();
  while (end < source.size() && source[end] != '\\' && source[end] != '\n' && source[end] != '"' &&
         source[end] != '\'') {
    ++end;
  }
  std::string date(kLlama3Date);
  constexpr std::string_view kDateDefault = "set date_string = \"";
  if (const std::size_t found = source.find(kDateDefault); found != std::string_view::npos) {
    const std::size_t begin = found + kDateDefault.size();
    const std::size_t close = source.find('"', begin);
    if (close != std::string_view::npos) {
      date = source.substr(begin, close - begin);
    }
  }
  return std::string(source.substr(knowledge, end - knowledge)) + "\nToday Date: " + date + "\n\n";
}

std::optional<Error> checkRoles(const std::vector<Message>& messages, const ChatOptions& options) {
  if (messages.empty()) {
    return Error{"the conversation has no messages"};
  }
  const bool tools = options.variant.tools;
  if (!tools && !options.tools.empty()) {
    return Error{
        "this model's chat template does not render tools: call it without 'tools' (tools "
        "need a Qwen2.5 or Llama 3.1+ template)"};
  }
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const Message& message = messages[i];
    const std::string& role = message.role;
    if (role != "system" && role != "user" && role != "assistant" && (role != "tool" || !tools)) {
      return Error{"message " + std::to_string(i + 1) + " has the role '" + role +
                   "': the model's chat template knows system, user and assistant" +
                   (tools ? " and tool" : "")};
    }
    if (!message.toolCalls.empty() && (!tools || role != "assistant")) {
      return Error{"message " + std::to_string(i + 1) +
                   " has tool calls, which this model's chat template does not render"};
    }
  }
  return std::nullopt;
}

// A call's arguments as the templates write them: the JSON they hold, as Python dumps it (a
// text that is not JSON as a string).
std::string argumentsText(const ToolCall& call) {
  boost::system::error_code ec;
  auto value = boost::json::parse(call.arguments, ec);
  return pythonJson(ec ? boost::json::value(call.arguments) : value);
}

// Qwen2.5's template: with tools, the system turn lists them and says how to call them;
// assistant calls are <tool_call> blocks; a run of tool results is one user turn of
// <tool_response> blocks.
std::string renderChatMl(const std::vector<Message>& messages, const ChatOptions& options) {
  std::string prompt;
  const std::string& defaultSystem = options.variant.defaultSystemPrompt;
  const bool firstIsSystem = messages.front().role == "system";
  std::size_t first = 0;
  if (!options.tools.empty()) {
    prompt += "<|im_start|>system\n" + (firstIsSystem ? messages.front().content : defaultSystem);
    prompt +=
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    for (const auto& tool : options.tools) {
      prompt += "\n" + pythonJson(tool);
    }
    prompt +=
        "\n</tools>\n\nFor each function call, return a json object with function name and "
        "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
        "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";
    first = firstIsSystem ? 1 : 0;
  } else if (!defaultSystem.empty() && !firstIsSystem) {
    prompt += "<|im_start|>system\n" + defaultSystem + "<|im_end|>\n";
  }
  for (std::size_t i = first; i < messages.size(); ++i) {
    const Message& message = messages[i];
    if (message.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") {
        prompt += "<|im_start|>user";
      }
      prompt += "\n<tool_response>\n" + message.content + "\n</tool_response>";
      if (i + 1 == messages.size() || messages[i + 1].role != "tool") {
        prompt += "<|im_end|>\n";
      }
    } else if (!message.toolCalls.empty()) {
      prompt += "<|im_start|>assistant";
      if (!message.content.empty()) {
        prompt += "\n" + message.content;
      }
      for (const ToolCall& call : message.toolCalls) {
        prompt += "\n<tool_call>\n{\"name\": \"" + call.name +
                  "\", \"arguments\": " + argumentsText(call) + "}\n</tool_call>";
      }
      prompt += "<|im_end|>\n";
    } else {
      prompt += "<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n";
    }
  }
  if (options.addGenerationPrompt) {
    prompt += "<|im_start|>assistant\n";
  }
  return prompt;
}

// Llama 3.1's template with tools: "Environment: ipython" in the system turn, the tools (JSON
// indented by 4) in the first user turn, a call as the assistant's bare JSON object and a
// result in an ipython turn (the template's tojson writes a text result as a JSON string).
Result<std::string> renderLlama3(const std::vector<Message>& messages, const ChatOptions& options) {
  const auto header = [](std::string_view role) {
    return "<|start_header_id|>" + std::string(role) + "<|end_header_id|>\n\n";
  };
  const bool tools = !options.tools.empty();
  std::string prompt = options.bosText;
  std::size_t first = 0;
  if (!options.variant.systemPreamble.empty()) {
    prompt += header("system");
    if (tools) {
      prompt += "Environment: ipython\n";
    }
    prompt += options.variant.systemPreamble;
    if (messages.front().role == "system") {
      prompt += unicode::pythonStrip(messages.front().content);
      first = 1;
    }
    prompt += "<|eot_id|>";
  }
  if (tools) {
    if (first == messages.size()) {
      return Error{"the llama3 chat template puts the tools in the first user message: add one"};
    }
    prompt += header("user");
    prompt +=
        "Given the following functions, please respond with a JSON for a function call with its "
        "proper arguments that best answers the given prompt.\n\nRespond in the format "
        "{\"name\": function name, \"parameters\": dictionary of argument name and its "
        "value}.Do not use variables.\n\n";
    for (const auto& tool : options.tools) {
      prompt += pythonJson(tool, 4) + "\n\n";
    }
    prompt += std::string(unicode::pythonStrip(messages[first].content)) + "<|eot_id|>";
    ++first;
  }
  for (std::size_t i = first; i < messages.size(); ++i) {
    const Message& message = messages[i];
    if (message.role == "tool") {
      prompt += header("ipython") + pythonJson(boost::json::value(message.content)) + "<|eot_id|>";
    } else if (!message.toolCalls.empty()) {
      if (message.toolCalls.size() != 1) {
        return Error{"message " + std::to_string(i + 1) +
                     " has several tool calls: Llama 3.1 makes one call per message"};
      }
      const ToolCall& call = message.toolCalls.front();
      prompt += header("assistant") + "{\"name\": \"" + call.name +
                "\", \"parameters\": " + argumentsText(call) + "}<|eot_id|>";
    } else {
      prompt += header(message.role);
      prompt += unicode::pythonStrip(message.content);
      prompt += "<|eot_id|>";
    }
  }
  if (options.addGenerationPrompt) {
    prompt += header("assistant");
  }
  return prompt;
}

std::string renderDeepSeekR1(const std::vector<Message>& messages, const ChatOptions& options) {
  std::string_view system;  // the template keeps the last system message
  for (const Message& message : messages) {
    if (message.role == "system") {
      system = message.content;
    }
  }
  std::string prompt = options.bosText + std::string(system);
  for (const Message& message : messages) {
    if (message.role == "user") {
      prompt += kDeepSeekUser;
      prompt += message.content;
    } else if (message.role == "assistant") {
      std::string_view content = message.content;
      if (const std::size_t think = content.rfind("</think>"); think != std::string_view::npos) {
        content.remove_prefix(think + std::string_view("</think>").size());
      }
      prompt += kDeepSeekAssistant;
      prompt += content;
      prompt += kDeepSeekEnd;
    }
  }
  if (options.addGenerationPrompt) {
    prompt += kDeepSeekAssistant;
    if (options.variant.openThinking) {
      prompt += "<think>\n";
    }
  }
  return prompt;
}

Result<std::string> renderLlama2(const std::vector<Message>& messages, const ChatOptions& options) {
  const bool hasSystem = messages.front().role == "system";
  const std::size_t first = hasSystem ? 1 : 0;
  if (first == messages.size()) {
    return Error{"the llama2 chat template needs a user message after the system message"};
  }
  std::string prompt;
  for (std::size_t i = first; i < messages.size(); ++i) {
    const Message& message = messages[i];
    const bool userTurn = (i - first) % 2 == 0;
    if (message.role != (userTurn ? "user" : "assistant")) {
      return Error{
          "the llama2 chat template takes an optional system message first, then user "
          "and assistant messages in turn starting with the user: message " +
          std::to_string(i + 1) + " is from the " + message.role};
    }
    std::string content = message.content;
    if (i == first && hasSystem) {
      content = "<<SYS>>\n" + messages.front().content + "\n<</SYS>>\n\n" + content;
    }
    if (userTurn) {
      prompt +=
          options.bosText + "[INST] " + std::string(unicode::pythonStrip(content)) + " [/INST]";
    } else {
      prompt += " " + std::string(unicode::pythonStrip(content)) + " " + options.eosText;
    }
  }
  return prompt;
}

std::string settingHint() {
  return "set --chat-template to one of the built-in templates (" + chatTemplateNames() + ")";
}

}  // namespace

std::string_view chatTemplateName(ChatTemplate chatTemplate) {
  for (const auto& [value, name] : kNames) {
    if (value == chatTemplate) {
      return name;
    }
  }
  return "unknown";
}

std::optional<ChatTemplate> chatTemplateFromName(std::string_view name) {
  for (const auto& [value, known] : kNames) {
    if (known == name) {
      return value;
    }
  }
  return std::nullopt;
}

std::string chatTemplateNames() {
  std::string names;
  for (const auto& [value, name] : kNames) {
    if (!names.empty()) {
      names += ", ";
    }
    names += name;
  }
  return names;
}

std::optional<ChatTemplate> detectChatTemplate(std::string_view source) {
  if (contains(source, kDeepSeekUser) && contains(source, kDeepSeekAssistant)) {
    return ChatTemplate::DeepSeekR1;
  }
  if (contains(source, "<|start_header_id|>") && contains(source, "<|end_header_id|>")) {
    return ChatTemplate::Llama3;
  }
  // Phi-4 writes <|im_start|>role<|im_sep|>: ChatML's markers, another format.
  if (contains(source, "<|im_start|>") && contains(source, "<|im_end|>") &&
      !contains(source, "<|im_sep|>")) {
    return ChatTemplate::ChatMl;
  }
  if (contains(source, "[INST]") && contains(source, "<<SYS>>")) {
    return ChatTemplate::Llama2;
  }
  return std::nullopt;
}

ChatVariant detectChatVariant(ChatTemplate chatTemplate, std::string_view source) {
  ChatVariant variant;
  switch (chatTemplate) {
    case ChatTemplate::ChatMl:
      variant.defaultSystemPrompt = chatMlDefaultSystemPrompt(source);
      variant.tools = contains(source, "<tool_call>");
      break;
    case ChatTemplate::Llama3:
      variant.systemPreamble = llama3SystemPreamble(source);
      variant.tools = !variant.systemPreamble.empty() && contains(source, "ipython");
      break;
    case ChatTemplate::DeepSeekR1:
      variant.openThinking = contains(source, std::string(kDeepSeekAssistant) + "<think>");
      break;
    case ChatTemplate::Llama2:
      break;
  }
  return variant;
}

Result<std::string> renderChat(ChatTemplate chatTemplate, const std::vector<Message>& messages,
                               const ChatOptions& options) {
  if (auto error = checkRoles(messages, options)) {
    return *error;
  }
  switch (chatTemplate) {
    case ChatTemplate::ChatMl:
      return renderChatMl(messages, options);
    case ChatTemplate::Llama3:
      return renderLlama3(messages, options);
    case ChatTemplate::DeepSeekR1:
      return renderDeepSeekR1(messages, options);
    case ChatTemplate::Llama2:
      return renderLlama2(messages, options);
  }
  return Error{"unknown chat template"};
}

Result<ChatTemplate> chooseChatTemplate(std::string_view source, std::string_view forced) {
  if (!forced.empty()) {
    if (const auto chatTemplate = chatTemplateFromName(forced)) {
      return *chatTemplate;
    }
    return Error{"unknown chat template '" + std::string(forced) +
                 "' (--chat-template): the built-in templates are " + chatTemplateNames()};
  }
  if (source.empty()) {
    return Error{"the model has no chat template (tokenizer.chat_template): " + settingHint()};
  }
  if (const auto chatTemplate = detectChatTemplate(source)) {
    return *chatTemplate;
  }
  return Error{"the model's chat template is not one the built-in renderers recognise: " +
               settingHint()};
}

}  // namespace aibox::text
