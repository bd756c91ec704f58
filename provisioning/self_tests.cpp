// Step 2, self-tests: the pre-delivery checklist. Storage random-read IOPS (fio when
// installed, else an O_DIRECT reader of its own), time sync (chronyc), UPS on line, sensors
// inside their thresholds, GPU health, and a short burn-in of the built-in engine.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <cmath>
#include <random>
#include <sstream>
#include <thread>

#include "common/fs/fs.hpp"
#include "common/json/json.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {
namespace {

namespace stdfs = std::filesystem;

constexpr std::size_t kBlock = 4096;
constexpr std::uint64_t kTestFileBytes = 64ULL << 20;

std::string fixed(double value, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << value;
  return s.str();
}

// 4 KiB random reads from several threads for `seconds`, with O_DIRECT where the file system
// has it (else the page cache answers, and the finding says so).
Finding ownIops(const stdfs::path& dir, double seconds, std::int64_t floor) {
  std::filesystem::create_directories(dir);  // an existing directory keeps its mode
  auto file = dir / ".aibox-provision-iops";
  {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return {"self_tests.iops", false, "cannot write the test file " + file.string()};
    }
    std::string chunk(1 << 20, '\0');
    std::mt19937_64 random(42);
    for (auto& c : chunk) {
      c = static_cast<char>(random());
    }
    for (std::uint64_t done = 0; done < kTestFileBytes; done += chunk.size()) {
      if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
        ::close(fd);
        stdfs::remove(file);
        return {"self_tests.iops", false, "cannot write the test file " + file.string()};
      }
    }
    ::fsync(fd);
    ::close(fd);
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  bool direct = fd >= 0;
  if (!direct) {
    fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  }
  std::atomic<std::uint64_t> reads{0};
  std::atomic<bool> failed{false};
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        void* buffer = nullptr;
        if (::posix_memalign(&buffer, kBlock, kBlock) != 0) {
          failed = true;
          return;
        }
        std::mt19937_64 random(static_cast<std::uint64_t>(t) + 1);
        std::uniform_int_distribution<std::uint64_t> block(0, kTestFileBytes / kBlock - 1);
        std::uint64_t mine = 0;
        while (std::chrono::steady_clock::now() < until) {
          if (::pread(fd, buffer, kBlock, static_cast<off_t>(block(random) * kBlock)) !=
              static_cast<ssize_t>(kBlock)) {
            failed = true;
            break;
          }
          ++mine;
        }
        reads += mine;
        std::free(buffer);
      });
    }
  }
  ::close(fd);
  stdfs::remove(file);
  if (failed) {
    return {"self_tests.iops", false, "a read of the test file in " + dir.string() + " failed"};
  }
  auto iops = static_cast<std::int64_t>(static_cast<double>(reads) / seconds);
  std::string how = direct ? "O_DIRECT, 8 threads" : "page cache: this file system has no O_DIRECT";
  return {"self_tests.iops", iops >= floor,
          "storage: " + std::to_string(iops) + " random 4 KiB reads/s in " + dir.string() + " (" +
              how + "), floor " + std::to_string(floor)};
}

Finding fioIops(const stdfs::path& fio, const stdfs::path& dir, double seconds,
                std::int64_t floor) {
  std::filesystem::create_directories(dir);  // an existing directory keeps its mode
  auto file = dir / ".aibox-provision-fio";
  auto result = runCommand(
      {fio.string(), "--name=aibox-provision", "--filename=" + file.string(), "--rw=randread",
       "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=32", "--numjobs=1", "--size=256M",
       "--time_based", "--runtime=" + fixed(std::max(1.0, seconds), 0), "--output-format=json"});
  std::error_code ec;
  stdfs::remove(file, ec);
  boost::system::error_code jec;
  auto json = boost::json::parse(
      result.output.substr(std::min(result.output.find('{'), result.output.size())), jec);
  const boost::json::value* iops = nullptr;
  if (!jec && json.is_object()) {
    const auto* jobs = json.as_object().if_contains("jobs");
    if (jobs != nullptr && jobs->is_array() && !jobs->as_array().empty()) {
      iops = jobs->as_array()[0].find_pointer("/read/iops", jec);
    }
  }
  if (result.exitCode != 0 || iops == nullptr || !iops->is_number()) {
    return {"self_tests.iops", false, "fio failed in " + dir.string() + ": " + result.output};
  }
  auto value = static_cast<std::int64_t>(iops->to_number<double>());
  return {"self_tests.iops", value >= floor,
          "storage: " + std::to_string(value) + " random 4 KiB reads/s in " + dir.string() +
              " (fio, O_DIRECT, queue depth 32), floor " + std::to_string(floor)};
}

// The value of "Key : value" in a `chronyc tracking` style text, trimmed.
std::optional<std::string> field(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string name = line.substr(0, colon);
    name.erase(name.find_last_not_of(" \t") + 1);
    if (name == key) {
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      value.erase(value.find_last_not_of(" \t\r") + 1);
      return value;
    }
  }
  return std::nullopt;
}

// `chronyc tracking`: "System time : 0.000012 seconds fast of NTP time" and "Leap status".
Finding timeSync(std::int64_t maxUs) {
  auto chronyc = findProgram("chronyc");
  if (!chronyc) {
    return {"self_tests.time_sync", false,
            "time sync: chronyc is not installed (apt install chrony, and set the NTP servers)"};
  }
  auto result = runCommand({chronyc->string(), "tracking"});
  auto system = field(result.output, "System time");
  double seconds = -1;
  if (system) {
    try {
      seconds = std::stod(*system);
    } catch (const std::exception&) {
      seconds = -1;
    }
  }
  if (result.exitCode != 0 || seconds < 0) {
    return {"self_tests.time_sync", false,
            "time sync: chronyc tracking gave no offset (is chronyd running?): " + result.output};
  }
  double us = seconds * 1e6;
  std::string status = field(result.output, "Leap status").value_or("unknown");
  bool synced = status == "Normal";
  return {"self_tests.time_sync", synced && us < static_cast<double>(maxUs),
          "time sync: offset " + fixed(us, 1) + " µs (limit " + std::to_string(maxUs) +
              " µs), leap status " + status};
}

std::vector<Finding> upsOnline(const Inventory& inv) {
  if (inv.upses.empty()) {
    return {{"self_tests.ups", false, "UPS: none found (check hardware.ups and that upsd runs)"}};
  }
  std::vector<Finding> out;
  for (const auto& u : inv.upses) {
    std::string flags;
    for (const auto& f : u.statusFlags) {
      flags += (flags.empty() ? "" : " ") + f;
    }
    bool ok = u.communicating && u.has("OL") && !u.has("OB") && !u.has("LB");
    out.push_back({"self_tests.ups", ok,
                   "UPS " + u.name + ": " +
                       (u.communicating ? "status " + flags : "not communicating: " + u.problem)});
  }
  return out;
}

std::vector<Finding> sensors(const Inventory& inv) {
  std::vector<Finding> out;
  for (const auto& r : inv.readings) {
    if (r.status == hwmon::Status::ok || r.status == hwmon::Status::unavailable) {
      continue;
    }
    out.push_back(
        {"self_tests.sensors", false,
         r.id + " (" + r.label + "): " + std::string(hwmon::statusName(r.status)) +
             (r.value ? " at " + fixed(*r.value, 1) + " " + std::string(hwmon::unitName(r.kind))
                      : std::string())});
  }
  if (out.empty()) {
    out.push_back({"self_tests.sensors", true,
                   std::to_string(inv.readings.size()) + " sensors inside their thresholds"});
  }
  return out;
}

std::vector<Finding> gpuHealth(const Inventory& inv) {
  // Slowdowns the hardware forces (heat, power brake), not the ones a light load explains.
  constexpr std::uint64_t kBad = 0x8 | 0x20 | 0x40 | 0x80;
  std::vector<Finding> out;
  for (const auto& g : inv.gpus) {
    std::vector<std::string> problems;
    if (!g.present) {
      problems.push_back("fell off the bus");
    }
    if (g.lastXid) {
      problems.push_back("XID " + std::to_string(*g.lastXid));
    }
    if (g.eccUncorrected.value_or(0) > 0) {
      problems.push_back(std::to_string(*g.eccUncorrected) + " uncorrected ECC errors");
    }
    if ((g.throttleReasons.value_or(0) & kBad) != 0) {
      std::string names;
      for (const auto& n : hwmon::throttleReasonNames(*g.throttleReasons & kBad)) {
        names += (names.empty() ? "" : ", ") + n;
      }
      problems.push_back("throttled: " + names);
    }
    std::string list;
    for (const auto& p : problems) {
      list += (list.empty() ? "" : "; ") + p;
    }
    out.push_back({"self_tests.gpu_health", problems.empty(),
                   "GPU " + std::to_string(g.index) + " (" + g.name +
                       "): " + (problems.empty() ? "healthy" : list)});
  }
  if (out.empty()) {
    out.push_back({"self_tests.gpu_health", true, "no GPUs to check"});
  }
  return out;
}

Finding burnIn(const Box& box, const SelfTests& t) {
  std::optional<stdfs::path> engine = findProgram("aibox-runtime");
  for (const auto& dir : box.settings.runtimes.enginePath) {
    if (!engine && ::access((dir / "aibox-runtime").c_str(), X_OK) == 0) {
      engine = dir / "aibox-runtime";
    }
  }
  if (!engine) {
    return {"self_tests.burn_in", false,
            "burn-in: aibox-runtime is not installed (package aibox-runtime)"};
  }
  auto result = runCommand({engine->string(), "generate", "--model", t.burnInModel->string(),
                            "--prompt", "The factory burn-in of this box", "--max-tokens",
                            std::to_string(t.burnInTokens), "--temperature", "0"});
  // "generation: 32 tokens, 2021.1 tokens/s"
  auto at = result.output.find("generation: ");
  std::string tokens;
  double speed = -1;
  if (at != std::string::npos) {
    std::istringstream in(result.output.substr(at + 12));
    std::string word;
    std::string rate;
    in >> tokens >> word >> rate;
    try {
      speed = std::stod(rate);
    } catch (const std::exception&) {
      speed = -1;
    }
  }
  if (result.exitCode != 0 || speed < 0) {
    return {"self_tests.burn_in", false,
            "burn-in: aibox-runtime generate failed: " + result.output.substr(0, 400)};
  }
  double floor = t.burnInMinTokensPerSecond.value_or(0);
  return {"self_tests.burn_in", speed >= floor,
          "burn-in: " + tokens + " tokens at " + fixed(speed, 1) + " tokens/s on the CPU (floor " +
              fixed(floor, 1) + ")"};
}

boost::json::object findingsRecord(const StepResult& r, const Manifest& manifest, const Box& box) {
  boost::json::array findings;
  for (const auto& f : r.findings) {
    findings.push_back({{"check", f.check}, {"ok", f.ok}, {"message", f.message}});
  }
  return {{"manifest_digest", manifest.digest},
          {"fingerprint", agent::license::fingerprintJson(box.fingerprint)["components"]},
          {"outcome", outcomeName(r.outcome)},
          {"findings", findings},
          {"at", nowIso()}};
}

}  // namespace

StepResult selfTestsStep(Box& box, const Manifest& manifest, const Progress& progress) {
  StepResult r;
  const SelfTests& t = manifest.selfTests;
  auto record = box.dir / "self_tests.json";
  // Passed before, with this manifest, on this machine: not run again.
  if (auto text = readText(record)) {
    boost::system::error_code ec;
    auto old = boost::json::parse(*text, ec);
    if (!ec && old.is_object() && old.as_object().contains("outcome") &&
        old.as_object().at("manifest_digest") == boost::json::value(manifest.digest) &&
        old.as_object().at("fingerprint") ==
            agent::license::fingerprintJson(box.fingerprint)["components"] &&
        old.as_object().at("outcome") != boost::json::value("FAILED")) {
      for (const auto& f : old.as_object().at("findings").as_array()) {
        const auto& o = f.as_object();
        r.findings.push_back({std::string(o.at("check").as_string()), o.at("ok").as_bool(),
                              std::string(o.at("message").as_string())});
      }
      conclude(r, manifest);
      r.alreadyDone = true;
      r.message = "already done: passed at " + std::string(old.as_object().at("at").as_string());
      return r;
    }
  }
  auto add = [&r](std::vector<Finding> findings) {
    r.findings.insert(r.findings.end(), findings.begin(), findings.end());
  };
  if (t.iopsMin) {
    progress(0.1, "storage random reads");
    auto dir = box.paths.under(t.iopsPath.string());
    auto fio = findProgram("fio");
    add({fio ? fioIops(*fio, dir, t.iopsSeconds, *t.iopsMin)
             : ownIops(dir, t.iopsSeconds, *t.iopsMin)});
  }
  if (t.timeOffsetMaxUs) {
    progress(0.5, "time sync");
    add({timeSync(*t.timeOffsetMaxUs)});
  }
  if (t.upsOnline) {
    add(upsOnline(box.inventory));
  }
  if (t.sensors) {
    add(sensors(box.inventory));
  }
  if (t.gpuHealth) {
    add(gpuHealth(box.inventory));
  }
  if (t.burnInModel) {
    progress(0.7, "burn-in of the built-in engine");
    add({burnIn(box, t)});
  }
  conclude(r, manifest);
  std::size_t failed =
      std::count_if(r.findings.begin(), r.findings.end(), [](const Finding& f) { return !f.ok; });
  r.message = r.findings.empty() ? "no self-tests in the manifest"
              : failed == 0      ? std::to_string(r.findings.size()) + " checks passed"
                            : std::to_string(failed) + " of " + std::to_string(r.findings.size()) +
                                  " checks failed";
  fs::makeDirectories(box.dir, 0750);
  fs::writeFileAtomic(record, json::serialize(findingsRecord(r, manifest, box)) + "\n", 0640);
  return r;
}

}  // namespace aibox::provisioning
