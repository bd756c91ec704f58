#include "agent/runtimes/placement.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "agent/runtimes/process.hpp"

namespace aibox::agent::runtimes::placement {
namespace {

std::string gib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f GiB", static_cast<double>(bytes) / (1ULL << 30));
  return text;
}

std::uint64_t memAvailable() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") {
      return kib << 10;
    }
  }
  return 0;
}

std::variant<int, std::string> choosePort(const InstanceSettings& s, const Taken& taken,
                                          const Settings& settings) {
  if (s.port) {
    if (taken.ports.contains(*s.port)) {
      return "port " + std::to_string(*s.port) + " is taken by another instance";
    }
    if (!process::portFree(*s.port)) {
      return "port " + std::to_string(*s.port) +
             " is in use by another process on this box (see ss -ltnp)";
    }
    return *s.port;
  }
  for (int port = settings.portFirst; port <= settings.portLast; ++port) {
    if (!taken.ports.contains(port) && process::portFree(port)) {
      return port;
    }
  }
  return "no free port in runtimes.port_range " + std::to_string(settings.portFirst) + "-" +
         std::to_string(settings.portLast) + ": widen it or stop an instance";
}

struct GpuFree {
  const hwmon::Gpu* gpu;
  std::uint64_t free;
};

std::variant<std::vector<GpuFree>, std::string> chooseGpus(const Request& r, const Taken& taken,
                                                           const hardware::State::Reports& hw) {
  std::vector<GpuFree> all;
  if (auto nvml = hw.find("nvml"); nvml != hw.end()) {
    for (const auto& gpu : nvml->second->gpus) {
      if (!gpu.present) {
        continue;
      }
      std::uint64_t total = gpu.memoryTotalBytes.value_or(0);
      std::uint64_t used = gpu.memoryUsedBytes.value_or(0);
      auto reserved = taken.gpuBytes.contains(gpu.uuid) ? taken.gpuBytes.at(gpu.uuid) : 0;
      std::uint64_t free = total > used + reserved ? total - used - reserved : 0;
      all.push_back({&gpu, free});
    }
  }
  if (all.empty()) {
    return std::string("this engine runs on GPUs and NVML reports none on this box");
  }
  std::vector<GpuFree> chosen;
  if (!r.settings.gpus.empty()) {
    for (const auto& wanted : r.settings.gpus) {
      auto it = std::find_if(all.begin(), all.end(), [&wanted](const GpuFree& g) {
        return g.gpu->uuid == wanted || std::to_string(g.gpu->index) == wanted;
      });
      if (it == all.end()) {
        return "GPU " + wanted + " is not on this box (it has " + std::to_string(all.size()) +
               ": see aiboxctl hw gpus)";
      }
      chosen.push_back(*it);
    }
  } else {
    auto count = static_cast<std::size_t>(r.settings.gpuCount.value_or(1));
    if (count > all.size()) {
      return std::to_string(count) + " GPUs asked for, this box has " + std::to_string(all.size());
    }
    std::sort(all.begin(), all.end(),
              [](const GpuFree& a, const GpuFree& b) { return a.free > b.free; });
    chosen.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(count));
  }
  std::uint64_t each = chosen.empty() ? 0 : r.memoryEstimate / chosen.size();
  for (const auto& g : chosen) {
    if (g.free < each) {
      return "the model needs " + gib(each) + " on GPU " + std::to_string(g.gpu->index) + " and " +
             gib(g.free) + " is free there";
    }
  }
  return chosen;
}

}  // namespace

std::uint64_t memoryEstimate(const models::Metadata& model, const InstanceSettings& s) {
  if (s.kvMemoryMiB) {
    return model.weightsBytes + (static_cast<std::uint64_t>(*s.kvMemoryMiB) << 20);
  }
  std::uint64_t kv = model.kvCacheBytes;
  if (kv > 0 && model.contextLength > 0) {
    // kv_cache_bytes is for one sequence of the model's full context.
    double tokens = static_cast<double>(s.context.value_or(
                        static_cast<int>(std::min<std::uint32_t>(model.contextLength, 4096)))) *
                    s.parallel.value_or(1);
    kv = static_cast<std::uint64_t>(static_cast<double>(model.kvCacheBytes) * tokens /
                                    model.contextLength);
  }
  return model.weightsBytes + kv;
}

std::variant<Placement, std::string> place(const Request& r, const Taken& taken,
                                           const Settings& settings,
                                           const hardware::State::Reports& hardware) {
  Placement p;
  p.memoryEstimate = r.memoryEstimate;
  if (r.settings.memoryLimitMiB &&
      (static_cast<std::uint64_t>(*r.settings.memoryLimitMiB) << 20) < r.memoryEstimate &&
      !r.gpus) {
    return "memory_limit_mib " + std::to_string(*r.settings.memoryLimitMiB) +
           " MiB is below the model's estimate of " +
           std::to_string((r.memoryEstimate + (1 << 20) - 1) >> 20) + " MiB";
  }
  if (r.gpus) {
    auto gpus = chooseGpus(r, taken, hardware);
    if (auto* problem = std::get_if<std::string>(&gpus)) {
      return *problem;
    }
    for (const auto& g : std::get<0>(gpus)) {
      p.gpus.push_back(g.gpu->uuid);
      p.gpuIndexes.push_back(g.gpu->index);
    }
  } else {
    auto available = memAvailable();
    if (available > 0 && taken.cpuBytes + r.memoryEstimate > available) {
      return "the model needs " + gib(r.memoryEstimate) + " of memory and " +
             gib(available > taken.cpuBytes ? available - taken.cpuBytes : 0) +
             " is available beside the other instances";
    }
    int cores = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
    int threads = r.settings.threads.value_or(cores);
    if (threads > cores) {
      return "threads " + std::to_string(threads) + " exceeds the " + std::to_string(cores) +
             " cores of this box";
    }
    std::vector<int> order(static_cast<std::size_t>(cores));
    for (int c = 0; c < cores; ++c) {
      order[static_cast<std::size_t>(c)] = c;
    }
    auto use = [&taken](int c) { return taken.cpuUse.contains(c) ? taken.cpuUse.at(c) : 0; };
    std::stable_sort(order.begin(), order.end(), [&use](int a, int b) { return use(a) < use(b); });
    p.cpus.assign(order.begin(), order.begin() + threads);
    std::sort(p.cpus.begin(), p.cpus.end());
  }
  auto port = choosePort(r.settings, taken, settings);
  if (auto* problem = std::get_if<std::string>(&port)) {
    return *problem;
  }
  p.port = std::get<int>(port);
  return p;
}

}  // namespace aibox::agent::runtimes::placement
