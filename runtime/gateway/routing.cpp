#include <algorithm>

#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {

std::optional<Instance> Balancer::pick(const std::vector<Instance>& candidates,
                                       const std::vector<std::string>& exclude) {
  std::lock_guard lock(mutex_);
  const Instance* best = nullptr;
  std::int64_t fewest = 0;
  // Ties go round in turn, so equal instances share the load.
  auto start = candidates.empty() ? 0 : turn_++ % candidates.size();
  for (std::size_t n = 0; n < candidates.size(); ++n) {
    const auto& c = candidates[(start + n) % candidates.size()];
    if (std::find(exclude.begin(), exclude.end(), c.id) != exclude.end()) {
      continue;
    }
    auto& count = counts_[c.id];
    if (!count) {
      count = std::make_shared<std::atomic<std::int64_t>>(0);
    }
    if (best == nullptr || *count < fewest) {
      best = &c;
      fewest = *count;
    }
  }
  return best != nullptr ? std::optional(*best) : std::nullopt;
}

Balancer::Lease Balancer::hold(const std::string& instanceId) {
  std::shared_ptr<std::atomic<std::int64_t>> count;
  {
    std::lock_guard lock(mutex_);
    auto& slot = counts_[instanceId];
    if (!slot) {
      slot = std::make_shared<std::atomic<std::int64_t>>(0);
    }
    count = slot;
  }
  ++*count;
  return {count.get(), [count](void*) { --*count; }};
}

std::int64_t Balancer::outstanding(const std::string& instanceId) {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(instanceId);
  return it == counts_.end() ? 0 : it->second->load();
}

}  // namespace aibox::gateway
