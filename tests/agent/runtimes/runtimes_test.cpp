// The supervision library's pieces: engine profiles (the shipped files too), instance
// settings, placement against a hardware view, and processes (spawn, pidfd, kill everything).
#include "agent/runtimes/runtimes.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <thread>

#include "agent/runtimes/placement.hpp"
#include "agent/runtimes/process.hpp"
#include "tests/support/files.hpp"

namespace aibox::agent::runtimes {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

TEST(Profiles, TheShippedOnesParseAndMissingBinariesAreSeen) {
  Settings s;
  s.shippedProfiles = stdfs::path(AIBOX_SOURCE_DIR) / "packaging/engines";
  s.overrideProfiles = "/nonexistent";
  s.enginePath = {"/nonexistent"};
  std::vector<std::string> problems;
  auto profiles = loadProfiles(s, problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
  ASSERT_EQ(profiles.size(), 4u);
  for (const char* name : {"builtin", "llama.cpp", "vllm", "sglang"}) {
    ASSERT_TRUE(profiles.contains(name)) << name;
    EXPECT_FALSE(profiles.at(name).resolved) << name;
    EXPECT_FALSE(profiles.at(name).install.empty()) << name;
  }
  EXPECT_FALSE(profiles.at("builtin").gpus);
  EXPECT_TRUE(profiles.at("vllm").gpus);
  EXPECT_EQ(profiles.at("vllm").stopSignal, SIGINT);
  EXPECT_EQ(profiles.at("vllm").env.at("CUDA_VISIBLE_DEVICES"), "{gpus}");
  EXPECT_EQ(profiles.at("builtin").formats, std::vector<std::string>{"gguf"});
}

TEST(Profiles, AnOverrideReplacesAShippedOneAndABadFileIsLeftOut) {
  test::TempDir dir;
  stdfs::create_directories(dir.path() / "shipped");
  stdfs::create_directories(dir.path() / "etc");
  test::writeFile(dir.path() / "shipped/a.json",
                  R"({"binary": "sh", "formats": ["gguf"], "args": ["-c"]})");
  test::writeFile(dir.path() / "etc/a.json",
                  R"({"binary": "true", "formats": ["safetensors"], "args": [],
                      "stop_signal": "SIGINT", "stop_grace_s": 5})");
  test::writeFile(dir.path() / "etc/b.json", R"({"binary": "x", "formats": ["onnx"], "args": []})");
  Settings s;
  s.shippedProfiles = dir.path() / "shipped";
  s.overrideProfiles = dir.path() / "etc";
  s.enginePath = {"/bin", "/usr/bin"};
  std::vector<std::string> problems;
  auto profiles = loadProfiles(s, problems);
  ASSERT_EQ(profiles.size(), 1u);
  EXPECT_EQ(profiles.at("a").formats, std::vector<std::string>{"safetensors"});
  EXPECT_EQ(profiles.at("a").stopGrace, 5s);
  EXPECT_TRUE(profiles.at("a").resolved);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("'onnx' is not gguf or safetensors"), std::string::npos);
}

TEST(Profiles, EveryBadFieldIsNamed) {
  for (auto [text, problem] : std::vector<std::pair<std::string, std::string>>{
           {"[]", "not a JSON object"},
           {R"({"formats": ["gguf"], "args": []})", "'binary'"},
           {R"({"binary": "x", "args": []})", "'formats'"},
           {R"({"binary": "x", "formats": ["gguf"]})", "'args'"},
           {R"({"binary": "x", "formats": ["gguf"], "args": [1]})", "'args'"},
           {R"({"binary": "x", "formats": ["gguf"], "args": [], "stop_signal": "SIGSTOP"})",
            "'stop_signal'"},
           {R"({"binary": "x", "formats": ["gguf"], "args": [], "ready": {"http": "health"}})",
            "'ready.http'"},
           {R"({"binary": "x", "formats": ["gguf"], "args": [], "ready": {"notify": "yes"}})",
            "'ready.notify'"},
           {R"({"binary": "x", "formats": ["gguf"], "args": [], "env": {"A": 1}})", "'env'"}}) {
    auto parsed = parseProfile(text, "p");
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << text;
    EXPECT_NE(std::get<std::string>(parsed).find(problem), std::string::npos)
        << text << ": " << std::get<std::string>(parsed);
  }
}

TEST(Profiles, NotifyReadinessKeepsAnHttpCheckOnlyWhenOneIsGiven) {
  auto bare = std::get<Profile>(parseProfile(
      R"({"binary": "x", "formats": ["gguf"], "args": [], "ready": {"notify": true}})", "p"));
  EXPECT_TRUE(bare.readyNotify);
  EXPECT_EQ(bare.healthPath, "");
  auto both = std::get<Profile>(parseProfile(
      R"({"binary": "x", "formats": ["gguf"], "args": [], "ready": {"notify": true, "http": "/live"}})",
      "p"));
  EXPECT_TRUE(both.readyNotify);
  EXPECT_EQ(both.healthPath, "/live");
}

TEST(InstanceSettings, ParsedCheckedAndWrittenBack) {
  auto parsed = parseSettings(boost::json::parse(R"({"threads": 4, "context": 2048,
      "gpus": ["0", "GPU-x"], "cpu_limit": 1.5, "extra_args": ["--flag"]})")
                                  .as_object());
  ASSERT_TRUE(std::holds_alternative<InstanceSettings>(parsed));
  const auto& s = std::get<InstanceSettings>(parsed);
  EXPECT_EQ(s.threads, 4);
  EXPECT_EQ(s.cpuLimit, 1.5);
  EXPECT_EQ(s.gpus.size(), 2u);
  auto again = parseSettings(settingsJson(s));
  ASSERT_TRUE(std::holds_alternative<InstanceSettings>(again));
  EXPECT_EQ(std::get<InstanceSettings>(again).extraArgs, s.extraArgs);
  for (auto [text, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"threads": 0})", "threads"},
           {R"({"port": 80})", "port"},
           {R"({"cpu_limit": "two"})", "cpu_limit"},
           {R"({"memory_limit_mib": 1})", "memory_limit_mib"},
           {R"({"gpus": "0"})", "gpus"},
           {R"({"thread": 2})", "thread"}}) {
    auto bad = parseSettings(boost::json::parse(text).as_object());
    ASSERT_TRUE(std::holds_alternative<json::Problem>(bad)) << text;
    EXPECT_EQ(std::get<json::Problem>(bad).field, field) << text;
  }
}

hardware::State::Reports gpuBox(std::uint64_t total, std::uint64_t used) {
  auto report = std::make_shared<hwmon::Report>();
  for (int i = 0; i < 2; ++i) {
    hwmon::Gpu gpu;
    gpu.index = i;
    gpu.uuid = "GPU-" + std::to_string(i);
    gpu.memoryTotalBytes = total;
    gpu.memoryUsedBytes = used;
    report->gpus.push_back(gpu);
  }
  return {{"nvml", report}};
}

TEST(Placement, GpusByFreeMemoryWithTheNumbersWhenTheyDoNotFit) {
  Settings s;
  s.portFirst = 41000;
  s.portLast = 41010;
  InstanceSettings settings;
  settings.gpuCount = 2;
  placement::Taken taken;
  taken.gpuBytes["GPU-0"] = 10ULL << 30;
  auto placed = placement::place({settings, true, 20ULL << 30}, taken, s, gpuBox(24ULL << 30, 0));
  ASSERT_TRUE(std::holds_alternative<Placement>(placed)) << std::get<std::string>(placed);
  const auto& p = std::get<Placement>(placed);
  EXPECT_EQ(p.gpus, (std::vector<std::string>{"GPU-1", "GPU-0"}));
  EXPECT_GE(p.port, 41000);

  auto tooBig = placement::place({settings, true, 40ULL << 30}, taken, s, gpuBox(24ULL << 30, 0));
  ASSERT_TRUE(std::holds_alternative<std::string>(tooBig));
  EXPECT_EQ(std::get<std::string>(tooBig),
            "the model needs 20.0 GiB on GPU 0 and 14.0 GiB is free there");
  auto noGpus = placement::place({settings, true, 1}, {}, s, {});
  EXPECT_NE(std::get<std::string>(noGpus).find("NVML reports none"), std::string::npos);
  settings.gpuCount = 3;
  EXPECT_EQ(std::get<std::string>(placement::place({settings, true, 1}, {}, s, gpuBox(1, 0))),
            "3 GPUs asked for, this box has 2");
}

TEST(Placement, CpuInstancesGetTheLeastUsedCoresAndTakenPortsAreSkipped) {
  Settings s;
  s.portFirst = 41020;
  s.portLast = 41021;
  InstanceSettings settings;
  settings.threads = 1;
  placement::Taken taken;
  taken.ports = {41020};
  taken.cpuUse[0] = 2;
  auto placed = placement::place({settings, false, 1 << 20}, taken, s, {});
  ASSERT_TRUE(std::holds_alternative<Placement>(placed)) << std::get<std::string>(placed);
  EXPECT_EQ(std::get<Placement>(placed).port, 41021);
  if (::sysconf(_SC_NPROCESSORS_ONLN) > 1) {
    EXPECT_EQ(std::get<Placement>(placed).cpus, std::vector<int>{1});
  }
  taken.ports = {41020, 41021};
  EXPECT_NE(std::get<std::string>(placement::place({settings, false, 1}, taken, s, {}))
                .find("no free port in runtimes.port_range 41020-41021"),
            std::string::npos);
  settings.memoryLimitMiB = 64;
  EXPECT_NE(std::get<std::string>(placement::place({settings, false, 100 << 20}, {}, s, {}))
                .find("memory_limit_mib 64 MiB is below the model's estimate of 100 MiB"),
            std::string::npos);
}

TEST(Placement, TheEstimateScalesTheKvCacheWithContextAndParallelism) {
  models::Metadata m;
  m.weightsBytes = 1000;
  m.kvCacheBytes = 4096;
  m.contextLength = 4096;
  InstanceSettings s;
  s.context = 1024;
  s.parallel = 2;
  EXPECT_EQ(placement::memoryEstimate(m, s), 1000u + 2048u);
  s.kvMemoryMiB = 1;
  EXPECT_EQ(placement::memoryEstimate(m, s), 1000u + (1u << 20));
}

TEST(Process, SpawnedInItsOwnSessionWithAPidfdAndKilledWithEverythingItStarted) {
  test::TempDir dir;
  process::Spec spec;
  spec.instanceId = "unit-" + std::to_string(::getpid());
  spec.binary = "/bin/sh";
  // A child in a new session, out of the process group: only the marker finds it.
  spec.args = {"-c", "setsid sleep 600 & echo started; exec sleep 600"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.logFile = dir.path() / "out.log";
  spec.workDir = dir.path();
  auto started = process::spawn(spec);
  EXPECT_GT(started.pidfd, 0);
  EXPECT_EQ(::getpgid(started.pid), started.pid);
  EXPECT_EQ(started.startTime, processStartTime(started.pid));
  for (int i = 0;
       i < 100 && process::leftovers(std::nullopt, started.pid, spec.instanceId).size() < 2; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(process::leftovers(std::nullopt, started.pid, spec.instanceId).size(), 2u);
  int adopted = process::adopt(started.pid, started.startTime);
  EXPECT_GE(adopted, 0);
  ::close(adopted);
  EXPECT_LT(process::adopt(started.pid, started.startTime + 1), 0) << "another start time";
  EXPECT_GE(process::killAll(std::nullopt, started.pid, spec.instanceId), 1);  // the setsid one
  for (int i = 0;
       i < 100 && !process::leftovers(std::nullopt, started.pid, spec.instanceId).empty(); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(process::leftovers(std::nullopt, started.pid, spec.instanceId).empty());
  EXPECT_EQ(process::reap(started.pidfd), "killed by SIGKILL");
  ::close(started.pidfd);
  EXPECT_NE(test::readFile(spec.logFile).find("started"), std::string::npos);
}

TEST(Process, AnExecFailureSaysWhat) {
  test::TempDir dir;
  process::Spec spec;
  spec.instanceId = "unit-missing";
  spec.binary = dir.path() / "missing";
  spec.logFile = dir.path() / "out.log";
  spec.workDir = dir.path();
  try {
    process::spawn(spec);
    FAIL() << "spawned a missing binary";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("executing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
}

TEST(Process, APortIsFreeUntilSomethingListens) {
  EXPECT_TRUE(process::portFree(41099));
}

}  // namespace
}  // namespace aibox::agent::runtimes
