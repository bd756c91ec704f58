// Chat templates: detection by markers, the variant a template asks for, byte-exact rendering
// (the expected prompts are what the models' own Jinja templates render), and errors.

#include "runtime/text/chat.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <variant>

#include "runtime/text/tool_calls.hpp"

namespace aibox::text {
namespace {

// Short stand-ins that carry the markers of each family's template.
constexpr std::string_view kChatMlSource =
    "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n'}}{% endfor %}";
constexpr std::string_view kQwen2Source =
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful "
    "assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + m['role'] + '\\n'}}";
constexpr std::string_view kQwen25Source =
    "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- else %}{%- if messages[0]['role'] == "
    "'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else "
    "%}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}";
constexpr std::string_view kLlama30Source =
    "{{ bos_token + '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' }}";
constexpr std::string_view kLlama31Source =
    "{%- set date_string = \"26 Jul 2024\" %}{{- \"<|start_header_id|>system<|end_header_id|>"
    "\\n\\n\" }}{{- \"Cutting Knowledge Date: December 2023\\n\" }}{{- \"Today Date: \" + "
    "date_string + \"\\n\\n\" }}";
constexpr std::string_view kDeepSeekR1Source =
    "{{bos_token}}{{'<｜User｜>' + m['content']}}{{'<｜Assistant｜>' + content}}"
    "{%- if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{%- endif %}";
constexpr std::string_view kDeepSeekR1OldSource =
    "{{'<｜User｜>' + m['content']}}{% if add_generation_prompt %}{{'<｜Assistant｜>'}}{% endif %}";
constexpr std::string_view kLlama2Source =
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' %}{{ bos_token + "
    "'[INST] ' + content.strip() + ' [/INST]' }}";

const std::vector<Message> kConversation = {{"system", "Answer briefly."},
                                            {"user", "Hi"},
                                            {"assistant", "  Hello!  "},
                                            {"user", "What is 2+2?"}};
const std::vector<Message> kWithoutSystem(kConversation.begin() + 1, kConversation.end());

std::string render(ChatTemplate chatTemplate, std::string_view source,
                   const std::vector<Message>& messages, ChatOptions options = {}) {
  options.variant = detectChatVariant(chatTemplate, source);
  auto prompt = renderChat(chatTemplate, messages, options);
  if (const auto* error = std::get_if<modelfile::Error>(&prompt)) {
    return "error: " + error->message;
  }
  return std::get<std::string>(prompt);
}

std::string renderWith(ChatTemplate chatTemplate, const std::vector<Message>& messages,
                       const ChatOptions& options) {
  auto prompt = renderChat(chatTemplate, messages, options);
  if (const auto* error = std::get_if<modelfile::Error>(&prompt)) {
    return "error: " + error->message;
  }
  return std::get<std::string>(prompt);
}

// The Qwen2.5 and Llama 3.1 tool formats, against what Jinja (Python's jinja2 with HF's tojson)
// renders from the generated models' templates, which carry those formats.
ChatOptions toolOptions(ChatTemplate family) {
  ChatOptions options;
  options.bosText = "<|begin_of_text|>";
  options.variant.tools = true;
  if (family == ChatTemplate::Llama3) {
    options.variant.systemPreamble =
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
  }
  options.tools = boost::json::parse(
                      R"([{"type": "function", "function": {"name": "get_weather", "description":
                      "The weather in a city", "parameters": {"type": "object", "properties":
                      {"city": {"type": "string"}, "days": {"type": "integer"}}, "required":
                      ["city"]}}}, {"type": "function", "function": {"name": "get_time",
                      "parameters": {"type": "object", "properties": {}}}}])")
                      .as_array();
  return options;
}

std::vector<Message> toolConversation() {
  return {{.role = "system", .content = "Be brief."},
          {.role = "user", .content = "Weather in Paris?"},
          {.role = "assistant",
           .toolCalls = {{.id = "call_1",
                          .name = "get_weather",
                          .arguments = R"({"city":"Paris","days":2})"}}},
          {.role = "tool", .content = R"({"temp": 21.5})", .toolCallId = "call_1"},
          {.role = "tool", .content = "sunny", .toolCallId = "call_2"}};
}

TEST(ChatTemplateTest, ChatMlWithToolsAsQwen25Writes) {
  auto options = toolOptions(ChatTemplate::ChatMl);
  auto messages = toolConversation();
  EXPECT_EQ(
      renderWith(ChatTemplate::ChatMl, messages, options),
      "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist "
      "with the user query.\n\nYou are provided with function signatures within <tools></tools> "
      "XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
      "\"description\": \"The weather in a city\", \"parameters\": {\"type\": \"object\", "
      "\"properties\": {\"city\": {\"type\": \"string\"}, \"days\": {\"type\": \"integer\"}}, "
      "\"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": "
      "\"get_time\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}\n</tools>\n\nFor "
      "each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
      "<args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in "
      "Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
      "\"arguments\": {\"city\": \"Paris\", \"days\": "
      "2}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": "
      "21.5}\n</tool_response>\n<tool_response>\nsunny\n</"
      "tool_response><|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(
      renderWith(ChatTemplate::ChatMl, {messages[0], messages[1]}, options),
      "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist "
      "with the user query.\n\nYou are provided with function signatures within <tools></tools> "
      "XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
      "\"description\": \"The weather in a city\", \"parameters\": {\"type\": \"object\", "
      "\"properties\": {\"city\": {\"type\": \"string\"}, \"days\": {\"type\": \"integer\"}}, "
      "\"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": "
      "\"get_time\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}\n</tools>\n\nFor "
      "each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
      "<args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in "
      "Paris?<|im_end|>\n<|im_start|>assistant\n");
  options.tools.clear();  // the calls and results of a conversation render without tools too
  EXPECT_EQ(renderWith(ChatTemplate::ChatMl, messages, options),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWeather in "
            "Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
            "\"arguments\": {\"city\": \"Paris\", \"days\": "
            "2}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": "
            "21.5}\n</tool_response>\n<tool_response>\nsunny\n</"
            "tool_response><|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, Llama3WithToolsAsLlama31Writes) {
  auto options = toolOptions(ChatTemplate::Llama3);
  auto messages = toolConversation();
  messages.pop_back();
  EXPECT_EQ(renderWith(ChatTemplate::Llama3, messages, options),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: "
            "ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe "
            "brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following "
            "functions, please respond with a JSON for a function call with its proper arguments "
            "that best answers the given prompt.\n\nRespond in the format {\"name\": function "
            "name, \"parameters\": dictionary of argument name and its value}.Do not use "
            "variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": "
            "\"get_weather\",\n        \"description\": \"The weather in a city\",\n        "
            "\"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n "
            "               \"city\": {\n                    \"type\": \"string\"\n                "
            "},\n                \"days\": {\n                    \"type\": \"integer\"\n          "
            "      }\n            },\n            \"required\": [\n                \"city\"\n      "
            "      ]\n        }\n    }\n}\n\n{\n    \"type\": \"function\",\n    \"function\": {\n "
            "       \"name\": \"get_time\",\n        \"parameters\": {\n            \"type\": "
            "\"object\",\n            \"properties\": {}\n        }\n    }\n}\n\nWeather in "
            "Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": "
            "\"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": "
            "2}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temp\\\": "
            "21.5}\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(renderWith(ChatTemplate::Llama3, {messages[0], messages[1]}, options),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: "
            "ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe "
            "brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following "
            "functions, please respond with a JSON for a function call with its proper arguments "
            "that best answers the given prompt.\n\nRespond in the format {\"name\": function "
            "name, \"parameters\": dictionary of argument name and its value}.Do not use "
            "variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": "
            "\"get_weather\",\n        \"description\": \"The weather in a city\",\n        "
            "\"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n "
            "               \"city\": {\n                    \"type\": \"string\"\n                "
            "},\n                \"days\": {\n                    \"type\": \"integer\"\n          "
            "      }\n            },\n            \"required\": [\n                \"city\"\n      "
            "      ]\n        }\n    }\n}\n\n{\n    \"type\": \"function\",\n    \"function\": {\n "
            "       \"name\": \"get_time\",\n        \"parameters\": {\n            \"type\": "
            "\"object\",\n            \"properties\": {}\n        }\n    }\n}\n\nWeather in "
            "Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

std::string errorOf(const modelfile::Result<ChatTemplate>& result) {
  const auto* error = std::get_if<modelfile::Error>(&result);
  return error ? error->message : "";
}

TEST(ChatTemplateTest, NamesRoundTrip) {
  for (const auto chatTemplate : {ChatTemplate::ChatMl, ChatTemplate::Llama3,
                                  ChatTemplate::DeepSeekR1, ChatTemplate::Llama2}) {
    EXPECT_EQ(chatTemplateFromName(chatTemplateName(chatTemplate)), chatTemplate);
  }
  EXPECT_EQ(chatTemplateNames(), "chatml, llama3, deepseek-r1, llama2");
  EXPECT_EQ(chatTemplateFromName("qwen"), std::nullopt);
}

TEST(ChatTemplateTest, DetectionFollowsTheMarkers) {
  EXPECT_EQ(detectChatTemplate(kChatMlSource), ChatTemplate::ChatMl);
  EXPECT_EQ(detectChatTemplate(kQwen25Source), ChatTemplate::ChatMl);
  EXPECT_EQ(detectChatTemplate(kLlama30Source), ChatTemplate::Llama3);
  EXPECT_EQ(detectChatTemplate(kLlama31Source), ChatTemplate::Llama3);
  EXPECT_EQ(detectChatTemplate(kDeepSeekR1Source), ChatTemplate::DeepSeekR1);
  EXPECT_EQ(detectChatTemplate(kLlama2Source), ChatTemplate::Llama2);
  EXPECT_EQ(detectChatTemplate("{{'<|im_start|>user<|im_sep|>' + c + '<|im_end|>'}}"),
            std::nullopt);  // Phi-4
  EXPECT_EQ(detectChatTemplate("{{ '[INST] ' + m['content'] + ' [/INST]' }}"), std::nullopt);
  EXPECT_EQ(detectChatTemplate("<start_of_turn>user"), std::nullopt);
  EXPECT_EQ(detectChatTemplate(""), std::nullopt);
}

TEST(ChatTemplateTest, VariantsComeFromTheTemplateText) {
  EXPECT_EQ(detectChatVariant(ChatTemplate::ChatMl, kChatMlSource).defaultSystemPrompt, "");
  EXPECT_EQ(detectChatVariant(ChatTemplate::ChatMl, kQwen2Source).defaultSystemPrompt,
            "You are a helpful assistant.");
  EXPECT_EQ(detectChatVariant(ChatTemplate::ChatMl, kQwen25Source).defaultSystemPrompt,
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(detectChatVariant(ChatTemplate::ChatMl,
                              "{{ \"<|im_start|>system\\nYou're \\\"kind\\\".<|im_end|>\\n\" }}")
                .defaultSystemPrompt,
            "You're \"kind\".");
  EXPECT_EQ(detectChatVariant(ChatTemplate::Llama3, kLlama30Source).systemPreamble, "");
  EXPECT_EQ(detectChatVariant(ChatTemplate::Llama3, kLlama31Source).systemPreamble,
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
  EXPECT_TRUE(detectChatVariant(ChatTemplate::DeepSeekR1, kDeepSeekR1Source).openThinking);
  EXPECT_FALSE(detectChatVariant(ChatTemplate::DeepSeekR1, kDeepSeekR1OldSource).openThinking);
  EXPECT_EQ(detectChatVariant(ChatTemplate::ChatMl, "").defaultSystemPrompt, "");
}

TEST(ChatTemplateTest, ChatMl) {
  EXPECT_EQ(render(ChatTemplate::ChatMl, kChatMlSource, kWithoutSystem),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n  Hello!  <|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render(ChatTemplate::ChatMl, kQwen2Source, kConversation),
            "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n  Hello!  <|im_end|>\n<|im_start|>user\nWhat is 2+2?"
            "<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render(ChatTemplate::ChatMl, kQwen2Source, kWithoutSystem),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi"
            "<|im_end|>\n<|im_start|>assistant\n  Hello!  <|im_end|>\n<|im_start|>user\nWhat is "
            "2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(
      render(ChatTemplate::ChatMl, kQwen25Source, kWithoutSystem),
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
      "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n  "
      "Hello!  <|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(
      render(ChatTemplate::ChatMl, kQwen25Source, kConversation, {.addGenerationPrompt = false}),
      "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\n  Hello!  <|im_end|>\n<|im_start|>user\nWhat is 2+2?"
      "<|im_end|>\n");
}

TEST(ChatTemplateTest, Llama3) {
  const ChatOptions options{.bosText = "<|begin_of_text|>", .eosText = "<|eot_id|>"};
  EXPECT_EQ(render(ChatTemplate::Llama3, kLlama30Source, kConversation, options),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAnswer briefly."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render(ChatTemplate::Llama3, kLlama31Source, kConversation, options),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
            "Date: December 2023\nToday Date: 26 Jul 2024\n\nAnswer briefly.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render(ChatTemplate::Llama3, kLlama31Source, {{"user", " Hi\n"}}, options),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
            "Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, DeepSeekR1DropsTheReasoningOfPastAnswers) {
  const std::vector<Message> conversation = {{"system", "Answer briefly."},
                                             {"user", "2+2?"},
                                             {"assistant", "<think>\nadd\n</think>\n\n4"},
                                             {"user", "3+3?"}};
  const ChatOptions options{.bosText = "<｜begin▁of▁sentence｜>"};
  EXPECT_EQ(render(ChatTemplate::DeepSeekR1, kDeepSeekR1Source, conversation, options),
            "<｜begin▁of▁sentence｜>Answer briefly.<｜User｜>2+2?<｜Assistant｜>\n\n4"
            "<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><think>\n");
  EXPECT_EQ(render(ChatTemplate::DeepSeekR1, kDeepSeekR1OldSource, conversation, options),
            "<｜begin▁of▁sentence｜>Answer briefly.<｜User｜>2+2?<｜Assistant｜>\n\n4"
            "<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜>");
  // The last system message counts; what follows the last </think> stays.
  EXPECT_EQ(
      render(
          ChatTemplate::DeepSeekR1, kDeepSeekR1OldSource,
          {{"system", "A"}, {"user", "q"}, {"system", "B"}, {"assistant", "x</think>y</think>z"}},
          {.addGenerationPrompt = false}),
      "B<｜User｜>q<｜Assistant｜>z<｜end▁of▁sentence｜>");
}

TEST(ChatTemplateTest, Llama2) {
  const ChatOptions options{.bosText = "<s>", .eosText = "</s>"};
  EXPECT_EQ(render(ChatTemplate::Llama2, kLlama2Source, kConversation, options),
            "<s>[INST] <<SYS>>\nAnswer briefly.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
            "<s>[INST] What is 2+2? [/INST]");
  EXPECT_EQ(render(ChatTemplate::Llama2, kLlama2Source, kWithoutSystem, options),
            "<s>[INST] Hi [/INST] Hello! </s><s>[INST] What is 2+2? [/INST]");
  EXPECT_NE(render(ChatTemplate::Llama2, kLlama2Source, {{"assistant", "Hi"}}, options)
                .find("error: the llama2 chat template takes"),
            std::string::npos);
  EXPECT_NE(render(ChatTemplate::Llama2, kLlama2Source,
                   {{"user", "a"}, {"system", "b"}, {"user", "c"}}, options)
                .find("message 2 is from the system"),
            std::string::npos);
  EXPECT_NE(render(ChatTemplate::Llama2, kLlama2Source, {{"system", "s"}}, options)
                .find("needs a user message"),
            std::string::npos);
}

TEST(ChatTemplateTest, BadConversationsAreErrors) {
  for (const auto chatTemplate : {ChatTemplate::ChatMl, ChatTemplate::Llama3,
                                  ChatTemplate::DeepSeekR1, ChatTemplate::Llama2}) {
    EXPECT_EQ(render(chatTemplate, "", {}), "error: the conversation has no messages");
    EXPECT_EQ(render(chatTemplate, "", {{"user", "a"}, {"tool", "b"}}),
              "error: message 2 has the role 'tool': the model's chat template knows system, "
              "user and assistant");
  }
}

TEST(ChatTemplateTest, ToolSupportComesFromTheTemplate) {
  EXPECT_TRUE(detectChatVariant(ChatTemplate::ChatMl, "<|im_start|><tool_call>").tools);
  EXPECT_FALSE(detectChatVariant(ChatTemplate::ChatMl, kQwen2Source).tools);
  EXPECT_FALSE(detectChatVariant(ChatTemplate::Llama3, kLlama30Source).tools);
  EXPECT_TRUE(
      detectChatVariant(ChatTemplate::Llama3, std::string(kLlama31Source) + "ipython").tools);
  auto options = toolOptions(ChatTemplate::ChatMl);
  options.variant.tools = false;
  EXPECT_NE(renderWith(ChatTemplate::ChatMl, {{.role = "user", .content = "a"}}, options)
                .find("does not render tools"),
            std::string::npos);
  options = toolOptions(ChatTemplate::Llama3);
  auto twoCalls = toolConversation()[2];
  twoCalls.toolCalls.push_back(twoCalls.toolCalls.front());
  EXPECT_NE(renderWith(ChatTemplate::Llama3, {toolConversation()[1], twoCalls}, options)
                .find("several tool calls"),
            std::string::npos);
}

TEST(ToolCallsTest, PythonJsonWritesWhatJsonDumpsWrites) {
  auto value = boost::json::parse(
      R"({"a": [1, 2.5, 1e20, 0.0001, 1e-5, -3.0, 123456789012345678.0], "b": "é\"\n\u0001",
          "c": {}, "d": [], "e": null, "f": true})");
  EXPECT_EQ(pythonJson(value),
            "{\"a\": [1, 2.5, 1e+20, 0.0001, 1e-05, -3.0, 1.2345678901234568e+17], \"b\": "
            "\"é\\\"\\n\\u0001\", \"c\": {}, \"d\": [], \"e\": null, \"f\": true}");
  EXPECT_EQ(pythonJson(boost::json::parse(R"({"a": [1, {}], "b": {"c": 2}})"), 2),
            "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": {\n    \"c\": 2\n  }\n}");
}

TEST(ToolCallsTest, ChatMlCallsAreReadFromTheirTags) {
  auto parsed = parseToolCalls(
      ChatTemplate::ChatMl,
      "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": "
      "{}}\n</tool_call>");
  EXPECT_EQ(parsed.content, "Let me look.");
  ASSERT_EQ(parsed.calls.size(), 2u);
  EXPECT_EQ(parsed.calls[0].name, "get_weather");
  EXPECT_EQ(parsed.calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(parsed.calls[1].arguments, "{}");
  // A call cut short, or one that is not JSON, stays text.
  parsed = parseToolCalls(ChatTemplate::ChatMl, "<tool_call>\n{\"name\": \"get_");
  EXPECT_TRUE(parsed.calls.empty());
  EXPECT_EQ(parsed.content, "<tool_call>\n{\"name\": \"get_");
  EXPECT_TRUE(parseToolCalls(ChatTemplate::ChatMl, "{\"name\": \"x\"}").calls.empty());
}

TEST(ToolCallsTest, Llama3CallsAreTheWholeAnswer) {
  auto parsed = parseToolCalls(ChatTemplate::Llama3,
                               " {\"name\": \"get_weather\", \"parameters\": {\"city\": "
                               "\"Paris\", \"days\": 2}} ");
  ASSERT_EQ(parsed.calls.size(), 1u);
  EXPECT_EQ(parsed.calls[0].name, "get_weather");
  EXPECT_EQ(parsed.calls[0].arguments, R"({"city":"Paris","days":2})");
  EXPECT_EQ(parsed.content, "");
  parsed = parseToolCalls(ChatTemplate::Llama3, "It is {\"name\": \"x\"}");
  EXPECT_TRUE(parsed.calls.empty());
  EXPECT_EQ(parsed.content, "It is {\"name\": \"x\"}");
}

TEST(ToolCallsTest, TheGateStreamsTextAndHoldsBackCalls) {
  ToolCallGate chatMl(ChatTemplate::ChatMl);
  EXPECT_EQ(chatMl.push("Hello <tool"), "Hello ");
  EXPECT_EQ(chatMl.push("s> and <"), "<tools> and ");
  EXPECT_EQ(chatMl.push("tool_call>\n{\"name\": \"f\", "), "");
  EXPECT_EQ(chatMl.push("\"arguments\": {}}\n</tool_call>"), "");
  auto rest = chatMl.finish();
  EXPECT_EQ(rest.content, "");
  ASSERT_EQ(rest.calls.size(), 1u);
  EXPECT_EQ(rest.calls[0].name, "f");

  ToolCallGate llama(ChatTemplate::Llama3);
  EXPECT_EQ(llama.push("  "), "");
  EXPECT_EQ(llama.push("{\"name\": \"f\", \"parameters\": {\"a\": 1}}"), "");
  rest = llama.finish();
  ASSERT_EQ(rest.calls.size(), 1u);
  EXPECT_EQ(rest.calls[0].arguments, R"({"a":1})");
  ToolCallGate text(ChatTemplate::Llama3);
  EXPECT_EQ(text.push(" Hi"), " Hi");
  EXPECT_EQ(text.push(" {there}"), " {there}");
  EXPECT_EQ(text.finish().content, "");
}

TEST(ChatTemplateTest, ChoosingPrefersTheForcedName) {
  EXPECT_EQ(std::get<ChatTemplate>(chooseChatTemplate(kChatMlSource, "llama3")),
            ChatTemplate::Llama3);
  EXPECT_EQ(std::get<ChatTemplate>(chooseChatTemplate("", "deepseek-r1")),
            ChatTemplate::DeepSeekR1);
  EXPECT_EQ(std::get<ChatTemplate>(chooseChatTemplate(kLlama2Source, "")), ChatTemplate::Llama2);
}

TEST(ChatTemplateTest, ChoosingFailsWithTheSettingToUse) {
  for (const auto& error :
       {errorOf(chooseChatTemplate(kChatMlSource, "vicuna")), errorOf(chooseChatTemplate("", "")),
        errorOf(chooseChatTemplate("<start_of_turn>user", ""))}) {
    EXPECT_NE(error.find("--chat-template"), std::string::npos) << error;
    EXPECT_NE(error.find("chatml, llama3, deepseek-r1, llama2"), std::string::npos) << error;
  }
  EXPECT_NE(errorOf(chooseChatTemplate("", "vicuna")).find("'vicuna'"), std::string::npos);
  EXPECT_NE(errorOf(chooseChatTemplate("", "")).find("no chat template"), std::string::npos);
}

}  // namespace
}  // namespace aibox::text
