// The OpenAI request reader and the DeepSeek-R1 reasoning splitter.
#include "runtime/server/openai.hpp"

#include <gtest/gtest.h>

namespace aibox::server {
namespace {

ApiError chatError(const std::string& body) {
  auto parsed = parseChatRequest(body);
  EXPECT_TRUE(std::holds_alternative<ApiError>(parsed)) << body;
  return std::holds_alternative<ApiError>(parsed) ? std::get<ApiError>(parsed) : ApiError{};
}

TEST(ChatRequest, ReadsTheFieldsWithOpenAiDefaults) {
  auto parsed = parseChatRequest(R"({"model":"m","messages":[{"role":"system","content":"S"},
    {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
    {"role":"assistant","content":null}],"max_completion_tokens":7,"seed":-1,"stop":"END",
    "logit_bias":{"12":-100},"logprobs":true,"top_logprobs":3,"stream":true,
    "stream_options":{"include_usage":true},"top_k":5,"min_p":0.1,"repetition_penalty":1.1,
    "unknown":{"ignored":true}})");
  ASSERT_TRUE(std::holds_alternative<ChatRequest>(parsed));
  const auto& r = std::get<ChatRequest>(parsed);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1].content, "a\nb");
  EXPECT_EQ(r.messages[2].content, "");
  const auto& g = r.generation;
  EXPECT_EQ(g.model, "m");
  EXPECT_EQ(g.maxTokens, 7u);
  EXPECT_EQ(g.sampling.seed, UINT64_MAX);
  EXPECT_EQ(g.stops, std::vector<std::string>{"END"});
  EXPECT_EQ(g.logitBias.at(12), -100.0f);
  EXPECT_EQ(g.topLogprobs, 3);
  EXPECT_TRUE(g.stream);
  EXPECT_TRUE(g.includeUsage);
  EXPECT_EQ(g.sampling.topK, 5);
  EXPECT_FLOAT_EQ(g.sampling.minP, 0.1f);
  EXPECT_FLOAT_EQ(g.sampling.repeatPenalty, 1.1f);
  EXPECT_FLOAT_EQ(g.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(g.sampling.topP, 1.0f);
}

TEST(ChatRequest, WrongTypesAndRangesNameTheField) {
  EXPECT_EQ(chatError(R"({"messages":[{"role":"user","content":"x"}],"temperature":"1"})").param,
            "temperature");
  EXPECT_EQ(chatError(R"({"messages":[{"role":"user","content":"x"}],"seed":1.5})").param, "seed");
  EXPECT_EQ(chatError(R"({"messages":[{"role":"user","content":"x"}],"logprobs":1})").param,
            "logprobs");
  EXPECT_EQ(chatError(R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":21,
    "logprobs":true})")
                .param,
            "top_logprobs");
  EXPECT_EQ(chatError(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})").param,
            "messages[0].content");
  EXPECT_EQ(chatError(R"({"messages":[{"role":"user"}]})").param, "messages[0].content");
  EXPECT_EQ(chatError(R"({"messages":"hi"})").param, "messages");
  EXPECT_EQ(chatError(R"([1,2])").param, "");
  auto range = chatError(R"({"messages":[{"role":"user","content":"x"}],"frequency_penalty":9})");
  EXPECT_EQ(range.message, "'frequency_penalty' must be between -2 and 2, not 9");
  EXPECT_EQ(range.status, 400u);
}

TEST(ChatRequest, ReadsToolsToolChoiceAndToolMessages) {
  auto parsed = parseChatRequest(R"({"messages":[{"role":"user","content":"Weather?"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
     "function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"cold"}],
    "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],
    "tool_choice":{"type":"function","function":{"name":"get_weather"}}})");
  ASSERT_TRUE(std::holds_alternative<ChatRequest>(parsed)) << std::get<ApiError>(parsed).message;
  const auto& request = std::get<ChatRequest>(parsed);
  ASSERT_EQ(request.tools.size(), 1u);
  EXPECT_EQ(request.toolChoice, ToolChoice::Named);
  EXPECT_EQ(request.toolName, "get_weather");
  ASSERT_EQ(request.messages.size(), 3u);
  ASSERT_EQ(request.messages[1].toolCalls.size(), 1u);
  EXPECT_EQ(request.messages[1].toolCalls[0].id, "call_1");
  EXPECT_EQ(request.messages[1].toolCalls[0].arguments, R"({"city":"Oslo"})");
  EXPECT_EQ(request.messages[2].role, "tool");
  EXPECT_EQ(request.messages[2].toolCallId, "call_1");

  const std::string user = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(chatError("{" + user + R"(,"tools":[{"type":"web"}]})").param, "tools[0].type");
  EXPECT_EQ(chatError("{" + user + R"(,"tools":[{"function":{}}]})").param,
            "tools[0].function.name");
  EXPECT_EQ(chatError("{" + user + R"(,"tool_choice":"required"})").param, "tool_choice");
  EXPECT_EQ(chatError("{" + user + R"(,"functions":[]})").param, "functions");
  EXPECT_EQ(chatError(R"({"messages":[{"role":"tool","content":"x"}]})").param,
            "messages[0].tool_call_id");
  EXPECT_EQ(chatError(R"({"messages":[{"role":"user","content":"x","tool_calls":[]}]})").param,
            "messages[0].tool_calls");
  EXPECT_EQ(chatError(R"({"messages":[{"role":"assistant","tool_calls":[{"id":"a"}]}]})").param,
            "messages[0].tool_calls[0]");
}

TEST(ChatRequest, AForcedCallIsConstrainedToTheTemplatesFormat) {
  auto parsed = parseChatRequest(R"({"messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object",
      "properties":{"n":{"type":"integer"}},"required":["n"]}}}],
    "tool_choice":{"type":"function","function":{"name":"f"}}})");
  ASSERT_TRUE(std::holds_alternative<ChatRequest>(parsed));
  auto chatMl = toolCallSchema(std::get<ChatRequest>(parsed), text::ChatTemplate::ChatMl);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const JsonSchema>>(chatMl));
  auto accepts = [](const std::shared_ptr<const JsonSchema>& schema, std::string_view text) {
    JsonMatcher matcher(schema);
    return matcher.feed(text) && matcher.complete();
  };
  const auto& framed = std::get<std::shared_ptr<const JsonSchema>>(chatMl);
  EXPECT_TRUE(
      accepts(framed, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"n\": 3}}\n</tool_call>"));
  EXPECT_FALSE(accepts(framed, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"n\": 3}}"));
  EXPECT_FALSE(accepts(framed, "{\"name\": \"f\", \"arguments\": {\"n\": 3}}"));
  EXPECT_FALSE(accepts(framed, "<tool_call>\n{\"name\": \"g\""));
  JsonMatcher whole(framed);
  ASSERT_TRUE(whole.feed("<tool_call>\n{\"name\":\"f\",\"arguments\":{\"n\":1}}\n</tool_call>"));
  EXPECT_TRUE(whole.finished()) << "nothing may follow the closing tag";

  auto llama = toolCallSchema(std::get<ChatRequest>(parsed), text::ChatTemplate::Llama3);
  const auto& bare = std::get<std::shared_ptr<const JsonSchema>>(llama);
  EXPECT_TRUE(accepts(bare, "{\"name\": \"f\", \"parameters\": {\"n\": 3}}"));
  EXPECT_FALSE(accepts(bare, "{\"name\": \"f\", \"arguments\": {\"n\": 3}}"));
}

TEST(CompletionRequest, PromptAsTextOrTokens) {
  auto text = parseCompletionRequest(R"({"prompt":["one"],"logprobs":2,"echo":false})");
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(text));
  EXPECT_EQ(std::get<std::string>(std::get<CompletionRequest>(text).prompt), "one");
  EXPECT_EQ(std::get<CompletionRequest>(text).generation.topLogprobs, 2);
  auto tokens = parseCompletionRequest(R"({"prompt":[1,2,3]})");
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(tokens));
  EXPECT_EQ(std::get<std::vector<std::int32_t>>(std::get<CompletionRequest>(tokens).prompt),
            (std::vector<std::int32_t>{1, 2, 3}));
  auto many = parseCompletionRequest(R"({"prompt":["a","b"]})");
  ASSERT_TRUE(std::holds_alternative<ApiError>(many));
  EXPECT_EQ(std::get<ApiError>(many).param, "prompt");
  EXPECT_TRUE(
      std::holds_alternative<ApiError>(parseCompletionRequest(R"({"prompt":"a","logprobs":6})")));
}

TEST(ErrorBody, HasOpenAisFourFields) {
  auto body =
      errorBody({.status = 404, .message = "m", .param = "model", .code = "model_not_found"});
  const auto& e = body.at("error").as_object();
  EXPECT_EQ(e.at("message"), "m");
  EXPECT_EQ(e.at("type"), "invalid_request_error");
  EXPECT_EQ(e.at("param"), "model");
  EXPECT_EQ(e.at("code"), "model_not_found");
  EXPECT_TRUE(errorBody({}).at("error").at("param").is_null());
}

// Feeds `text` to a splitter in pieces of `size` bytes.
ReasoningSplitter::Parts split(std::string_view text, std::size_t size, bool thinking) {
  ReasoningSplitter splitter(thinking);
  ReasoningSplitter::Parts all;
  for (std::size_t at = 0; at < text.size(); at += size) {
    auto p = splitter.push(text.substr(at, size));
    all.reasoning += p.reasoning;
    all.content += p.content;
  }
  auto p = splitter.flush();
  all.reasoning += p.reasoning;
  all.content += p.content;
  return all;
}

TEST(ReasoningSplitter, SplitsAtTheTagsInAnyPieceSize) {
  for (std::size_t size = 1; size < 12; ++size) {
    auto parts = split("<think>\nLet me see.\n</think>\n\nThe answer is 4.", size, false);
    EXPECT_EQ(parts.reasoning, "\nLet me see.\n") << size;
    EXPECT_EQ(parts.content, "The answer is 4.") << size;
    auto opened = split("Hmm <b>.</think>Yes <think> stays", size, true);
    EXPECT_EQ(opened.reasoning, "Hmm <b>.") << size;
    EXPECT_EQ(opened.content, "Yes <think> stays") << size;
    auto none = split("No reasoning <thin here", size, false);
    EXPECT_EQ(none.reasoning, "") << size;
    EXPECT_EQ(none.content, "No reasoning <thin here") << size;
    auto unfinished = split("<think>still thinking", size, false);
    EXPECT_EQ(unfinished.reasoning, "still thinking") << size;
    EXPECT_EQ(unfinished.content, "") << size;
  }
}

}  // namespace
}  // namespace aibox::server
