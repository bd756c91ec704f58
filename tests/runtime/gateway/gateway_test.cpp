// aibox-gateway through its real interface: the real agent supervising real `aibox-runtime
// serve` instances and fault-engine instances (a slow, fixed answer that tells what reached
// it), and the real gateway in front. Keys, limits with their 429s and headers, routing over
// two instances with one killed mid-run, the stream passed through unchanged, a client's
// disconnect reaching the engine, the agent stopped while the gateway serves, and the usage
// rows the agent keeps equal to what the clients were told.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <fstream>
#include <thread>

#include "common/db/db.hpp"
#include "common/json/json.hpp"
#include "tests/agent/license/fake_box.hpp"
#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

boost::json::object parse(const std::string& body) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  return !ec && v.is_object() ? v.as_object() : boost::json::object{};
}

std::string str(const boost::json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

std::string errorCode(const HttpReply& reply) {
  auto o = parse(reply.body);
  return o.contains("error") ? str(o.at("error").at("code")) : "(no error) " + reply.body;
}

std::string chatBody(const std::string& model, bool stream, int maxTokens = 8,
                     const std::string& extra = "") {
  return R"({"model":")" + model + R"(","max_tokens":)" + std::to_string(maxTokens) +
         R"(,"temperature":0,"seed":1,"stream":)" + (stream ? "true" : "false") + extra +
         R"(,"messages":[{"role":"user","content":"hello there"}]})";
}

// The usage a client was told: the last "usage" object of a JSON answer or a stream.
std::pair<std::int64_t, std::int64_t> toldUsage(const std::string& body) {
  auto answer = parse(body);
  if (answer.empty()) {  // a stream: its last event with a usage
    auto at = body.rfind("data: {", body.rfind("\"usage\":{"));
    answer = parse(body.substr(at + 6, body.find("\n\n", at) - at - 6));
  }
  const auto& usage = answer.at("usage");
  return {usage.at("prompt_tokens").as_int64(), usage.at("completion_tokens").as_int64()};
}

int countOf(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box.write(root.path());
    stdfs::create_directories(root.path() / "usb");
    for (const auto& [name, layers] :
         {std::pair{"tiny", "2"}, std::pair{"slow", "1"}, std::pair{"embed", "3"}}) {
      std::vector<std::string> argv{AIBOX_RUNTIME_BIN,
                                    "make-test-model",
                                    "--arch",
                                    "qwen2",
                                    "--type",
                                    "q8_0",
                                    "--layers",
                                    layers,
                                    "--dim",
                                    "64",
                                    "--ff",
                                    "128",
                                    "--context",
                                    "512"};
      if (std::string(name) == "embed") {
        argv.insert(argv.end(), {"--pooling", "mean"});
      }
      argv.push_back((root.path() / "usb" / (std::string(name) + ".gguf")).string());
      auto made = run(argv);
      ASSERT_EQ(made.exitCode, 0) << made.err;
    }
    stdfs::create_directories(root.path() / "etc/aibox/engines");
    writeFile(root.path() / "etc/aibox/engines/fault.json",
              R"({"binary": ")" + std::string(FAULT_ENGINE) + R"(",
      "formats": ["gguf"], "args": [["--port", "{port}"], ["--token-file", "{token_file}"],
      "{extra}"], "ready": {"http": "/health", "status": 200}, "stop_grace_s": 1})");
    portBase = 31000 + static_cast<int>(::getpid() % 400) * 40;
    startAgent();
    auto fp = parse(viaSocket(*agent, {.path = "/api/v1/license/fingerprint"}).body);
    std::vector<std::string> parts;
    for (const auto& c : fp.at("components").as_array()) {
      parts.push_back(str(c));
    }
    boost::json::object entitlements{{"max_instances", 4}};
    if (boxConcurrency) {
      entitlements["max_concurrency"] = *boxConcurrency;
    }
    auto installed =
        viaSocket(*agent, {.method = "PUT",
                           .path = "/api/v1/license",
                           .body = issueLicense(parts, {{"entitlements", entitlements}})});
    ASSERT_EQ(installed.status, 200) << installed.body;
    importModel("tiny");
    importModel("slow");
    importModel("embed");
  }

  void TearDown() override {
    gateway.reset();
    if (agent) {
      for (const auto& r : runtimes()) {
        viaSocket(*agent,
                  {.method = "POST", .path = "/api/v1/runtimes/" + str(r.at("id")) + "/stop"});
      }
      for (int i = 0; i < 200; ++i) {
        bool allStopped = true;
        for (const auto& r : runtimes()) {
          allStopped = allStopped && str(r.at("state")) == "stopped";
        }
        if (allStopped) {
          break;
        }
        std::this_thread::sleep_for(50ms);
      }
    }
    agent.reset();
  }

  boost::json::array runtimes() {
    auto o = parse(viaSocket(*agent, {.path = "/api/v1/runtimes"}).body);
    return o.contains("runtimes") ? o.at("runtimes").as_array() : boost::json::array{};
  }

  void startAgent() {
    agent = std::make_unique<Agent>(
        root.path(),
        AgentOptions{
            .args = {
                "--models.import_dirs=" + (root.path() / "usb").string(),
                "--models.reserve_bytes=0",
                std::string("--runtimes.engines_dir=") + AIBOX_SOURCE_DIR + "/packaging/engines",
                "--runtimes.engine_path=" + stdfs::path(AIBOX_RUNTIME_BIN).parent_path().string(),
                "--runtimes.port_range=" + std::to_string(portBase) + "-" +
                    std::to_string(portBase + 39),
                "--runtimes.cgroup=off",
                "--runtimes.backoff_first_ms=100",
                "--runtimes.probe_interval_ms=100",
                "--runtimes.unhealthy_probes=2",
                "--hardware.sources=nvml",
                std::string("--hardware.nvml_library=") + FAKE_NVML,
            }});
    writeFile(root.path() / "nvml.json", R"({"gpus": []})");
    ::setenv("AIBOX_FAKE_NVML", (root.path() / "nvml.json").c_str(), 1);
    for (int i = 0; i < 100; ++i) {
      auto fp = parse(viaSocket(*agent, {.path = "/api/v1/license/fingerprint"}).body);
      if (fp.contains("gpus_pending") && !fp.at("gpus_pending").as_bool()) {
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  void startGateway(std::vector<std::string> args = {}) {
    args.insert(args.end(), {"--gateway.flush_interval_ms=200", "--gateway.resync_s=1"});
    gateway = std::make_unique<Gateway>(root.path(), std::move(args));
  }

  void importModel(const std::string& name) {
    auto reply = viaSocket(
        *agent, {.method = "POST",
                 .path = "/api/v1/models",
                 .body = R"({"source":")" + (root.path() / "usb" / (name + ".gguf")).string() +
                         R"(","name":")" + name + R"("})"});
    ASSERT_EQ(reply.status, 202) << reply.body;
    auto job = str(parse(reply.body).at("job").at("id"));
    for (int i = 0; i < 500; ++i) {
      auto j = parse(viaSocket(*agent, {.path = "/api/v1/jobs/" + job}).body);
      if (j.at("state") == "succeeded") {
        return;
      }
      ASSERT_NE(j.at("state"), "failed") << json::serialize(j);
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "the import of " << name << " did not finish";
  }

  // Creates an instance and waits until it is ready; returns it.
  boost::json::object instance(const std::string& name, const std::string& model,
                               const std::string& engine, const boost::json::object& settings) {
    auto reply = viaSocket(
        *agent,
        {.method = "POST",
         .path = "/api/v1/runtimes",
         .body = json::serialize(boost::json::object{
             {"name", name}, {"model", model}, {"engine", engine}, {"settings", settings}})});
    EXPECT_EQ(reply.status, 201) << reply.body;
    return waitReady(name);
  }

  boost::json::object waitReady(const std::string& name) {
    boost::json::object r;
    for (int i = 0; i < 1200; ++i) {
      r = parse(viaSocket(*agent, {.path = "/api/v1/runtimes/" + name}).body);
      if (r.contains("state") && r.at("state") == "ready") {
        return r;
      }
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << name << " never became ready: " << json::serialize(r);
    return r;
  }

  boost::json::object builtin(const std::string& name) {
    return instance(name, "tiny", "builtin", {{"threads", 1}, {"context", 256}});
  }

  boost::json::object fault(const std::string& name, std::vector<std::string> args) {
    args.insert(args.end(), {"--events-file", (root.path() / (name + ".events")).string()});
    return instance(name, "slow", "fault",
                    {{"extra_args", boost::json::array(args.begin(), args.end())}});
  }

  std::string engineEvents(const std::string& name) {
    std::ifstream in(root.path() / (name + ".events"));
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // Makes an inference key; returns {secret, id}.
  std::pair<std::string, std::string> key(boost::json::object fields = {}) {
    fields["name"] = "app-" + std::to_string(++keys);
    auto reply = viaSocket(
        *agent, {.method = "POST", .path = "/api/v1/keys", .body = json::serialize(fields)});
    EXPECT_EQ(reply.status, 201) << reply.body;
    auto o = parse(reply.body);
    return {str(o.at("key")), str(o.at("id"))};
  }

  HttpReply call(const std::string& secret, const std::string& method, const std::string& path,
                 const std::string& body = "",
                 std::function<bool(const std::string&)> until = nullptr) {
    std::vector<std::string> headers{"Content-Type: application/json"};
    if (!secret.empty()) {
      headers.push_back("Authorization: Bearer " + secret);
    }
    return viaGateway(*gateway, {.method = method,
                                 .path = path,
                                 .body = body,
                                 .headers = headers,
                                 .until = std::move(until)});
  }

  HttpReply chat(const std::string& secret, const std::string& body,
                 std::function<bool(const std::string&)> until = nullptr) {
    return call(secret, "POST", "/v1/chat/completions", body, std::move(until));
  }

  // Waits until `check` holds for the gateway (it follows the agent within a second).
  bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout = 5s) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (check()) {
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // Waits until the gateway lists `model` for the key (the agent's snapshot reached it).
  void waitModel(const std::string& secret, const std::string& model) {
    ASSERT_TRUE(eventually([&] {
      auto data = parse(call(secret, "GET", "/v1/models").body);
      return data.contains("data") &&
             json::serialize(data.at("data")).find("\"" + model + "\"") != std::string::npos;
    })) << gateway->log();
  }

  boost::json::object usage(const std::string& query = "") {
    auto reply = viaSocket(*agent, {.path = "/api/v1/usage" + query});
    EXPECT_EQ(reply.status, 200) << reply.body;
    return parse(reply.body);
  }

  TempDir root;
  FakeBox box;
  int portBase = 0;
  int keys = 0;
  std::optional<int> boxConcurrency;
  std::unique_ptr<Agent> agent;
  std::unique_ptr<Gateway> gateway;
};

TEST_F(GatewayTest, KeysDecideWhoMayCallWhichModel) {
  builtin("tiny-a");
  auto [secret, id] = key();
  auto [narrow, narrowId] = key({{"models", boost::json::array{"other"}}});
  startGateway();
  waitModel(secret, "tiny");

  auto missing = chat("", chatBody("tiny", false));
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(errorCode(missing), "missing_api_key");
  EXPECT_EQ(parse(missing.body).at("error").at("type"), "invalid_request_error");
  auto wrong = chat(secret.substr(0, secret.size() - 2) + "xx", chatBody("tiny", false));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(errorCode(wrong), "invalid_api_key");
  EXPECT_EQ(errorCode(chat("Bearer-less", chatBody("tiny", false))), "invalid_api_key");

  auto models = parse(call(secret, "GET", "/v1/models").body);
  ASSERT_EQ(models.at("data").as_array().size(), 1u) << json::serialize(models);
  EXPECT_EQ(models.at("data").as_array()[0].at("id"), "tiny");
  EXPECT_TRUE(parse(call(narrow, "GET", "/v1/models").body).at("data").as_array().empty());
  auto notAllowed = chat(narrow, chatBody("tiny", false));
  EXPECT_EQ(notAllowed.status, 404);
  EXPECT_EQ(errorCode(notAllowed), "model_not_found");
  EXPECT_EQ(errorCode(chat(secret, chatBody("nonexistent", false))), "model_not_found");
  EXPECT_EQ(chat(secret, chatBody("tiny:latest", false)).status, 200) << "the store's name:tag";
  auto badJson = chat(secret, "{not json");
  EXPECT_EQ(badJson.status, 400);
  EXPECT_EQ(errorCode(badJson), "invalid_json");
  auto noModel = chat(secret, R"({"messages":[]})");
  EXPECT_EQ(errorCode(noModel), "missing_model");
  auto unknown = call(secret, "GET", "/v1/nothing");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(errorCode(unknown), "unknown_url");

  // Expired: the agent's record changes, the gateway follows at its next pull.
  {
    auto db = db::Database::open(root.path() / "var/lib/aibox/aibox.db");
    db.prepare("UPDATE inference_keys SET expires_at = 1000 WHERE id = ?").bind(1, narrowId).step();
  }
  EXPECT_TRUE(eventually(
      [&] { return errorCode(chat(narrow, chatBody("tiny", false))) == "expired_api_key"; }));

  // Revoked: gone from the gateway within a second of the console's delete.
  ASSERT_EQ(viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/keys/" + id}).status, 200);
  auto revokedAt = Clock::now();
  EXPECT_TRUE(eventually([&] { return chat(secret, chatBody("tiny", false)).status == 401; }));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - revokedAt);
  EXPECT_LT(took.count(), 1000) << "a revoked key worked for " << took.count() << " ms";

  for (const auto& log : {gateway->log(), agent->log()}) {
    EXPECT_EQ(log.find(secret.substr(22)), std::string::npos) << "a key's secret was logged";
  }
  EXPECT_NE(gateway->log().find("gateway request"), std::string::npos) << "no access log";
  auto metrics = viaUnix(gateway->metricsSocket(), {.path = "/metrics"});
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("aibox_gateway_requests_total{model=\"tiny:latest\",code=\"200\"}"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(
      metrics.body.find("aibox_gateway_time_to_first_byte_seconds_count{model=\"tiny:latest\"}"),
      std::string::npos);
}

TEST_F(GatewayTest, StreamsPassThroughUnchangedAndUsageIsMetered) {
  auto r = builtin("tiny-a");
  auto [secret, id] = key();
  startGateway();
  waitModel(secret, "tiny");
  int port = static_cast<int>(r.at("placement").at("port").as_int64());
  std::ifstream tokenFile(root.path() / "var/lib/aibox/runtimes" / str(r.at("id")) / "token");
  std::string token;
  std::getline(tokenFile, token);

  auto withUsage = chatBody("tiny", true, 12, R"(,"stream_options":{"include_usage":true})");
  auto direct = viaHttp(
      port, {.method = "POST",
             .path = "/v1/chat/completions",
             .body = withUsage,
             .headers = {"Authorization: Bearer " + token, "Content-Type: application/json"}});
  ASSERT_EQ(direct.status, 200) << direct.body;
  auto through = chat(secret, withUsage);
  ASSERT_EQ(through.status, 200) << through.body;
  EXPECT_EQ(through.headers["content-type"], "text/event-stream");
  // The same bytes but for what differs between any two calls: the id and the time.
  auto normal = [](std::string s) {
    for (const std::string field : {"\"id\":\"", "\"created\":", "\"cached_tokens\":"}) {
      for (auto at = s.find(field); at != std::string::npos; at = s.find(field, at + 1)) {
        auto begin = at + field.size();
        auto end = s.find_first_of(field.back() == '"' ? "\"" : ",}", begin);
        s.erase(begin, end - begin);
      }
    }
    return s;
  };
  EXPECT_EQ(normal(through.body), normal(direct.body));
  EXPECT_NE(through.body.find("\"usage\":{"), std::string::npos);

  // Without include_usage the client gets no usage chunk, but the gateway still meters it.
  auto plain = chat(secret, chatBody("tiny", true, 12));
  ASSERT_EQ(plain.status, 200);
  EXPECT_EQ(plain.body.find("\"usage\""), std::string::npos) << plain.body;
  EXPECT_NE(plain.body.find("data: [DONE]"), std::string::npos);
  auto whole = chat(secret, chatBody("tiny", false, 12));
  ASSERT_EQ(whole.status, 200);

  auto [p1, c1] = toldUsage(through.body);
  auto [p3, c3] = toldUsage(whole.body);
  ASSERT_GT(c1, 0);
  // The plain stream generated what the usage stream did (greedy, same prompt).
  std::int64_t prompt = p1 * 2 + p3;
  std::int64_t completion = c1 * 2 + c3;
  ASSERT_TRUE(eventually([&] { return usage().at("totals").at("requests").as_int64() == 3; }))
      << json::serialize(usage());
  auto totals = usage().at("totals");
  EXPECT_EQ(totals.at("prompt_tokens").as_int64(), prompt);
  EXPECT_EQ(totals.at("completion_tokens").as_int64(), completion);
  auto rows = usage("?key=" + id).at("usage").as_array();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("model"), "tiny:latest");
  EXPECT_EQ(rows[0].at("key_name"), "app-1");
  auto csv = viaSocket(*agent, {.path = "/api/v1/usage?format=csv"});
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body.rfind("hour,key,key_name,model,requests,", 0), 0u) << csv.body;
  EXPECT_NE(csv.body.find(",app-1,tiny:latest,3,"), std::string::npos) << csv.body;
  EXPECT_EQ(viaSocket(*agent, {.path = "/api/v1/usage?since=yesterday"}).status, 400);
  auto shown = run({AIBOX_CTL_BIN, "--root", root.path().string(), "usage", "show", "--key", id});
  EXPECT_EQ(shown.exitCode, 0) << shown.err;
  EXPECT_NE(shown.out.find("app-1"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("total: 3 requests"), std::string::npos) << shown.out;
  auto exported = run({AIBOX_CTL_BIN, "--root", root.path().string(), "usage", "export"});
  EXPECT_EQ(exported.out, csv.body);
  EXPECT_EQ(
      run({AIBOX_CTL_BIN, "--root", root.path().string(), "usage", "show", "--since", "yesterday"})
          .exitCode,
      1);
}

class GatewayLimits : public GatewayTest {
 protected:
  GatewayLimits() { boxConcurrency = 2; }
};

TEST_F(GatewayLimits, EveryLimitAnswers429WithItsHeaders) {
  fault("slow-a", {"--chat-chunks", "10", "--chunk-ms", "100"});
  auto [perMinute, perMinuteId] = key({{"requests_per_minute", 2}});
  auto [tokens, tokensId] = key({{"tokens_per_minute", 40}});
  auto [single, singleId] = key({{"max_concurrent", 1}});
  auto [other, otherId] = key();
  auto [third, thirdId] = key();
  startGateway();
  waitModel(other, "slow");

  auto first = chat(perMinute, chatBody("slow", false));
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.headers["x-ratelimit-limit-requests"], "2");
  EXPECT_EQ(first.headers["x-ratelimit-remaining-requests"], "1");
  EXPECT_EQ(chat(perMinute, chatBody("slow", false)).status, 200);
  auto over = chat(perMinute, chatBody("slow", false));
  EXPECT_EQ(over.status, 429);
  EXPECT_EQ(errorCode(over), "rate_limit_requests");
  EXPECT_EQ(over.headers["x-ratelimit-limit-requests"], "2");
  EXPECT_EQ(over.headers["x-ratelimit-remaining-requests"], "0");
  EXPECT_FALSE(over.headers["x-ratelimit-reset-requests"].empty());
  ASSERT_FALSE(over.headers["retry-after"].empty());
  EXPECT_GE(std::stoi(over.headers["retry-after"]), 1);

  // 40 tokens a minute: a prompt of ~8 and max_tokens 20 fit once; the engine says it used
  // 17 (7 + 10), so 23 are left, not enough for another estimate of ~28.
  auto t1 = chat(tokens, chatBody("slow", false, 20));
  EXPECT_EQ(t1.status, 200) << t1.body;
  EXPECT_EQ(t1.headers["x-ratelimit-limit-tokens"], "40");
  auto t2 = chat(tokens, chatBody("slow", false, 20));
  EXPECT_EQ(t2.status, 429);
  EXPECT_EQ(errorCode(t2), "rate_limit_tokens");
  EXPECT_FALSE(t2.headers["x-ratelimit-reset-tokens"].empty());
  EXPECT_EQ(chat(tokens, chatBody("slow", false, 1)).status, 200) << "a small request still fits";

  // Concurrency: one stream in flight for `single`, one for `other` (the box's cap is 2).
  std::atomic<int> streaming{0};
  auto hold = [&](const std::string& secret) {
    return std::thread([this, secret, &streaming] {
      chat(secret, chatBody("slow", true),
           [&streaming, counted = false](const std::string& body) mutable {
             if (!counted && body.find("data: {") != std::string::npos) {
               counted = true;
               ++streaming;
             }
             return body.find("[DONE]") != std::string::npos;
           });
    });
  };
  auto a = hold(single);
  ASSERT_TRUE(eventually([&] { return streaming == 1; }));
  auto second = chat(single, chatBody("slow", false));
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(errorCode(second), "concurrency_key");
  auto b = hold(other);
  ASSERT_TRUE(eventually([&] { return streaming == 2; }));
  auto boxFull = chat(third, chatBody("slow", false));
  EXPECT_EQ(boxFull.status, 429);
  EXPECT_EQ(errorCode(boxFull), "concurrency_box");
  EXPECT_FALSE(boxFull.headers["retry-after"].empty());
  a.join();
  b.join();
  EXPECT_EQ(chat(third, chatBody("slow", false)).status, 200) << "the places are given back";
  auto metrics = viaUnix(gateway->metricsSocket(), {.path = "/metrics"}).body;
  for (const char* reason :
       {"rate_limit_requests", "rate_limit_tokens", "concurrency_key", "concurrency_box"}) {
    EXPECT_NE(
        metrics.find("aibox_gateway_rejections_total{reason=\"" + std::string(reason) + "\"} 1"),
        std::string::npos)
        << reason << "\n"
        << metrics;
  }
}

TEST_F(GatewayTest, RoutesOverInstancesAndSurvivesOneKilledMidRun) {
  fault("slow-a", {"--chat-chunks", "6", "--chunk-ms", "50"});
  auto b = fault("slow-b", {"--chat-chunks", "6", "--chunk-ms", "50"});
  auto [secret, id] = key();
  startGateway();
  waitModel(secret, "slow");
  // Two at once go to the two instances (fewest outstanding first).
  {
    std::thread one([&] { chat(secret, chatBody("slow", true)); });
    std::thread two([&] { chat(secret, chatBody("slow", true)); });
    one.join();
    two.join();
    EXPECT_GE(countOf(engineEvents("slow-a"), "start"), 1);
    EXPECT_GE(countOf(engineEvents("slow-b"), "start"), 1);
  }

  // Clients loop while slow-b is killed: every answer is complete or ends with an error
  // event; none hangs, and none that had not begun is lost.
  std::atomic<bool> stop{false};
  std::atomic<int> complete{0};
  std::atomic<int> brokeOff{0};
  std::atomic<int> failed{0};
  std::vector<std::string> failures;
  std::mutex failuresMutex;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        auto reply = chat(secret, chatBody("slow", true));
        if (reply.status == 200 && reply.body.find("data: [DONE]") != std::string::npos) {
          ++complete;
        } else if (reply.status == 200 &&
                   reply.body.find("instance_broke_off") != std::string::npos) {
          ++brokeOff;
        } else {
          ++failed;
          std::lock_guard lock(failuresMutex);
          failures.push_back(std::to_string(reply.status) + " " + reply.error + " " + reply.body);
        }
      }
    });
  }
  std::this_thread::sleep_for(700ms);
  // Killed while a stream is under way on it (begun, its head sent, not yet done): a loaded
  // machine may otherwise catch only requests that had not begun, which go to slow-a.
  EXPECT_TRUE(eventually(
      [&] {
        auto e = engineEvents("slow-b");
        return countOf(e, "start") > countOf(e, "done") + countOf(e, "cancelled");
      },
      10s));
  std::this_thread::sleep_for(60ms);
  // The agent is frozen meanwhile, so the gateway goes on listing slow-b as it would before an
  // agent notices: requests sent to it find nothing listening.
  agent->signal(SIGSTOP);
  auto pid = static_cast<pid_t>(b.at("pid").as_int64());
  ::kill(-pid, SIGKILL);  // the engine and its chat children: the whole process group
  std::this_thread::sleep_for(1500ms);
  stop = true;
  for (auto& t : clients) {
    t.join();
  }
  agent->signal(SIGCONT);
  EXPECT_EQ(failed, 0) << failures.front();
  EXPECT_GT(complete, 8);
  EXPECT_GE(brokeOff, 1) << "the streams on the killed instance end with an error event";
  auto metrics = viaUnix(gateway->metricsSocket(), {.path = "/metrics"}).body;
  EXPECT_NE(metrics.find("aibox_gateway_upstream_retries_total{model=\"slow:latest\"}"),
            std::string::npos)
      << "requests sent to the dead instance before the agent noticed went to the other";
}

TEST_F(GatewayTest, AnInstanceAnswering503IsRetriedOnAnother) {
  fault("slow-a", {"--chat-chunks", "2", "--chunk-ms", "10", "--busy-chats"});
  fault("slow-b", {"--chat-chunks", "2", "--chunk-ms", "10"});
  auto [secret, id] = key();
  startGateway();
  waitModel(secret, "slow");
  for (int i = 0; i < 6; ++i) {
    auto reply = chat(secret, chatBody("slow", i % 2 == 0));
    EXPECT_EQ(reply.status, 200) << reply.body;
  }
  // Ties go round in turn, so the busy one was asked first at least once, and said 503.
  EXPECT_GE(countOf(engineEvents("slow-a"), "busy"), 1);
  EXPECT_EQ(countOf(engineEvents("slow-b"), "done"), 6) << engineEvents("slow-b");
  auto metrics = viaUnix(gateway->metricsSocket(), {.path = "/metrics"}).body;
  EXPECT_NE(metrics.find("aibox_gateway_upstream_retries_total{model=\"slow:latest\"}"),
            std::string::npos)
      << metrics;
  // With no other instance left, the client gets the instance's own 503.
  auto stopped = viaSocket(*agent, {.method = "POST", .path = "/api/v1/runtimes/slow-b/stop"});
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  HttpReply last;
  EXPECT_TRUE(eventually([&] {
    last = chat(secret, chatBody("slow", false));
    return last.status == 503;
  })) << last.status
      << " " << last.body;
  EXPECT_EQ(errorCode(last), "busy");
}

TEST_F(GatewayTest, PlainHttpWhenAskedAndTheAllowListRefusesOtherNetworks) {
  builtin("tiny-a");
  auto [secret, id] = key();
  std::vector<std::string> auth{"Authorization: Bearer " + secret,
                                "Content-Type: application/json"};
  startGateway({"--gateway.tls=false", "--gateway.allow=10.0.0.0/8"});
  auto refused = viaHttp(gateway->port(), {.path = "/v1/models", .headers = auth});
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(errorCode(refused), "source_not_allowed");
  EXPECT_NE(refused.body.find("gateway.allow"), std::string::npos) << refused.body;

  gateway.reset();
  startGateway({"--gateway.tls=false", "--gateway.allow=10.0.0.0/8, 127.0.0.0/8"});
  HttpReply served;
  EXPECT_TRUE(eventually([&] {
    served = viaHttp(gateway->port(), {.method = "POST",
                                       .path = "/v1/chat/completions",
                                       .body = chatBody("tiny", false),
                                       .headers = auth});
    return served.status == 200;
  })) << served.status
      << " " << served.body;
  EXPECT_NE(viaGateway(*gateway, {.path = "/v1/models", .headers = auth}).error, "")
      << "TLS off means plain HTTP only";
}

TEST_F(GatewayTest, ADisconnectingClientCancelsTheGeneration) {
  fault("slow-a", {"--chat-chunks", "40", "--chunk-ms", "50"});
  auto [secret, id] = key();
  startGateway();
  waitModel(secret, "slow");
  auto reply = chat(secret, chatBody("slow", true),
                    [](const std::string& body) { return body.find("t1 ") != std::string::npos; });
  EXPECT_EQ(reply.status, 200);
  EXPECT_TRUE(
      eventually([&] { return engineEvents("slow-a").find("cancelled") != std::string::npos; }, 3s))
      << engineEvents("slow-a");
  EXPECT_EQ(engineEvents("slow-a").find("done"), std::string::npos);
}

TEST_F(GatewayTest, AKeyRevokedWhileStreamingEndsItsStream) {
  fault("slow-a", {"--chat-chunks", "50", "--chunk-ms", "100"});
  auto [secret, id] = key();
  startGateway();
  waitModel(secret, "slow");
  std::atomic<bool> started{false};
  HttpReply reply;
  std::thread client([&] {
    reply = chat(secret, chatBody("slow", true), [&started](const std::string& body) {
      started = started || body.find("t0 ") != std::string::npos;
      return false;  // read to the end, whatever it is
    });
  });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  ASSERT_EQ(viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/keys/" + id}).status, 200);
  client.join();
  EXPECT_EQ(reply.status, 200);
  EXPECT_NE(reply.body.find("key_revoked"), std::string::npos) << reply.body;
  EXPECT_EQ(reply.body.find("[DONE]"), std::string::npos) << "the stream went on to its end";
  EXPECT_TRUE(eventually([&] {
    return engineEvents("slow-a").find("cancelled") != std::string::npos;
  })) << "the engine was told";
}

TEST_F(GatewayTest, ServesWhileTheAgentIsDownAndMetersEverything) {
  builtin("tiny-a");
  auto [secret, id] = key();
  startGateway();
  waitModel(secret, "tiny");
  agent->signal(SIGTERM);
  ASSERT_EQ(agent->wait(20s), 0);
  agent.reset();
  EXPECT_EQ(chat(secret, chatBody("tiny", true)).status, 200) << "the agent's restart cuts nothing";
  // A gateway started while the agent is down serves from the snapshot it kept on disk.
  gateway.reset();
  startGateway();
  EXPECT_EQ(chat(secret, chatBody("tiny", false)).status, 200) << gateway->log();
  EXPECT_TRUE(eventually([&] {
    return viaUnix(gateway->metricsSocket(), {.path = "/metrics"})
               .body.find("aibox_gateway_usage_batches_spooled 0") == std::string::npos;
  })) << "the usage waits on disk";
  startAgent();
  ASSERT_TRUE(eventually([&] { return usage().at("totals").at("requests").as_int64() == 2; }, 10s))
      << json::serialize(usage()) << gateway->log();
  EXPECT_EQ(chat(secret, chatBody("tiny", false)).status, 200) << "re-adopted, still served";
}

TEST_F(GatewayTest, TheOfficialOpenAIClientWorksThroughIt) {
  builtin("tiny-a");
  instance("embed-a", "embed", "builtin", {{"threads", 1}, {"context", 256}});
  auto [secret, id] = key();
  auto [limited, limitedId] = key({{"requests_per_minute", 1}});
  startGateway();
  waitModel(secret, "tiny");
  waitModel(limited, "tiny");
  waitModel(secret, "embed");
  stdfs::path dir = AIBOX_SOURCE_DIR "/tests/runtime/gateway/client";
  ASSERT_TRUE(stdfs::exists(dir / "node_modules/openai"))
      << "run: npm ci --prefix " << dir.string() << " (scripts/test.sh does)";
  auto result = run({"/usr/bin/env", "NODE_EXTRA_CA_CERTS=" + gateway->certificate().string(),
                     "NODE_OPTIONS=--dns-result-order=ipv4first",
                     "BASE=https://localhost:" + std::to_string(gateway->port()) + "/v1",
                     "KEY=" + secret, "LIMITED_KEY=" + limited, "MODEL=tiny", "EMBED_MODEL=embed",
                     "node", (dir / "client.mjs").string()});
  EXPECT_EQ(result.exitCode, 0) << result.out << result.err << gateway->log();
  EXPECT_NE(result.out.find("\"ok\":true"), std::string::npos) << result.out;
}

}  // namespace
}  // namespace aibox::test
