#pragma once
// The service manager's side of the agent: READY=1 once it serves, STATUS= lines, STOPPING=1
// on shutdown and WATCHDOG=1 from the event loop itself, so a stuck loop trips the watchdog.
// Outside systemd (no $NOTIFY_SOCKET) every call does nothing.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string_view>

namespace aibox::agent {

class ServiceManager {
 public:
  explicit ServiceManager(boost::asio::io_context& io) : timer_(io) {}

  void ready(std::string_view status);
  void status(std::string_view status);
  void stopping();

  // When the unit has WatchdogSec=, pings at half the interval from a timer on the loop.
  void startWatchdog();

 private:
  void schedule();
  boost::asio::steady_timer timer_;
  std::chrono::microseconds interval_{0};
};

}  // namespace aibox::agent
