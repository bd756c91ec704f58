#include "common/http/metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

namespace aibox::http {
namespace {

// The shortest text that reads back as the same double.
std::string number(double v) {
  std::array<char, 32> text{};
  auto result =
      std::to_chars(text.data(), text.data() + text.size(), v, std::chars_format::general);
  return {text.data(), result.ptr};
}

std::string readFile(const char* path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            double value) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out.append(name).append(" ").append(number(value)).append("\n");
}

}  // namespace

std::string labelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void HttpMetrics::observe(std::string_view route, Verb verb, unsigned status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(route), std::string(boost::beast::http::to_string(verb)), status}];
  auto it = latency_.find(route);
  if (it == latency_.end()) {
    it = latency_.emplace(std::string(route), Histogram{}).first;
  }
  Histogram& h = it->second;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void HttpMetrics::render(std::string& out) const {
  std::lock_guard lock(mutex_);
  out +=
      "# HELP aibox_http_requests_total HTTP requests answered, by route pattern, method and "
      "status code.\n";
  out += "# TYPE aibox_http_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    const auto& [route, method, code] = key;
    out += "aibox_http_requests_total{route=\"" + labelValue(route) + "\",method=\"" + method +
           "\",code=\"" + std::to_string(code) + "\"} " + std::to_string(count) + "\n";
  }
  out +=
      "# HELP aibox_http_request_duration_seconds Time from a complete request to its response, by "
      "route.\n";
  out += "# TYPE aibox_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    std::string label = "route=\"" + labelValue(route) + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out += "aibox_http_request_duration_seconds_bucket{" + label + ",le=\"" +
             number(kBuckets[i]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "aibox_http_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
    out += "aibox_http_request_duration_seconds_sum{" + label + "} " + number(h.sum) + "\n";
    out += "aibox_http_request_duration_seconds_count{" + label + "} " + std::to_string(h.count) +
           "\n";
  }
}

void renderProcessMetrics(std::string& out) {
  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto pageSize = static_cast<double>(sysconf(_SC_PAGESIZE));
  // /proc/self/stat: the command name (field 2) may contain spaces, so split after its ')'.
  std::string stat = readFile("/proc/self/stat");
  auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(fields),
                               std::istream_iterator<std::string>()};
    // After ')', field 3 (state) is index 0: utime=14, stime=15, starttime=22, vsize=23, rss=24.
    if (f.size() > 21) {
      double utime = std::stod(f[11]);
      double stime = std::stod(f[12]);
      double start = std::stod(f[19]);
      double vsize = std::stod(f[20]);
      double rss = std::stod(f[21]);
      double bootTime = 0;
      std::istringstream procStat(readFile("/proc/stat"));
      for (std::string line; std::getline(procStat, line);) {
        if (line.rfind("btime ", 0) == 0) {
          bootTime = std::stod(line.substr(6));
        }
      }
      metric(out, "process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.", (utime + stime) / ticks);
      metric(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
             rss * pageSize);
      metric(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
      metric(out, "process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.", bootTime + start / ticks);
    }
  }
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  metric(out, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    metric(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
           static_cast<double>(limit.rlim_cur));
  }
}

}  // namespace aibox::http
