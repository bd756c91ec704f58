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
