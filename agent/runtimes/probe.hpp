#pragma once
// One HTTP GET to an instance on loopback, asynchronous, with a deadline: the health probe and
// the metrics scrape. Internal to agent/runtimes.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <string>

namespace aibox::agent::runtimes::probe {

struct Answer {
  int status = 0;  // 0 when no HTTP answer came
  std::string body;
  std::string error;  // connection refused, timeout, ...
};

// Calls `done` on an io thread once, with the answer or the failure.
void get(boost::asio::io_context& io, int port, const std::string& path, const std::string& token,
         std::chrono::milliseconds timeout, std::function<void(Answer)> done);

}  // namespace aibox::agent::runtimes::probe
