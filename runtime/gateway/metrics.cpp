#include "common/http/metrics.hpp"

#include <array>

#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {
namespace {

// Inference takes from milliseconds (a cached short answer) to minutes (a long generation).
constexpr std::array<double, 14> kBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                          1,     2.5,  5,     10,   30,  60,   120};

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

}  // namespace

void Metrics::observe(Histogram& h, double seconds) {
  if (h.buckets.empty()) {
    h.buckets.assign(kBuckets.size(), 0);
  }
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::request(const std::string& model, unsigned status, double seconds,
                      std::optional<double> firstByteSeconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{model, status}];
  observe(latency_[model], seconds);
  if (firstByteSeconds) {
    observe(firstByte_[model], *firstByteSeconds);
  }
}

void Metrics::rejected(const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++rejected_[reason];
}

void Metrics::retried(const std::string& model) {
  std::lock_guard lock(mutex_);
  ++retries_[model];
}

void Metrics::renderHistogram(std::string& out, const std::string& name,
                              const std::map<std::string, Histogram>& byModel) {
  for (const auto& [model, h] : byModel) {
    auto label = "model=\"" + http::labelValue(model) + "\"";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out += name + "_bucket{" + label + ",le=\"" + number(kBuckets[i]) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out += name + "_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
    out += name + "_sum{" + label + "} " + number(h.sum) + "\n";
    out += name + "_count{" + label + "} " + std::to_string(h.count) + "\n";
  }
}

void Metrics::render(std::string& out, std::int64_t inFlight, bool agentConnected,
                     std::size_t spooledBatches) const {
  std::lock_guard lock(mutex_);
  out +=
      "# HELP aibox_gateway_requests_total Inference requests answered, by model and status.\n"
      "# TYPE aibox_gateway_requests_total counter\n";
  for (const auto& [k, n] : requests_) {
    out += "aibox_gateway_requests_total{model=\"" + http::labelValue(k.first) + "\",code=\"" +
           std::to_string(k.second) + "\"} " + std::to_string(n) + "\n";
  }
  out +=
      "# HELP aibox_gateway_request_duration_seconds Time from the request to the end of "
      "its answer.\n# TYPE aibox_gateway_request_duration_seconds histogram\n";
  renderHistogram(out, "aibox_gateway_request_duration_seconds", latency_);
  out +=
      "# HELP aibox_gateway_time_to_first_byte_seconds Time from the request to the first "
      "byte of the answer (the first token of a stream).\n"
      "# TYPE aibox_gateway_time_to_first_byte_seconds histogram\n";
  renderHistogram(out, "aibox_gateway_time_to_first_byte_seconds", firstByte_);
  out +=
      "# HELP aibox_gateway_rejections_total Requests refused by a limit, by the limit.\n"
      "# TYPE aibox_gateway_rejections_total counter\n";
  for (const auto& [reason, n] : rejected_) {
    out += "aibox_gateway_rejections_total{reason=\"" + http::labelValue(reason) + "\"} " +
           std::to_string(n) + "\n";
  }
  out +=
      "# HELP aibox_gateway_upstream_retries_total Requests sent to a second instance after "
      "the first failed before answering.\n"
      "# TYPE aibox_gateway_upstream_retries_total counter\n";
  for (const auto& [model, n] : retries_) {
    out += "aibox_gateway_upstream_retries_total{model=\"" + http::labelValue(model) + "\"} " +
           std::to_string(n) + "\n";
  }
  out +=
      "# HELP aibox_gateway_requests_in_flight Requests being answered now.\n"
      "# TYPE aibox_gateway_requests_in_flight gauge\naibox_gateway_requests_in_flight " +
      std::to_string(inFlight) + "\n";
  out +=
      "# HELP aibox_gateway_agent_connected Whether the agent's event stream is open (else the "
      "gateway serves with its last snapshot).\n"
      "# TYPE aibox_gateway_agent_connected gauge\naibox_gateway_agent_connected " +
      std::string(agentConnected ? "1" : "0") + "\n";
  out +=
      "# HELP aibox_gateway_usage_batches_spooled Usage batches on disk not yet recorded by "
      "the agent.\n"
      "# TYPE aibox_gateway_usage_batches_spooled gauge\naibox_gateway_usage_batches_spooled " +
      std::to_string(spooledBatches) + "\n";
}

}  // namespace aibox::gateway
