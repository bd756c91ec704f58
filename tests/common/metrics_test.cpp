#include "common/http/metrics.hpp"

#include <gtest/gtest.h>

namespace aibox::http {
namespace {

TEST(HttpMetrics, CountsAndCumulativeBuckets) {
  HttpMetrics metrics;
  metrics.observe("/healthz", Verb::get, 200, 0.0002);
  metrics.observe("/healthz", Verb::get, 200, 0.003);
  metrics.observe("/healthz", Verb::get, 503, 20.0);
  std::string text;
  metrics.render(text);
  EXPECT_NE(
      text.find("aibox_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 2\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("aibox_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"503\"} 1\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("aibox_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0005\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("aibox_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 2\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("aibox_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 3\n"),
      std::string::npos);
  EXPECT_NE(text.find("aibox_http_request_duration_seconds_count{route=\"/healthz\"} 3\n"),
            std::string::npos);
}

TEST(HttpMetrics, LabelValuesAreEscaped) {
  EXPECT_EQ(labelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(ProcessMetrics, ReadsThisProcess) {
  std::string text;
  renderProcessMetrics(text);
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
        "process_start_time_seconds ", "process_open_fds ", "process_max_fds "}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name;
  }
  auto at = text.find("\nprocess_resident_memory_bytes ");
  EXPECT_GT(std::stod(text.substr(at + 31)), 1e6);
}

}  // namespace
}  // namespace aibox::http
