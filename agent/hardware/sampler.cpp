#include <stop_token>

#include "agent/hardware/hardware.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::hardware {
namespace {

// One source's loop: poll, evaluate, deliver, sleep until the next tick or a stop request.
void pollLoop(const std::stop_token& stop, hwmon::Source& source,
              std::chrono::milliseconds interval, hwmon::Monitor monitor,
              const Sampler::Deliver& deliver) {
  std::mutex mutex;
  std::condition_variable_any wake;
  auto next = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    auto report = std::make_shared<hwmon::Report>();
    try {
      *report = source.poll();
    } catch (const std::exception& e) {
      // A broken source must not stop the others, nor this thread.
      report->source = std::string(source.name());
      report->time = std::chrono::system_clock::now();
      report->problem = std::string("reading failed: ") + e.what();
    }
    monitor.evaluate(*report);
    deliver(std::move(report));
    next += interval;
    auto now = std::chrono::steady_clock::now();
    if (next < now) {
      next = now;  // a slow poll: skip the missed ticks instead of bursting
    }
    std::unique_lock lock(mutex);
    wake.wait_until(lock, stop, next, [] { return false; });
  }
}

}  // namespace

Sampler::Sampler(std::vector<PolledSource> sources, std::vector<hwmon::ThresholdOverride> overrides,
                 Deliver deliver) {
  for (auto& polled : sources) {
    threads_.emplace_back([source = std::shared_ptr<hwmon::Source>(std::move(polled.source)),
                           interval = polled.interval, overrides,
                           deliver](const std::stop_token& stop) {
      pollLoop(stop, *source, interval, hwmon::Monitor(overrides), deliver);
    });
  }
}

Sampler::~Sampler() {
  for (auto& t : threads_) {
    t.request_stop();
  }
  threads_.clear();
}

}  // namespace aibox::agent::hardware
