// Chat templates: detection by markers, the variant a template asks for, byte-exact rendering
// (the expected prompts are what the models' own Jinja templates render), and errors.

#include "runtime/text/chat.hpp"

#include <gtest/gtest.h>

#include <variant>

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
              "error: message 2 has the role 'tool': the built-in chat templates know system, "
              "user and assistant");
  }
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
