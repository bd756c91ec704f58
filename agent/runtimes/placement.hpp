#pragma once
// Where an instance runs: its port, its GPUs (free memory against the model's estimate) or its
// cores. Internal to agent/runtimes.

#include <map>
#include <set>
#include <string>
#include <variant>

#include "agent/runtimes/runtimes.hpp"

namespace aibox::agent::runtimes::placement {

// What the other instances hold.
struct Taken {
  std::set<int> ports;
  std::map<std::string, std::uint64_t> gpuBytes;  // estimates placed on each GPU (UUID)
  std::map<int, int> cpuUse;                      // instances per core
  std::uint64_t cpuBytes = 0;                     // estimates of CPU instances
};

struct Request {
  const InstanceSettings& settings;
  bool gpus = false;  // the engine runs on GPUs
  std::uint64_t memoryEstimate = 0;
};

// The model's memory: weights and the KV cache for the instance's context and parallelism.
std::uint64_t memoryEstimate(const models::Metadata& model, const InstanceSettings& settings);

// The placement, or why the instance does not fit (with the numbers).
std::variant<Placement, std::string> place(const Request& request, const Taken& taken,
                                           const Settings& settings,
                                           const hardware::State::Reports& hardware);

}  // namespace aibox::agent::runtimes::placement
