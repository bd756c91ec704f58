#pragma once
// Prometheus text exposition (format 0.0.4): HTTP request counters and latency histograms per
// route, and the process_* metrics that the Prometheus client libraries export.

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "common/http/http.hpp"

namespace aibox::http {

class HttpMetrics {
 public:
  void observe(std::string_view route, Verb verb, unsigned status, double seconds);
  void render(std::string& out) const;

  static constexpr std::array<double, 12> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // not cumulative; summed on render
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::string, Histogram, std::less<>> latency_;
};

// Escapes a label value for the text format.
std::string labelValue(std::string_view value);

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds (from /proc/self).
void renderProcessMetrics(std::string& out);

}  // namespace aibox::http
