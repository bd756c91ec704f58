// Runtime supervision through the real agent: real `aibox-runtime serve` instances and the
// fault-injection engine (crash at start, crash later, hung health check, slow loads with and
// without progress, SIGTERM ignored, children that try to outlive it), each with and without
// a cgroup v2 subtree. For each: the states, the backoff, the events, and no process left
// behind (checked by scanning /proc). Then kill -9 of the agent while an instance serves, the
// refusals that start nothing, and aiboxctl.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <fstream>
#include <sstream>
#include <thread>

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
  return std::string(v.as_string());
}

// Live processes (not zombies) whose environment marks them as the instance's.
std::vector<pid_t> processesOf(const std::string& instanceId) {
  std::vector<pid_t> out;
  std::string marker = "AIBOX_INSTANCE=" + instanceId;
  for (const auto& entry : stdfs::directory_iterator("/proc")) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::ifstream env(entry.path() / "environ");
    std::string text((std::istreambuf_iterator<char>(env)), std::istreambuf_iterator<char>());
    std::ifstream stat(entry.path() / "stat");
    std::string s((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto close = s.rfind(')');
    bool zombie = close != std::string::npos && close + 2 < s.size() && s[close + 2] == 'Z';
    if (!zombie && text.find(marker + '\0') != std::string::npos) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

bool waitNoProcesses(const std::string& id, std::chrono::milliseconds timeout = 5s) {
  auto deadline = Clock::now() + timeout;
  while (!processesOf(id).empty()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// A cgroup v2 directory of this test's own, when the machine lets us make one.
std::optional<stdfs::path> testCgroup() {
  static int count = 0;
  stdfs::path base = "/sys/fs/cgroup/unified";
  if (!stdfs::exists(base / "cgroup.procs")) {
    base = "/sys/fs/cgroup";
    if (!stdfs::exists(base / "cgroup.kill") && !stdfs::exists(base / "cgroup.procs")) {
      return std::nullopt;
    }
  }
  auto dir = base / ("aibox-test-" + std::to_string(::getpid()) + "-" + std::to_string(++count));
  std::error_code ec;
  stdfs::create_directory(dir, ec);
  if (ec || !stdfs::exists(dir / "cgroup.kill")) {
    return std::nullopt;
  }
  return dir;
}

void removeCgroupTree(const stdfs::path& dir) {
  std::error_code ec;
  if (stdfs::is_directory(dir / "instances", ec)) {
    for (const auto& e : stdfs::directory_iterator(dir / "instances", ec)) {
      ::rmdir(e.path().c_str());
    }
    ::rmdir((dir / "instances").c_str());
  }
  ::rmdir(dir.c_str());
}

enum class Mode { cgroup, processGroup };

class Runtimes : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    box.write(root.path());
    stdfs::create_directories(root.path() / "usb");
    model = (root.path() / "usb/tiny.gguf").string();
    auto made = run({AIBOX_RUNTIME_BIN, "make-test-model", "--arch", "qwen2", "--type", "q8_0",
                     "--layers", "2", "--dim", "64", "--ff", "128", "--context", "512", model});
    ASSERT_EQ(made.exitCode, 0) << made.err;
    writeProfile("fault", R"({"binary": ")" + std::string(FAULT_ENGINE) + R"(",
      "formats": ["gguf"], "args": [["--port", "{port}"], ["--token-file", "{token_file}"],
      "{extra}"], "ready": {"http": "/health", "status": 200}, "stop_grace_s": 1})");
    if (GetParam() == Mode::cgroup) {
      cgroup = testCgroup();
      if (!cgroup) {
        GTEST_SKIP() << "no writable cgroup v2 hierarchy on this machine";
      }
    }
    // Each test its own port range, so tests that run at once do not meet.
    portBase = 30000 + static_cast<int>(::getpid() % 500) * 60;
    start();
    ASSERT_EQ(install(), 200);
    importModel();
  }

  void TearDown() override {
    if (agent) {
      for (const auto& r : list()) {
        viaSocket(*agent,
                  {.method = "POST", .path = "/api/v1/runtimes/" + str(r.at("id")) + "/stop"});
      }
      for (const auto& r : list()) {
        waitState(str(r.at("id")), "stopped", 10s);
      }
      agent.reset();
    }
    if (cgroup) {
      removeCgroupTree(*cgroup);
    }
  }

  void writeProfile(const std::string& name, const std::string& text) {
    stdfs::create_directories(root.path() / "etc/aibox/engines");
    writeFile(root.path() / "etc/aibox/engines" / (name + ".json"), text);
  }

  void start() {
    agent.reset();
    std::vector<std::string> args{
        "--models.import_dirs=" + (root.path() / "usb").string(),
        "--models.reserve_bytes=0",
        std::string("--runtimes.engines_dir=") + AIBOX_SOURCE_DIR + "/packaging/engines",
        "--runtimes.engine_path=" + stdfs::path(AIBOX_RUNTIME_BIN).parent_path().string(),
        "--runtimes.port_range=" + std::to_string(portBase) + "-" + std::to_string(portBase + 59),
        "--runtimes.cgroup=" + (cgroup ? cgroup->string() : std::string("off")),
        "--runtimes.backoff_first_ms=100",
        "--runtimes.probe_interval_ms=100",
        "--runtimes.stall_timeout_s=2",
        "--runtimes.crash_loop_failures=4",
        "--runtimes.unhealthy_probes=3",
        "--hardware.sources=nvml",
        std::string("--hardware.nvml_library=") + FAKE_NVML,
    };
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    writeFile(root.path() / "nvml.json", nvml);
    ::setenv("AIBOX_FAKE_NVML", (root.path() / "nvml.json").c_str(), 1);
    agent = std::make_unique<Agent>(root.path(), AgentOptions{.args = args});
    for (int i = 0; i < 100; ++i) {
      auto fp = parse(viaSocket(*agent, {.path = "/api/v1/license/fingerprint"}).body);
      if (fp.contains("gpus_pending") && !fp.at("gpus_pending").as_bool()) {
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  long install() {
    auto fp = parse(viaSocket(*agent, {.path = "/api/v1/license/fingerprint"}).body);
    std::vector<std::string> parts;
    for (const auto& c : fp.at("components").as_array()) {
      parts.push_back(str(c));
    }
    auto reply = viaSocket(
        *agent, {.method = "PUT",
                 .path = "/api/v1/license",
                 .body = issueLicense(parts, {{"entitlements", {{"max_instances", 3}}}})});
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.status;
  }

  void importModel() {
    auto reply = viaSocket(*agent, {.method = "POST",
                                    .path = "/api/v1/models",
                                    .body = R"({"source":")" + model + R"(","name":"tiny"})"});
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
    FAIL() << "the import did not finish";
  }

  HttpReply create(const std::string& name, const std::string& engine,
                   const boost::json::object& settings = {}) {
    boost::json::object body{{"name", name}, {"model", "tiny"}, {"engine", engine}};
    if (!settings.empty()) {
      body["settings"] = settings;
    }
    return viaSocket(*agent,
                     {.method = "POST", .path = "/api/v1/runtimes", .body = json::serialize(body)});
  }

  std::string createFault(const std::string& name, const std::vector<std::string>& faults) {
    boost::json::array extra(faults.begin(), faults.end());
    auto reply = create(name, "fault", {{"extra_args", extra}});
    EXPECT_EQ(reply.status, 201) << reply.body;
    return str(parse(reply.body).at("id"));
  }

  boost::json::object show(const std::string& id) {
    return parse(viaSocket(*agent, {.path = "/api/v1/runtimes/" + id}).body);
  }
  boost::json::array list() {
    auto o = parse(viaSocket(*agent, {.path = "/api/v1/runtimes"}).body);
    return o.contains("runtimes") ? o.at("runtimes").as_array() : boost::json::array{};
  }
  std::vector<std::string> events(const std::string& id) {
    std::vector<std::string> out;
    auto o = parse(viaSocket(*agent, {.path = "/api/v1/runtimes/" + id + "/events"}).body);
    for (const auto& e : o.at("events").as_array()) {
      out.insert(out.begin(), str(e.at("state")) + ": " + str(e.at("message")));
    }
    return out;
  }
  bool hadEvent(const std::string& id, const std::string& text) {
    for (const auto& e : events(id)) {
      if (e.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  // Waits until the instance is in `state`; returns the instance then (or the last seen).
  boost::json::object waitState(const std::string& id, const std::string& state,
                                std::chrono::milliseconds timeout = 20s) {
    auto deadline = Clock::now() + timeout;
    boost::json::object r;
    while (Clock::now() < deadline) {
      r = show(id);
      if (r.contains("state") && str(r.at("state")) == state) {
        return r;
      }
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "instance " << id << " never became " << state << ": " << json::serialize(r);
    return r;
  }

  std::string token(const std::string& id) {
    std::ifstream in(root.path() / "var/lib/aibox/runtimes" / id / "token");
    std::string t;
    std::getline(in, t);
    return t;
  }

  TempDir root;
  FakeBox box;
  std::string model;
  std::optional<stdfs::path> cgroup;
  int portBase = 0;
  std::string nvml =
      R"({"gpus": [{"name": "NVIDIA L40S", "uuid": "GPU-aaaaaaaa-1111-2222-3333-444444444444",
          "serial": "1", "pci_bus_id": "00000000:18:00.0", "memory_total": 1073741824,
          "memory_used": 1073741000}]})";
  std::vector<std::string> extraArgs;  // for the agent, after the fixture's own
  std::unique_ptr<Agent> agent;
};

TEST_P(Runtimes, BuiltinInstanceServesWithItsOwnTokenAndStopsLeavingNothing) {
  auto reply = create("tiny-cpu", "builtin", {{"threads", 1}, {"context", 256}});
  ASSERT_EQ(reply.status, 201) << reply.body;
  auto id = str(parse(reply.body).at("id"));
  auto r = waitState(id, "ready", 60s);
  int port = static_cast<int>(r.at("placement").at("port").as_int64());
  EXPECT_GE(port, portBase);
  EXPECT_EQ(r.at("placement").at("cpus").as_array().size(), 1u);
  EXPECT_EQ(r.at("served_name"), "tiny");
  auto tokenFile = root.path() / "var/lib/aibox/runtimes" / id / "token";
  struct stat st {};
  ASSERT_EQ(::stat(tokenFile.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(viaHttp(port, {.path = "/v1/models"}).status, 401);
  auto chat = viaHttp(
      port, {.method = "POST",
             .path = "/v1/chat/completions",
             .body = R"({"model":"tiny","max_tokens":4,)"
                     R"("messages":[{"role":"user","content":"hi"}]})",
             .headers = {"Authorization: Bearer " + token(id), "Content-Type: application/json"}});
  EXPECT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(agent->log().find(token(id)), std::string::npos) << "the token was logged";
  // The playground's route: the agent passes the engine's stream through with its token.
  auto relayed = viaSocket(*agent, {.method = "POST",
                                    .path = "/api/v1/runtimes/tiny-cpu/chat",
                                    .body = R"({"model":"ignored","stream":true,"max_tokens":4,)"
                                            R"("messages":[{"role":"user","content":"hi"}]})"});
  EXPECT_EQ(relayed.status, 200) << relayed.body;
  EXPECT_NE(relayed.body.find("data: {"), std::string::npos) << relayed.body;
  EXPECT_NE(relayed.body.find("\"model\":\"tiny\""), std::string::npos) << relayed.body;
  EXPECT_NE(relayed.body.find("data: [DONE]"), std::string::npos) << relayed.body;
  if (cgroup) {
    EXPECT_EQ(str(r.at("cgroup")), (*cgroup / "instances" / id).string());
  }
  auto metrics = viaSocket(*agent, {.path = "/metrics"}).body;
  EXPECT_NE(metrics.find("aibox_runtime_instance_state{instance=\"" + id +
                         "\",name=\"tiny-cpu\",state=\"ready\"} 1"),
            std::string::npos);
  // The engine's own series, scraped and relabelled with the instance, in both places.
  std::string engineSeries;
  for (int i = 0; i < 50 && engineSeries.find("instance=\"" + id + "\"") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(100ms);
    engineSeries = viaSocket(*agent, {.path = "/api/v1/runtimes/" + id + "/metrics"}).body;
  }
  EXPECT_NE(engineSeries.find("aibox_model_state{instance=\"" + id + "\""), std::string::npos)
      << engineSeries;
  EXPECT_NE(viaSocket(*agent, {.path = "/metrics"}).body.find("aibox_model_state{instance=\"" + id),
            std::string::npos);
  auto logs = parse(viaSocket(*agent, {.path = "/api/v1/runtimes/" + id + "/logs"}).body);
  EXPECT_FALSE(logs.at("lines").as_array().empty());
  auto usage = parse(viaSocket(*agent, {.path = "/api/v1/license"}).body).at("usage");
  EXPECT_EQ(usage.at("instances"), 1);

  auto patch = [&](const std::string& body) {
    return viaSocket(*agent, {.method = "PATCH", .path = "/api/v1/runtimes/" + id, .body = body});
  };
  EXPECT_EQ(patch(R"({"settings":{"threads":1,"context":128}})").status, 409) << "while running";
  auto stop = viaSocket(*agent, {.method = "POST", .path = "/api/v1/runtimes/" + id + "/stop"});
  EXPECT_EQ(stop.status, 200) << stop.body;
  waitState(id, "stopped");
  EXPECT_TRUE(waitNoProcesses(id));
  auto patched = patch(R"({"settings":{"threads":1,"context":128}})");
  EXPECT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(parse(patched.body).at("settings").at("context"), 128);
  auto badPatch = patch(R"({"settings":{"context":1}})");
  EXPECT_EQ(badPatch.status, 400);
  EXPECT_NE(badPatch.body.find("settings.context"), std::string::npos) << badPatch.body;
  EXPECT_EQ(show(id).at("settings").at("context"), 128) << "a refused change changes nothing";
  auto notReady = viaSocket(*agent, {.method = "POST",
                                     .path = "/api/v1/runtimes/" + id + "/chat",
                                     .body = R"({"messages":[{"role":"user","content":"hi"}]})"});
  EXPECT_EQ(notReady.status, 409) << notReady.body;
  EXPECT_NE(notReady.body.find("not_ready"), std::string::npos);
  EXPECT_TRUE(hadEvent(id, "starting"));
  EXPECT_TRUE(hadEvent(id, "ready: ready in"));
  EXPECT_TRUE(hadEvent(id, "stopping"));
  if (cgroup) {
    EXPECT_FALSE(stdfs::exists(*cgroup / "instances" / id));
  }
  // A model in use cannot be deleted; the instance can, once stopped.
  EXPECT_EQ(viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/models/tiny"}).status, 409);
  EXPECT_EQ(viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/runtimes/" + id}).status, 200);
  EXPECT_EQ(viaSocket(*agent, {.path = "/api/v1/runtimes/" + id}).status, 404);
}

TEST_P(Runtimes, CrashAtStartBacksOffDoublingThenCrashLoopsUntilStarted) {
  auto begin = Clock::now();
  auto id = createFault("crasher", {"--crash-at-start"});
  auto r = waitState(id, "backoff", 5s);
  EXPECT_TRUE(r.contains("next_try_at"));
  EXPECT_NE(str(r.at("reason")).find("exited with code 3"), std::string::npos);
  r = waitState(id, "crash_loop", 10s);
  auto took = Clock::now() - begin;
  // Four failures with 100, 200 and 400 ms between them: at least 0.7 s, far less than 5.
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(r.at("restarts"), 4);
  EXPECT_NE(str(r.at("reason")).find("4 failures within"), std::string::npos);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(show(id).at("state"), "crash_loop") << "a crash loop stays down";
  EXPECT_TRUE(waitNoProcesses(id));
  auto again = viaSocket(*agent, {.method = "POST", .path = "/api/v1/runtimes/" + id + "/start"});
  EXPECT_EQ(again.status, 200);
  waitState(id, "backoff", 5s);
  EXPECT_TRUE(hadEvent(id, "crash_loop"));
}

TEST_P(Runtimes, ACrashLaterIsDetectedAndRestarted) {
  auto id = createFault("later", {"--crash-after-ms", "600"});
  waitState(id, "ready", 10s);
  auto r = waitState(id, "backoff", 5s);
  EXPECT_NE(str(r.at("reason")).find("SIGABRT"), std::string::npos) << json::serialize(r);
  r = waitState(id, "ready", 10s);
  EXPECT_GE(r.at("restarts").as_int64(), 1);
}

TEST_P(Runtimes, AHungHealthCheckMakesItUnhealthyThenRestarted) {
  auto id = createFault("hung", {"--hang-health-after-ms", "500"});
  waitState(id, "ready", 10s);
  auto r = waitState(id, "backoff", 10s);
  EXPECT_NE(str(r.at("reason")).find("health checks"), std::string::npos) << json::serialize(r);
  EXPECT_TRUE(hadEvent(id, "unhealthy: no healthy answer to 3 health checks"));
}

TEST_P(Runtimes, ASlowLoadWithProgressIsNotAStallOneWithoutIs) {
  auto slow = createFault("slow", {"--load-ms", "3500"});  // longer than the 2 s stall time
  auto r = waitState(slow, "loading", 5s);
  waitState(slow, "ready", 10s);
  EXPECT_EQ(show(slow).at("restarts"), 0);

  auto stuck = createFault("stuck", {"--load-ms", "600000", "--no-progress"});
  r = waitState(stuck, "backoff", 10s);
  EXPECT_NE(str(r.at("reason")).find("no progress for 2 s"), std::string::npos)
      << json::serialize(r);
}

TEST_P(Runtimes, ReadinessOverSdNotifyCountsOnlyTheInstancesOwnMessages) {
  writeProfile("notify", R"({"binary": ")" + std::string(FAULT_ENGINE) + R"(",
    "formats": ["gguf"], "args": [["--port", "{port}"], ["--notify"], "{extra}"],
    "ready": {"notify": true}, "stop_grace_s": 1})");
  start();  // profiles are read at start
  // A load longer than the 2 s stall time, with STATUS= as its progress, and a health check
  // that never answers: ready over the socket, and it stays ready (liveness is the process).
  auto slow = create("notified", "notify",
                     {{"extra_args", {"--load-ms", "3000", "--hang-health-after-ms", "0"}}});
  ASSERT_EQ(slow.status, 201) << slow.body;
  auto id = str(parse(slow.body).at("id"));
  auto r = waitState(id, "loading", 5s);
  EXPECT_NE(str(r.at("reason")).find("loading"), std::string::npos) << json::serialize(r);
  waitState(id, "ready", 10s);
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(show(id).at("state"), "ready");
  EXPECT_EQ(show(id).at("restarts"), 0);
  auto socketFile = root.path() / "run/aibox/instances" / (id + ".notify");
  struct stat st {};
  ASSERT_EQ(::stat(socketFile.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  // READY=1 from a process that is not the instance's is ignored.
  auto waiting = create("waiting", "notify", {{"extra_args", {"--load-ms", "600000"}}});
  auto waitingId = str(parse(waiting.body).at("id"));
  waitState(waitingId, "loading", 5s);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  auto path = (root.path() / "run/aibox/instances" / (waitingId + ".notify")).string();
  std::strncpy(to.sun_path, path.c_str(), sizeof(to.sun_path) - 1);
  std::string ready = "READY=1\n";
  EXPECT_EQ(
      ::sendto(fd, ready.data(), ready.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
      static_cast<ssize_t>(ready.size()))
      << std::strerror(errno);
  ::close(fd);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(show(waitingId).at("state"), "loading");
  EXPECT_NE(agent->log().find("ignored a notification"), std::string::npos);
  viaSocket(*agent, {.method = "POST", .path = "/api/v1/runtimes/" + waitingId + "/stop"});

  // Neither STATUS= nor output: a stall, as with the HTTP check.
  auto silent =
      create("silent", "notify", {{"extra_args", {"--load-ms", "600000", "--no-progress"}}});
  r = waitState(str(parse(silent.body).at("id")), "backoff", 10s);
  EXPECT_NE(str(r.at("reason")).find("no progress for 2 s"), std::string::npos)
      << json::serialize(r);
  waitState(waitingId, "stopped", 5s);
  EXPECT_FALSE(stdfs::exists(root.path() / "run/aibox/instances" / (waitingId + ".notify")));
}

TEST_P(Runtimes, AStopOnAGpuWaitsForItsMemoryAndSaysWhenItIsNotGivenBack) {
  auto gpu = [](std::uint64_t usedMiB) {
    return R"({"gpus": [{"name": "NVIDIA L40S", "uuid": "GPU-bbbbbbbb-1111-2222-3333-444444444444",
               "serial": "1", "pci_bus_id": "00000000:18:00.0", "memory_total": 8589934592,
               "memory_used": )" +
           std::to_string(usedMiB << 20) + "}]}";
  };
  writeProfile("fault-gpu", R"({"binary": ")" + std::string(FAULT_ENGINE) + R"(",
    "formats": ["gguf"], "args": [["--port", "{port}"], "{extra}"], "gpus": true,
    "env": {"CUDA_VISIBLE_DEVICES": "{gpus}"}, "stop_grace_s": 1})");
  extraArgs = {"--runtimes.gpu_release_timeout_s=2"};
  nvml = gpu(100);
  start();
  auto runOnGpu = [this](const std::string& name) {
    auto reply = create(name, "fault-gpu", {{"gpu_count", 1}});
    EXPECT_EQ(reply.status, 201) << reply.body;
    auto id = str(parse(reply.body).at("id"));
    auto r = waitState(id, "ready", 10s);
    EXPECT_EQ(str(r.at("placement").at("gpus").at(0)), "GPU-bbbbbbbb-1111-2222-3333-444444444444");
    return id;
  };
  auto stopAndWait = [this](const std::string& id) {
    viaSocket(*agent, {.method = "POST", .path = "/api/v1/runtimes/" + id + "/stop"});
    waitState(id, "stopped", 5s);
    std::this_thread::sleep_for(3500ms);  // past the 2 s release timeout
  };
  const std::string notReleased = "GPU memory not released 2 s after the stop on GPU 0";

  // Memory given back at the stop: no warning.
  auto freed = runOnGpu("freed");
  stopAndWait(freed);
  EXPECT_FALSE(hadEvent(freed, notReleased));

  // The engine's 6 GiB stay taken after its exit (a stuck driver context): said, with the GPU.
  auto held = runOnGpu("held");
  writeFile(root.path() / "nvml.json", gpu(6144));
  std::this_thread::sleep_for(1500ms);  // the hardware view polls once a second
  stopAndWait(held);
  EXPECT_TRUE(hadEvent(held, notReleased));
  EXPECT_NE(agent->log().find(notReleased), std::string::npos);
}

TEST_P(Runtimes, InstancesRunAsTheRuntimeUserWithTheirTokenAndNoCapabilities) {
  if (::geteuid() != 0 || ::getpwnam("nobody") == nullptr) {
    GTEST_SKIP() << "needs root and the user nobody";
  }
  extraArgs = {"--runtimes.user=nobody"};
  start();
  // The runtime user must reach its instance directory under the box root (on a box the
  // packages set these modes).
  for (const char* dir : {"", "var", "var/lib", "var/lib/aibox", "var/lib/aibox/runtimes"}) {
    stdfs::permissions(root.path() / dir, stdfs::perms::others_exec, stdfs::perm_options::add);
  }
  // The profile passes --token-file: the fault engine exits 5 unless that user can read it.
  auto id = createFault("unprivileged", {});
  auto r = waitState(id, "ready", 10s);
  auto pid = std::to_string(r.at("pid").as_int64());
  std::ifstream status("/proc/" + pid + "/status");
  std::string uid;
  std::string capabilities;
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Uid:")) {
      uid = line;
    } else if (line.starts_with("CapEff:") || line.starts_with("CapAmb:") ||
               line.starts_with("CapPrm:")) {
      capabilities += line + "\n";
    }
  }
  EXPECT_EQ(uid.substr(0, uid.find('\t', 5)),
            "Uid:\t" + std::to_string(::getpwnam("nobody")->pw_uid));
  EXPECT_EQ(capabilities,
            "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapAmb:\t0000000000000000\n");
  // The agent keeps its own copy of the token, so it can call the instance after a restart.
  auto agentCopy = root.path() / "var/lib/aibox/runtimes" / (id + ".token");
  struct stat st {};
  ASSERT_EQ(::stat(agentCopy.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_mode & 0777, 0600);
  viaSocket(*agent, {.method = "POST", .path = "/api/v1/runtimes/" + id + "/stop"});
  waitState(id, "stopped", 5s);
  EXPECT_TRUE(waitNoProcesses(id));
  EXPECT_EQ(viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/runtimes/" + id}).status, 200);
  EXPECT_FALSE(stdfs::exists(agentCopy));
}

TEST_P(Runtimes, IgnoringSigtermIsKilledAfterTheGraceAndChildrenDoNotSurvive) {
  auto id = createFault("stubborn", {"--ignore-sigterm", "--fork-children", "2"});
  waitState(id, "ready", 10s);
  EXPECT_EQ(processesOf(id).size(), 3u);
  auto begin = Clock::now();
  viaSocket(*agent, {.method = "POST", .path = "/api/v1/runtimes/" + id + "/stop"});
  waitState(id, "stopping", 2s);
  waitState(id, "stopped", 10s);
  EXPECT_GE(Clock::now() - begin, 900ms) << "killed before the profile's 1 s grace";
  EXPECT_TRUE(waitNoProcesses(id)) << "children outlived the instance";

  // Children left by a crash are killed too: after a restart only the new ones run.
  auto crash = createFault("orphans", {"--fork-children", "2", "--crash-after-ms", "700"});
  waitState(crash, "backoff", 10s);
  waitState(crash, "ready", 10s);
  EXPECT_EQ(processesOf(crash).size(), 3u);
}

TEST_P(Runtimes, RefusalsSayWhyAndStartNothing) {
  // A port another process holds.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // earlier tests' TIME_WAIT
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<unsigned short>(portBase + 7));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ::listen(fd, 1);
  auto clash = create("clash", "fault", {{"port", portBase + 7}});
  EXPECT_EQ(clash.status, 409);
  EXPECT_NE(clash.body.find("in use by another process"), std::string::npos) << clash.body;
  ::close(fd);

  writeProfile("ghost", R"({"binary": "/nonexistent/ghost-engine", "install": "apt install ghost",
    "formats": ["gguf"], "args": []})");
  start();
  auto missing = create("ghost", "ghost");
  EXPECT_EQ(missing.status, 409);
  EXPECT_NE(missing.body.find("not installed: apt install ghost"), std::string::npos)
      << missing.body;

  auto engines = parse(viaSocket(*agent, {.path = "/api/v1/engines"}).body);
  std::map<std::string, bool> installed;
  for (const auto& e : engines.at("engines").as_array()) {
    installed[str(e.at("name"))] = e.at("installed").as_bool();
  }
  EXPECT_TRUE(installed.at("builtin"));
  EXPECT_TRUE(installed.at("fault"));
  EXPECT_FALSE(installed.at("ghost"));
  EXPECT_TRUE(installed.contains("vllm"));
  EXPECT_TRUE(installed.contains("sglang"));
  EXPECT_TRUE(installed.contains("llama.cpp"));

  // A GPU engine on a GPU with too little free memory: the numbers in the message.
  writeProfile("fault-gpu", R"({"binary": ")" + std::string(FAULT_ENGINE) + R"(",
      "formats": ["gguf"], "args": [["--port", "{port}"]], "gpus": true})");
  start();
  auto big = create("big", "fault-gpu");
  EXPECT_EQ(big.status, 409);
  EXPECT_NE(big.body.find("on GPU 0 and"), std::string::npos) << big.body;
  EXPECT_NE(big.body.find("GiB is free there"), std::string::npos) << big.body;
  auto noSuchGpu = create("nogpu", "fault-gpu", {{"gpus", boost::json::array{"7"}}});
  EXPECT_EQ(noSuchGpu.status, 409);
  EXPECT_NE(noSuchGpu.body.find("GPU 7 is not on this box"), std::string::npos);
  auto tooMany = create("many", "fault", {{"threads", 1000}});
  EXPECT_EQ(tooMany.status, 409);
  EXPECT_NE(tooMany.body.find("threads 1000 exceeds the"), std::string::npos) << tooMany.body;

  auto bad = create("bad", "fault", {{"threads", 0}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("settings.threads"), std::string::npos) << bad.body;
  EXPECT_EQ(create("BAD NAME", "fault").status, 400);
  EXPECT_EQ(create("x", "no-such-engine").status, 400);

  // A corrupt model.
  auto blobs = root.path() / "var/lib/aibox/models/blobs";
  for (const auto& b : stdfs::directory_iterator(blobs)) {
    std::fstream f(b.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  auto verify = viaSocket(*agent, {.method = "POST", .path = "/api/v1/models/tiny/verify"});
  ASSERT_EQ(verify.status, 202) << verify.body;
  for (int i = 0;
       i < 200 &&
       str(parse(viaSocket(*agent, {.path = "/api/v1/models/tiny"}).body).at("state")) != "corrupt";
       ++i) {
    std::this_thread::sleep_for(20ms);
  }
  auto corrupt = create("corrupt", "fault");
  EXPECT_EQ(corrupt.status, 409);
  EXPECT_NE(corrupt.body.find("is corrupt"), std::string::npos) << corrupt.body;

  EXPECT_TRUE(list().empty()) << "a refused create left an instance";
}

TEST_P(Runtimes, KillingTheAgentDoesNotTouchServingInstancesWhichAreReadopted) {
  auto reply = create("steady", "builtin", {{"threads", 1}, {"context", 256}});
  ASSERT_EQ(reply.status, 201) << reply.body;
  auto id = str(parse(reply.body).at("id"));
  auto r = waitState(id, "ready", 60s);
  int port = static_cast<int>(r.at("placement").at("port").as_int64());
  auto pid = r.at("pid").as_int64();
  std::atomic<bool> done{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::string auth = "Authorization: Bearer " + token(id);
  std::thread client([&] {
    while (!done) {
      auto c = viaHttp(port, {.method = "POST",
                              .path = "/v1/completions",
                              .body = R"({"model":"tiny","prompt":"a","max_tokens":2})",
                              .headers = {auth, "Content-Type: application/json"}});
      (c.status == 200 ? ok : failed)++;
    }
  });
  std::this_thread::sleep_for(300ms);
  agent->signal(SIGKILL);
  agent->wait(5s);
  // As an agent of before the agent's own token copy left it: the token only in the engine's file.
  stdfs::remove(root.path() / "var/lib/aibox/runtimes" / (id + ".token"));
  std::this_thread::sleep_for(500ms);
  try {
    start();
  } catch (const std::exception& e) {
    done = true;
    client.join();
    FAIL() << "the agent did not start again: " << e.what();
  }
  r = waitState(id, "ready", 10s);
  // The agent still calls it with the token the engine knows.
  auto relayed = viaSocket(
      *agent, {.method = "POST",
               .path = "/api/v1/runtimes/" + id + "/chat",
               .body = R"({"max_tokens":2,"messages":[{"role":"user","content":"hi"}]})"});
  EXPECT_EQ(relayed.status, 200) << relayed.body;
  done = true;
  client.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 3);
  EXPECT_EQ(r.at("pid").as_int64(), pid) << "the instance was restarted, not re-adopted";
  EXPECT_TRUE(hadEvent(id, "re-adopted pid " + std::to_string(pid)));

  // A process the database does not know is stopped at start.
  pid_t stray = ::fork();
  if (stray == 0) {
    ::setsid();
    ::execl("/bin/sleep", "sleep", "600", nullptr);
    ::_exit(127);
  }
  std::this_thread::sleep_for(100ms);
  std::ifstream statFile("/proc/" + std::to_string(stray) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(statFile)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  for (int i = 3; i <= 22; ++i) {
    fields >> f;
  }
  writeFile(root.path() / "run/aibox/instances/0123456789ab.pid",
            std::to_string(stray) + " " + f + "\n");
  start();
  int status = 0;
  auto deadline = Clock::now() + 5s;
  pid_t ended = 0;
  while (ended == 0 && Clock::now() < deadline) {
    ended = ::waitpid(stray, &status, WNOHANG);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(ended, stray) << "the stray process was not stopped";
  EXPECT_TRUE(WIFSIGNALED(status));
}

TEST_P(Runtimes, TheCliRunsWatchesAndListsWithTheAgentDown) {
  auto ctl = [this](std::vector<std::string> args) {
    args.insert(args.begin(), {AIBOX_CTL_BIN, "--root", root.path().string()});
    return run(args);
  };
  auto created = ctl({"runtimes", "create", "cli", "--model", "tiny", "--engine", "fault", "--arg",
                      "--load-ms", "--arg", "200"});
  ASSERT_EQ(created.exitCode, 0) << created.err << created.out;
  auto id = str(list().front().at("id"));
  waitState(id, "ready", 10s);
  auto ls = ctl({"runtimes", "ls"});
  EXPECT_NE(ls.out.find("cli"), std::string::npos);
  EXPECT_NE(ls.out.find("ready"), std::string::npos) << ls.out;
  auto shown = ctl({"--json", "runtimes", "show", "cli"});
  EXPECT_EQ(parse(shown.out).at("state"), "ready");
  auto engines = ctl({"engines"});
  EXPECT_NE(engines.out.find("builtin"), std::string::npos);
  EXPECT_NE(ctl({"runtimes", "logs", "cli"}).out.find("fault engine pid"), std::string::npos);
  EXPECT_EQ(ctl({"runtimes", "create", "x"}).exitCode, 2);

  agent->signal(SIGKILL);
  agent->wait(5s);
  auto direct = ctl({"--json", "runtimes", "ls", "--direct"});
  ASSERT_EQ(direct.exitCode, 0) << direct.err;
  auto d = parse(direct.out);
  EXPECT_EQ(d.at("runtimes").as_array().front().at("state"), "ready");
  EXPECT_GT(d.at("runtimes").as_array().front().at("pid").as_int64(), 0);
  start();
  waitState(id, "ready", 10s);
  EXPECT_EQ(ctl({"runtimes", "stop", "cli"}).exitCode, 0);
  waitState(id, "stopped", 10s);
  EXPECT_EQ(ctl({"runtimes", "rm", "cli"}).exitCode, 0);
}

INSTANTIATE_TEST_SUITE_P(Supervision, Runtimes, ::testing::Values(Mode::cgroup, Mode::processGroup),
                         [](const ::testing::TestParamInfo<Mode>& param) {
                           return param.param == Mode::cgroup ? "Cgroup" : "ProcessGroup";
                         });

}  // namespace
}  // namespace aibox::test
