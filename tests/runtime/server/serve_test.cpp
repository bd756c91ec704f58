// The real `aibox-runtime serve` on generated models, called over HTTP as the OpenAI clients
// call it: every route, streaming as the clients parse it, batching that does not change
// results, the prefix cache, cancellation, the full queue, the token and the SIGTERM drain.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <csignal>
#include <cstring>
#include <future>
#include <random>
#include <thread>

#include "tests/runtime/server/schema_check.hpp"
#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

namespace json = boost::json;

// One generated model per architecture for the whole suite.
class Models {
 public:
  static const std::string& path(const std::string& arch) {
    static Models models;
    return models.paths_.at(arch);
  }

 private:
  Models() {
    for (std::string arch : {"llama", "qwen2"}) {
      auto path = (dir_.path() / (arch + ".gguf")).string();
      auto made = run({AIBOX_RUNTIME_BIN, "make-test-model", "--arch", arch, "--type", "q8_0",
                       "--layers", "2", "--dim", "128", "--ff", "256", "--context", "1024", path});
      if (made.exitCode != 0) {
        throw std::runtime_error("make-test-model failed: " + made.err);
      }
      paths_[arch] = path;
    }
  }
  TempDir dir_;
  std::map<std::string, std::string> paths_;
};

json::object parse(const std::string& text) {
  return json::parse(text).as_object();
}

HttpReply post(const RuntimeServer& server, const std::string& path, const json::value& body,
               std::vector<std::string> headers = {}) {
  headers.emplace_back("Content-Type: application/json");
  return viaHttp(
      server.port(),
      {.method = "POST", .path = path, .body = json::serialize(body), .headers = headers});
}

// The events of a server-sent event stream, parsed the way the OpenAI clients parse them:
// "data: " lines, one JSON object each, ended by "data: [DONE]".
struct Stream {
  std::vector<json::object> chunks;
  bool done = false;
  std::string text;  // the contents of every delta (chat) or text (completions), joined
};

Stream parseStream(const std::string& body) {
  Stream stream;
  std::size_t at = 0;
  while (at < body.size()) {
    auto end = body.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line: " << body.substr(at);
    if (end == std::string::npos) {
      break;
    }
    auto event = body.substr(at, end - at);
    at = end + 2;
    EXPECT_TRUE(event.starts_with("data: ")) << event;
    auto data = event.substr(6);
    EXPECT_FALSE(stream.done) << "an event after [DONE]: " << event;
    if (data == "[DONE]") {
      stream.done = true;
      continue;
    }
    auto chunk = parse(data);
    for (const auto& choice : chunk.at("choices").as_array()) {
      const auto& c = choice.as_object();
      if (const auto* delta = c.if_contains("delta")) {
        if (const auto* content = delta->as_object().if_contains("content")) {
          stream.text += content->as_string();
        }
      } else if (const auto* text = c.if_contains("text")) {
        stream.text += text->as_string();
      }
    }
    stream.chunks.push_back(std::move(chunk));
  }
  return stream;
}

json::object chat(const std::string& content, int maxTokens, bool stream = false) {
  json::object body{{"model", "m"},
                    {"messages", json::array{json::object{{"role", "user"}, {"content", content}}}},
                    {"max_tokens", maxTokens},
                    {"temperature", 0}};
  if (stream) {
    body["stream"] = true;
  }
  return body;
}

std::string content(const HttpReply& reply) {
  auto body = parse(reply.body);
  return std::string(body.at("choices").at(0).at("message").at("content").as_string());
}

double metric(const RuntimeServer& server, const std::string& name) {
  auto reply = viaHttp(server.port(), {.path = "/metrics"});
  auto at = reply.body.find("\n" + name + "{");
  if (at == std::string::npos) {
    ADD_FAILURE() << name << " is not in /metrics:\n" << reply.body;
    return -1;
  }
  auto value = reply.body.find("} ", at) + 2;
  return std::stod(reply.body.substr(value));
}

class Serve : public testing::TestWithParam<std::string> {
 protected:
  std::vector<std::string> args(std::vector<std::string> more = {}) const {
    std::vector<std::string> out{
        "--model", Models::path(GetParam()), "--served-name", "m", "--threads", "2"};
    out.insert(out.end(), more.begin(), more.end());
    return out;
  }
};

INSTANTIATE_TEST_SUITE_P(BothArchitectures, Serve, testing::Values("llama", "qwen2"));

TEST_P(Serve, AnswersHealthModelsChatAndCompletions) {
  RuntimeServer server(args());
  auto health = viaHttp(server.port(), {.path = "/health"});
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(parse(health.body).at("status").as_string(), "ok");
  auto models = parse(viaHttp(server.port(), {.path = "/v1/models"}).body);
  EXPECT_EQ(models.at("object").as_string(), "list");
  EXPECT_EQ(models.at("data").at(0).at("id").as_string(), "m");
  EXPECT_EQ(models.at("data").at(0).at("max_model_len").as_int64(), 1024);

  auto reply = post(server, "/v1/chat/completions", chat("Hello there", 8));
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = parse(reply.body);
  EXPECT_EQ(body.at("object").as_string(), "chat.completion");
  EXPECT_TRUE(body.at("id").as_string().starts_with("chatcmpl-"));
  EXPECT_EQ(body.at("model").as_string(), "m");
  const auto& choice = body.at("choices").at(0).as_object();
  EXPECT_EQ(choice.at("message").at("role").as_string(), "assistant");
  EXPECT_TRUE(choice.at("finish_reason") == "length" || choice.at("finish_reason") == "stop");
  const auto& usage = body.at("usage").as_object();
  EXPECT_GT(usage.at("prompt_tokens").as_int64(), 0);
  EXPECT_LE(usage.at("completion_tokens").as_int64(), 8);
  EXPECT_EQ(usage.at("total_tokens").as_int64(),
            usage.at("prompt_tokens").as_int64() + usage.at("completion_tokens").as_int64());

  auto completion =
      post(server, "/v1/completions",
           {{"prompt", "The box"}, {"max_tokens", 6}, {"temperature", 0}, {"logprobs", 2}});
  ASSERT_EQ(completion.status, 200) << completion.body;
  auto c = parse(completion.body);
  EXPECT_EQ(c.at("object").as_string(), "text_completion");
  const auto& logprobs = c.at("choices").at(0).at("logprobs").as_object();
  auto generated = static_cast<std::size_t>(c.at("usage").at("completion_tokens").as_int64());
  EXPECT_EQ(logprobs.at("tokens").as_array().size(), generated);
  EXPECT_EQ(logprobs.at("token_logprobs").as_array().size(), generated);
  for (const auto& lp : logprobs.at("token_logprobs").as_array()) {
    EXPECT_LE(lp.to_number<double>(), 0.0);
  }
  for (const auto& top : logprobs.at("top_logprobs").as_array()) {
    EXPECT_EQ(top.as_object().size(), 2u);
  }

  auto tokens = post(server, "/tokenize", {{"prompt", "hello world"}});
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  auto ids = parse(tokens.body).at("tokens");
  auto back = post(server, "/detokenize", {{"tokens", ids}});
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_NE(std::string(parse(back.body).at("prompt").as_string()).find("hello world"),
            std::string::npos)
      << back.body;
}

TEST_P(Serve, StreamsChunksAsTheOpenAiClientsParseThem) {
  RuntimeServer server(args());
  auto whole = post(server, "/v1/chat/completions", chat("Tell me a story", 16));
  ASSERT_EQ(whole.status, 200) << whole.body;
  auto request = chat("Tell me a story", 16, true);
  request["stream_options"] = {{"include_usage", true}};
  auto reply = post(server, "/v1/chat/completions", request);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.headers["content-type"], "text/event-stream");
  auto stream = parseStream(reply.body);
  ASSERT_TRUE(stream.done) << reply.body;
  ASSERT_GE(stream.chunks.size(), 3u);
  // A role delta first, then content, finish_reason on the last choice chunk, then usage.
  EXPECT_EQ(stream.chunks.front().at("choices").at(0).at("delta").at("role").as_string(),
            "assistant");
  const auto& usageChunk = stream.chunks.back();
  EXPECT_TRUE(usageChunk.at("choices").as_array().empty());
  EXPECT_EQ(usageChunk.at("usage").at("completion_tokens"),
            parse(whole.body).at("usage").at("completion_tokens"));
  const auto& last = stream.chunks[stream.chunks.size() - 2];
  EXPECT_FALSE(last.at("choices").at(0).at("finish_reason").is_null());
  for (std::size_t i = 0; i + 2 < stream.chunks.size(); ++i) {
    EXPECT_TRUE(stream.chunks[i].at("choices").at(0).at("finish_reason").is_null());
    EXPECT_EQ(stream.chunks[i].at("object").as_string(), "chat.completion.chunk");
    EXPECT_EQ(stream.chunks[i].at("id"), stream.chunks.front().at("id"));
  }
  EXPECT_EQ(stream.text, content(whole));

  // Without include_usage there is no usage chunk; completions stream "text".
  auto plain = parseStream(
      post(server, "/v1/completions",
           {{"prompt", "Once"}, {"max_tokens", 5}, {"temperature", 0}, {"stream", true}})
          .body);
  ASSERT_TRUE(plain.done);
  for (const auto& chunk : plain.chunks) {
    EXPECT_FALSE(chunk.contains("usage"));
    EXPECT_EQ(chunk.at("object").as_string(), "text_completion");
  }
}

// 16 concurrent greedy requests give exactly what the same requests give one at a time.
TEST_P(Serve, BatchingDoesNotChangeGreedyResults) {
  RuntimeServer server(args({"--parallel", "8", "--step-tokens", "64"}));
  std::vector<std::string> prompts;
  for (int i = 0; i < 16; ++i) {
    prompts.push_back("Request " + std::to_string(i) + ": " + std::string(i * 7 % 40, 'x') +
                      " write about the sea");
  }
  std::vector<std::string> alone;
  for (const auto& p : prompts) {
    auto reply = post(server, "/v1/chat/completions", chat(p, 12));
    ASSERT_EQ(reply.status, 200) << reply.body;
    alone.push_back(content(reply));
  }
  std::vector<std::future<HttpReply>> together;
  for (const auto& p : prompts) {
    together.push_back(std::async(std::launch::async, [&server, p] {
      return post(server, "/v1/chat/completions", chat(p, 12));
    }));
  }
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    auto reply = together[i].get();
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(content(reply), alone[i]) << "request " << i;
  }
  EXPECT_GT(metric(server, "vllm:generation_tokens_total"), 0);
  EXPECT_LT(metric(server, "aibox_scheduler_steps_total"),
            metric(server, "vllm:generation_tokens_total"))
      << "the requests were never batched";
}

TEST_P(Serve, ASharedPrefixIsServedFromTheCacheWithTheSameOutput) {
  RuntimeServer server(args({"--parallel", "2"}));
  json::object request{
      {"messages", json::array{json::object{{"role", "system"}, {"content", std::string(300, 'a')}},
                               json::object{{"role", "user"}, {"content", "Hi"}}}},
      {"max_tokens", 8},
      {"temperature", 0}};
  auto first = post(server, "/v1/chat/completions", request);
  ASSERT_EQ(first.status, 200) << first.body;
  double hitsBefore = metric(server, "vllm:prefix_cache_hits_total");
  auto second = post(server, "/v1/chat/completions", request);
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(content(second), content(first));
  auto cached = parse(second.body).at("usage").at("prompt_tokens_details").at("cached_tokens");
  auto prompt = parse(second.body).at("usage").at("prompt_tokens").as_int64();
  // Whole blocks of 16 tokens are shared; at least the prompt's last token is computed.
  auto shared = (prompt - 1) / 16 * 16;
  EXPECT_GT(shared, 0);
  EXPECT_EQ(cached.as_int64(), shared);
  EXPECT_EQ(metric(server, "vllm:prefix_cache_hits_total") - hitsBefore,
            static_cast<double>(shared));
  EXPECT_GT(metric(server, "vllm:prefix_cache_queries_total"), 0);
  EXPECT_GT(metric(server, "aibox_kv_cache_blocks_cached"), 0);
  EXPECT_EQ(metric(server, "vllm:kv_cache_usage_perc"), 0);  // nothing running now
}

TEST_P(Serve, JsonSchemaOutputAlwaysParsesAndValidates) {
  RuntimeServer server(args({"--parallel", "4"}));
  std::mt19937 random(GetParam() == "llama" ? 11 : 12);
  std::vector<json::value> schemas;
  std::vector<std::future<HttpReply>> replies;
  for (int i = 0; i < 10; ++i) {
    schemas.push_back(randomSchema(random, 2));
    auto body = chat("Answer in JSON", 700);
    body["temperature"] = 1;
    body["seed"] = i;
    body["response_format"] = {{"type", "json_schema"},
                               {"json_schema", {{"name", "answer"}, {"schema", schemas.back()}}}};
    replies.push_back(std::async(std::launch::async, [&server, body] {
      return post(server, "/v1/chat/completions", body);
    }));
  }
  for (std::size_t i = 0; i < replies.size(); ++i) {
    auto reply = replies[i].get();
    ASSERT_EQ(reply.status, 200) << reply.body;
    auto text = content(reply);
    boost::system::error_code ec;
    auto value = json::parse(text, ec);
    ASSERT_FALSE(ec) << text << " for " << json::serialize(schemas[i]);
    EXPECT_TRUE(valid(value, schemas[i])) << text << " for " << json::serialize(schemas[i]);
    EXPECT_EQ(parse(reply.body).at("choices").at(0).at("finish_reason"), "stop");
  }
  auto object = chat("JSON please", 60);
  object["response_format"] = {{"type", "json_object"}};
  auto reply = post(server, "/v1/chat/completions", object);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_TRUE(content(reply).starts_with("{")) << reply.body;
  auto bad = chat("x", 4);
  bad["response_format"] = {
      {"type", "json_schema"},
      {"json_schema", {{"name", "a"}, {"schema", {{"type", "string"}, {"format", "date"}}}}}};
  reply = post(server, "/v1/chat/completions", bad);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(parse(reply.body).at("error").at("param"), "response_format");
  EXPECT_NE(reply.body.find("'format'"), std::string::npos) << reply.body;
}

TEST_P(Serve, BadRequestsAre400NamingTheField) {
  RuntimeServer server(args({"--context", "256"}));
  auto expectError = [&server](const json::object& body, long status, const std::string& param,
                               const std::string& code = "") {
    auto reply = post(server, "/v1/chat/completions", body);
    EXPECT_EQ(reply.status, status) << json::serialize(body) << " -> " << reply.body;
    auto error = parse(reply.body).at("error").as_object();
    EXPECT_TRUE(error.at("message").is_string());
    EXPECT_TRUE(error.at("type").is_string());
    if (param.empty()) {
      EXPECT_TRUE(error.at("param").is_null()) << reply.body;
    } else {
      EXPECT_EQ(error.at("param"), json::value(param)) << reply.body;
    }
    if (!code.empty()) {
      EXPECT_EQ(error.at("code"), json::value(code)) << reply.body;
    }
    return std::string(error.at("message").as_string());
  };
  auto with = [](const std::string& key, json::value value) {
    auto body = chat("Hi", 4);
    body[key] = std::move(value);
    return body;
  };
  expectError(with("temperature", "hot"), 400, "temperature");
  expectError(with("temperature", 2.5), 400, "temperature");
  expectError(with("top_p", 0), 400, "top_p");
  expectError(with("n", 2), 400, "n");
  expectError(with("max_tokens", 0), 400, "max_tokens");
  expectError(with("stop", json::array{1, 2}), 400, "stop");
  expectError(with("logit_bias", {{"x", 1}}), 400, "logit_bias");
  expectError(with("top_logprobs", 3), 400, "top_logprobs");
  expectError(with("tools", "get_weather"), 400, "tools");
  expectError(with("tool_choice", "always"), 400, "tool_choice");
  expectError(with("response_format", {{"type", "xml"}}), 400, "response_format");
  expectError(with("messages", json::array{}), 400, "messages");
  expectError(with("messages", json::array{json::object{{"role", "robot"}, {"content", "x"}}}), 400,
              "messages[0].role");
  expectError(with("presence_penalty", -3), 400, "presence_penalty");
  expectError(with("model", "gpt-4"), 404, "model", "model_not_found");
  auto message = expectError(chat(std::string(2000, 'z') + " long", 4), 400, "messages",
                             "context_length_exceeded");
  EXPECT_NE(message.find("maximum context length is 256 tokens"), std::string::npos) << message;
  message = expectError(chat("Hi", 300), 400, "messages", "context_length_exceeded");
  EXPECT_NE(message.find("300 in the completion"), std::string::npos) << message;
  // Unknown fields are ignored, as OpenAI does.
  EXPECT_EQ(post(server, "/v1/chat/completions", with("frobnicate", true)).status, 200);
  // Text parts and the developer role are read.
  auto parts = with(
      "messages",
      json::array{
          json::object{{"role", "developer"}, {"content", "Be brief"}},
          json::object{{"role", "user"},
                       {"content", json::array{json::object{{"type", "text"}, {"text", "Hi"}}}}}});
  EXPECT_EQ(post(server, "/v1/chat/completions", parts).status, 200);
  auto invalid = viaHttp(server.port(),
                         {.method = "POST", .path = "/v1/chat/completions", .body = "{not json"});
  EXPECT_EQ(invalid.status, 400);
  auto unknown = viaHttp(server.port(), {.path = "/v1/nothing"});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(parse(unknown.body).at("error").as_object().contains("type"));
  EXPECT_EQ(viaHttp(server.port(), {.path = "/health"}).status, 200) << "the server survived";
}

TEST_P(Serve, StopStringsAreNeverShown) {
  RuntimeServer server(args());
  auto free = post(server, "/v1/completions",
                   {{"prompt", "The sea"}, {"max_tokens", 24}, {"temperature", 0}});
  ASSERT_EQ(free.status, 200);
  std::string text(parse(free.body).at("choices").at(0).at("text").as_string());
  // Two whole characters from the third on (a stop string is text, never half a character).
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      starts.push_back(i);
    }
  }
  starts.push_back(text.size());
  ASSERT_GE(starts.size(), 5u) << text;
  std::string stop = text.substr(starts[2], starts[4] - starts[2]);
  auto stopped = post(
      server, "/v1/completions",
      {{"prompt", "The sea"}, {"max_tokens", 24}, {"temperature", 0}, {"stop", json::array{stop}}});
  auto body = parse(stopped.body);
  std::string cut(body.at("choices").at(0).at("text").as_string());
  EXPECT_EQ(cut, text.substr(0, text.find(stop))) << "stop '" << stop << "'";
  EXPECT_EQ(body.at("choices").at(0).at("finish_reason").as_string(), "stop");
}

json::array weatherTools() {
  return json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Today's weather",
     "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10},
      "days": {"type": "integer"}}, "required": ["city", "days"], "additionalProperties": false}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}])")
      .as_array();
}

// The tool calls of one answer, from the message or from the stream's deltas (joined by index,
// as the OpenAI clients join them).
json::array streamedCalls(const Stream& stream) {
  json::array calls;
  for (const auto& chunk : stream.chunks) {
    for (const auto& choice : chunk.at("choices").as_array()) {
      const auto* delta = choice.as_object().if_contains("delta");
      const auto* parts = delta != nullptr ? delta->as_object().if_contains("tool_calls") : nullptr;
      for (const auto& part : parts != nullptr ? parts->as_array() : json::array{}) {
        auto index = static_cast<std::size_t>(part.at("index").as_int64());
        if (index == calls.size()) {
          calls.push_back(json::object{{"id", part.at("id")},
                                       {"type", part.at("type")},
                                       {"function", {{"name", ""}, {"arguments", ""}}}});
        }
        auto& function = calls.at(index).at("function").as_object();
        const auto& given = part.at("function").as_object();
        if (const auto* name = given.if_contains("name")) {
          function["name"] =
              std::string(function["name"].as_string()) + std::string(name->as_string());
        }
        if (const auto* arguments = given.if_contains("arguments")) {
          function["arguments"] =
              std::string(function["arguments"].as_string()) + std::string(arguments->as_string());
        }
      }
    }
  }
  return calls;
}

TEST_P(Serve, ToolCallsRoundTripThroughTheTemplate) {
  RuntimeServer server(args());
  const auto tools = weatherTools();
  const auto& parameters = tools.at(0).at("function").at("parameters");
  auto body = chat("What is the weather in Paris?", 200);
  const auto plainPrompt = parse(post(server, "/v1/chat/completions", body).body)
                               .at("usage")
                               .at("prompt_tokens")
                               .as_int64();
  body["tools"] = tools;
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  auto reply = post(server, "/v1/chat/completions", body);
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto answer = parse(reply.body);
  EXPECT_GT(answer.at("usage").at("prompt_tokens").as_int64(), plainPrompt + 50)
      << "the tools are rendered into the prompt";
  const auto& choice = answer.at("choices").at(0).as_object();
  EXPECT_EQ(choice.at("finish_reason"), "tool_calls") << reply.body;
  const auto& message = choice.at("message").as_object();
  EXPECT_TRUE(message.at("content").is_null()) << reply.body;
  ASSERT_EQ(message.at("tool_calls").as_array().size(), 1u) << reply.body;
  const auto& call = message.at("tool_calls").at(0).as_object();
  EXPECT_TRUE(call.at("id").as_string().starts_with("call_"));
  EXPECT_EQ(call.at("type"), "function");
  EXPECT_EQ(call.at("function").at("name"), "get_weather");
  auto arguments = json::parse(call.at("function").at("arguments").as_string());
  EXPECT_TRUE(valid(arguments, parameters)) << reply.body;

  // Streamed: the same call in delta.tool_calls, finish_reason "tool_calls".
  body["stream"] = true;
  auto streamed = parseStream(post(server, "/v1/chat/completions", body).body);
  EXPECT_TRUE(streamed.done);
  EXPECT_EQ(streamed.text, "");
  auto calls = streamedCalls(streamed);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls.at(0).at("function"), call.at("function"));
  EXPECT_EQ(streamed.chunks.back().at("choices").at(0).at("finish_reason"), "tool_calls");
  body.erase("stream");

  // The call and its result go back: the conversation renders and the model answers.
  auto& messages = body["messages"].as_array();
  messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", {call}}});
  messages.push_back(
      {{"role", "tool"}, {"tool_call_id", call.at("id")}, {"content", R"({"temp": 21})"}});
  body["tool_choice"] = "none";
  body["max_tokens"] = 8;
  auto next = post(server, "/v1/chat/completions", body);
  ASSERT_EQ(next.status, 200) << next.body;
  const auto nextBody = parse(next.body);
  const auto& after = nextBody.at("choices").at(0).as_object();
  EXPECT_NE(after.at("finish_reason"), "tool_calls");
  EXPECT_FALSE(after.at("message").as_object().contains("tool_calls"));
  EXPECT_GT(nextBody.at("usage").at("prompt_tokens").as_int64(),
            answer.at("usage").at("prompt_tokens").as_int64());

  // "required": a call (with one tool, to it, its parameters followed).
  messages.resize(1);
  body["tools"] = json::array{tools.at(0)};
  body["tool_choice"] = "required";
  body["max_tokens"] = 200;
  reply = post(server, "/v1/chat/completions", body);
  ASSERT_EQ(reply.status, 200) << reply.body;
  const auto requiredBody = parse(reply.body);
  const auto& required = requiredBody.at("choices").at(0).at("message").at("tool_calls");
  ASSERT_EQ(required.as_array().size(), 1u) << reply.body;
  EXPECT_EQ(required.at(0).at("function").at("name"), "get_weather") << reply.body;
  EXPECT_TRUE(
      valid(json::parse(required.at(0).at("function").at("arguments").as_string()), parameters))
      << reply.body;

  // Bad tools name the field.
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "nope"}}}};
  reply = post(server, "/v1/chat/completions", body);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(parse(reply.body).at("error").at("param"), "tool_choice");
  body["tool_choice"] = "auto";
  body["tools"] = json::array{{{"type", "function"}, {"function", {{"name", "bad name"}}}}};
  reply = post(server, "/v1/chat/completions", body);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(parse(reply.body).at("error").at("param"), "tools[0].function.name");
}

TEST(ServeTools, AFamilyWithoutToolSupportAnswers400) {
  RuntimeServer server(
      {"--model", Models::path("qwen2"), "--served-name", "m", "--chat-template", "deepseek-r1"});
  auto body = chat("Weather?", 4);
  body["tools"] = weatherTools();
  auto reply = post(server, "/v1/chat/completions", body);
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_EQ(parse(reply.body).at("error").at("param"), "tools");
  EXPECT_NE(reply.body.find("does not render tools"), std::string::npos) << reply.body;
}

// The floats of an OpenAI base64 embedding (little-endian float32).
std::vector<float> fromBase64(const std::string& text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') {
      break;
    }
    bits = (bits << 6) | static_cast<std::uint32_t>(kAlphabet.find(c));
    if (++count == 4) {
      bytes += static_cast<char>(bits >> 16);
      bytes += static_cast<char>(bits >> 8);
      bytes += static_cast<char>(bits);
      bits = 0;
      count = 0;
    }
  }
  if (count == 3) {
    bytes += static_cast<char>(bits >> 10);
    bytes += static_cast<char>(bits >> 2);
  } else if (count == 2) {
    bytes += static_cast<char>(bits >> 4);
  }
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

std::vector<float> floats(const json::value& embedding) {
  std::vector<float> out;
  for (const auto& v : embedding.as_array()) {
    out.push_back(static_cast<float>(v.to_number<double>()));
  }
  return out;
}

TEST(ServeEmbeddings, PooledModelsAnswerEmbeddingsAsOpenAiDoes) {
  TempDir dir;
  auto make = [&dir](const std::string& arch, const std::string& pooling) {
    auto path = (dir.path() / (arch + "-" + pooling + ".gguf")).string();
    auto made = run({AIBOX_RUNTIME_BIN, "make-test-model", "--arch", arch, "--type", "f16",
                     "--layers", "2", "--dim", "64", "--ff", "128", "--pooling", pooling, path});
    EXPECT_EQ(made.exitCode, 0) << made.err;
    return path;
  };
  for (const auto& [arch, pooling] : std::vector<std::pair<std::string, std::string>>{
           {"qwen2", "last"}, {"llama", "mean"}, {"llama", "cls"}}) {
    SCOPED_TRACE(arch + " " + pooling);
    RuntimeServer server({"--model", make(arch, pooling), "--served-name", "m", "--parallel", "4"});
    const json::array inputs{"The box runs models", "盒子里的模型", "The box runs"};
    auto reply = post(server, "/v1/embeddings", {{"model", "m"}, {"input", inputs}});
    ASSERT_EQ(reply.status, 200) << reply.body;
    auto body = parse(reply.body);
    EXPECT_EQ(body.at("object"), "list");
    EXPECT_EQ(body.at("model"), "m");
    const auto& data = body.at("data").as_array();
    ASSERT_EQ(data.size(), 3u);
    std::vector<std::vector<float>> vectors;
    for (std::size_t i = 0; i < data.size(); ++i) {
      EXPECT_EQ(data[i].at("object"), "embedding");
      EXPECT_EQ(data[i].at("index").as_int64(), static_cast<std::int64_t>(i));
      vectors.push_back(floats(data[i].at("embedding")));
      ASSERT_EQ(vectors.back().size(), 64u);
      double norm = 0;
      for (float v : vectors.back()) {
        norm += static_cast<double>(v) * v;
      }
      EXPECT_NEAR(norm, 1.0, 1e-4) << "embeddings are L2-normalised";
    }
    EXPECT_GT(body.at("usage").at("prompt_tokens").as_int64(), 3);
    if (pooling == "cls") {
      // A causal model's first position sees only the first token (BOS here): the same for all.
      EXPECT_EQ(vectors[0], vectors[1]);
    } else {
      EXPECT_NE(vectors[0], vectors[1]);
      EXPECT_NE(vectors[0], vectors[2]) << "the pooling covers the whole input";
    }
    // One input alone, and in base64, gives the same vector as in the batch.
    auto alone =
        post(server, "/v1/embeddings", {{"input", inputs[2]}, {"encoding_format", "base64"}});
    ASSERT_EQ(alone.status, 200) << alone.body;
    auto decoded =
        fromBase64(std::string(parse(alone.body).at("data").at(0).at("embedding").as_string()));
    ASSERT_EQ(decoded.size(), 64u);
    for (std::size_t k = 0; k < decoded.size(); ++k) {
      EXPECT_NEAR(decoded[k], vectors[2][k], 1e-6);
    }
    // Token ids are an input too.
    auto ids = post(server, "/tokenize", {{"prompt", "The box runs"}});
    auto byIds = post(server, "/v1/embeddings", {{"input", parse(ids.body).at("tokens")}});
    ASSERT_EQ(byIds.status, 200) << byIds.body;
    auto viaIds = floats(parse(byIds.body).at("data").at(0).at("embedding"));
    for (std::size_t k = 0; k < viaIds.size(); ++k) {
      EXPECT_NEAR(viaIds[k], vectors[2][k], 1e-6);
    }
    auto bad = post(server, "/v1/embeddings", {{"input", json::array{"a", 3}}});
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(parse(bad.body).at("error").at("param"), "input");
    bad = post(server, "/v1/embeddings", {{"input", "a"}, {"dimensions", 32}});
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(parse(bad.body).at("error").at("param"), "dimensions");
    bad = post(server, "/v1/embeddings", {{"input", "a"}, {"encoding_format", "int8"}});
    EXPECT_EQ(parse(bad.body).at("error").at("param"), "encoding_format");
  }
  RuntimeServer chatModel({"--model", Models::path("llama"), "--served-name", "m"});
  auto refused = post(chatModel, "/v1/embeddings", {{"input", "a"}});
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(parse(refused.body).at("error").at("code"), "model_not_embedding") << refused.body;
}

TEST(ServeToken, EveryRouteButHealthNeedsTheBearerToken) {
  TempDir dir;
  writeFile(dir.path() / "token", "s3cret-token\n");
  RuntimeServer server(
      {"--model", Models::path("qwen2"), "--api-token-file", (dir.path() / "token").string()});
  EXPECT_EQ(viaHttp(server.port(), {.path = "/health"}).status, 200);
  auto refused = viaHttp(server.port(), {.path = "/v1/models"});
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(parse(refused.body).at("error").at("code").as_string(), "invalid_api_key");
  EXPECT_EQ(viaHttp(server.port(), {.path = "/metrics"}).status, 401);
  EXPECT_EQ(
      viaHttp(server.port(), {.path = "/v1/models", .headers = {"Authorization: Bearer nope"}})
          .status,
      401);
  EXPECT_EQ(viaHttp(server.port(),
                    {.path = "/v1/models", .headers = {"Authorization: Bearer s3cret-token"}})
                .status,
            200);
  EXPECT_EQ(server.log().find("s3cret"), std::string::npos) << "the token was logged";
}

TEST(ServeQueue, AFullQueueIs503WithRetryAfter) {
  RuntimeServer server(
      {"--model", Models::path("llama"), "--parallel", "1", "--queue", "1", "--threads", "1"});
  std::vector<std::future<HttpReply>> replies;
  for (int i = 0; i < 6; ++i) {
    replies.push_back(std::async(std::launch::async, [&server, i] {
      return post(
          server, "/v1/completions",
          {{"prompt", "Number " + std::to_string(i)}, {"max_tokens", 200}, {"temperature", 0}});
    }));
  }
  int ok = 0;
  int busy = 0;
  for (auto& f : replies) {
    auto reply = f.get();
    if (reply.status == 200) {
      ++ok;
    } else {
      EXPECT_EQ(reply.status, 503) << reply.body;
      EXPECT_EQ(reply.headers["retry-after"], "1");
      EXPECT_EQ(parse(reply.body).at("error").at("code").as_string(), "server_overloaded");
      ++busy;
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_GE(busy, 1);
  EXPECT_EQ(metric(server, "aibox_requests_rejected_total"), busy);
}

TEST(ServeCancel, AClientThatGoesAwayFreesItsSlot) {
  RuntimeServer server({"--model", Models::path("qwen2"), "--served-name", "m", "--parallel", "1",
                        "--threads", "1"});
  auto first = chat("Go on forever", 900, true);
  auto cut =
      viaHttp(server.port(), {.method = "POST",
                              .path = "/v1/chat/completions",
                              .body = json::serialize(first),
                              .headers = {"Content-Type: application/json"},
                              .until = [](const std::string& body) {
                                return body.find("\"content\":\"", body.find("content") + 1) !=
                                       std::string::npos;
                              }});
  ASSERT_EQ(cut.status, 200) << cut.error;
  // The one slot is free again at once: the next request is answered, not queued behind 900
  // tokens.
  auto started = std::chrono::steady_clock::now();
  auto next = post(server, "/v1/chat/completions", chat("Hi", 4));
  EXPECT_EQ(next.status, 200) << next.body;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string metrics;
  do {
    metrics = viaHttp(server.port(), {.path = "/metrics"}).body;
  } while (metrics.find("finished_reason=\"abort\"} 1") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_NE(metrics.find("finished_reason=\"abort\"} 1"), std::string::npos) << metrics;
  EXPECT_LT(metric(server, "vllm:generation_tokens_total"), 900);
}

TEST(ServeDrain, SigtermLetsRunningRequestsFinishThenExitsZero) {
  RuntimeServer server({"--model", Models::path("llama"), "--threads", "1"});
  auto running = std::async(std::launch::async, [&server] {
    return post(server, "/v1/completions",
                {{"prompt", "Long"}, {"max_tokens", 120}, {"temperature", 0}});
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (metric(server, "vllm:num_requests_running") < 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  server.signal(SIGTERM);
  auto reply = running.get();
  EXPECT_EQ(reply.status, 200) << reply.body << reply.error;
  EXPECT_EQ(parse(reply.body).at("usage").at("completion_tokens").as_int64(), 120);
  EXPECT_EQ(server.wait(std::chrono::seconds(20)), 0) << server.log();
  EXPECT_NE(viaHttp(server.port(), {.path = "/health"}).error, "");
}

TEST(ServeReasoning, TheDeepSeekR1TemplateSplitsReasoningFromTheAnswer) {
  RuntimeServer server(
      {"--model", Models::path("qwen2"), "--served-name", "m", "--chat-template", "deepseek-r1"});
  auto reply = post(server, "/v1/chat/completions", chat("Why?", 6));
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto body = parse(reply.body);
  const auto& message = body.at("choices").at(0).at("message").as_object();
  EXPECT_TRUE(message.at("reasoning_content").is_string()) << reply.body;
  RuntimeServer inlined({"--model", Models::path("qwen2"), "--served-name", "m", "--chat-template",
                         "deepseek-r1", "--reasoning", "inline"});
  auto plain = post(inlined, "/v1/chat/completions", chat("Why?", 6));
  EXPECT_FALSE(parse(plain.body)
                   .at("choices")
                   .at(0)
                   .at("message")
                   .as_object()
                   .contains("reasoning_content"));
  EXPECT_EQ(content(plain),
            std::string(message.at("reasoning_content").as_string()) + content(reply));
}

TEST(ServeStart, HealthAnswersBeforeTheModelIsReadyAndABadModelExitsOne) {
  TempDir dir;
  writeFile(dir.path() / "bad.gguf", "GGUF but not really");
  RuntimeServer bad({"--model", (dir.path() / "bad.gguf").string()}, false);
  EXPECT_EQ(bad.wait(std::chrono::seconds(20)), 1);
  EXPECT_NE(bad.log().find("bad.gguf"), std::string::npos) << bad.log();
  auto usage =
      run({AIBOX_RUNTIME_BIN, "serve", "--model", Models::path("qwen2"), "--listen", "nowhere"});
  EXPECT_EQ(usage.exitCode, 1);
  EXPECT_NE(usage.err.find("ADDR:PORT"), std::string::npos) << usage.err;
  // 64 KiB of keys and values per 16 positions: 1 MiB holds 256 of the 1024 it needs.
  auto wide = (dir.path() / "wide.gguf").string();
  ASSERT_EQ(run({AIBOX_RUNTIME_BIN, "make-test-model", "--layers", "4", "--dim", "256", "--context",
                 "1024", wide})
                .exitCode,
            0);
  RuntimeServer small({"--model", wide, "--kv-memory", "1"}, false);
  EXPECT_EQ(small.wait(std::chrono::seconds(20)), 1);
  EXPECT_NE(small.log().find("holds 256 tokens of this model, less than one context of 1024"),
            std::string::npos)
      << small.log();
  auto kvType =
      run({AIBOX_RUNTIME_BIN, "serve", "--model", Models::path("qwen2"), "--kv-type", "q8"});
  EXPECT_EQ(kvType.exitCode, 2);
  EXPECT_NE(kvType.err.find("f32 or f16"), std::string::npos) << kvType.err;
  auto help = run({AIBOX_RUNTIME_BIN, "serve", "--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_NE(help.out.find("--parallel"), std::string::npos);
  EXPECT_NE(help.out.find("--kv-memory"), std::string::npos);
}

}  // namespace
}  // namespace aibox::test
