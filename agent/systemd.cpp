#include "agent/systemd.hpp"

#include <systemd/sd-daemon.h>

#include <string>

#include "common/log/log.hpp"

namespace aibox::agent {

void ServiceManager::ready(std::string_view text) {
  sd_notify(0, ("READY=1\nSTATUS=" + std::string(text)).c_str());
}

void ServiceManager::status(std::string_view text) {
  sd_notify(0, ("STATUS=" + std::string(text)).c_str());
}

void ServiceManager::stopping() {
  sd_notify(0, "STOPPING=1\nSTATUS=draining connections");
}

void ServiceManager::startWatchdog() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    return;
  }
  interval_ = std::chrono::microseconds(usec / 2);
  log::info("watchdog enabled", {{"interval_ms", std::to_string(interval_.count() / 1000)}});
  sd_notify(0, "WATCHDOG=1");
  schedule();
}

void ServiceManager::schedule() {
  timer_.expires_after(interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) {
      return;
    }
    sd_notify(0, "WATCHDOG=1");
    schedule();
  });
}

}  // namespace aibox::agent
