#include "agent/api/api.hpp"
#include "aibox_build_info.hpp"

namespace aibox::agent::api {
namespace {

http::Response handleMetricsGet(const http::HttpMetrics& metrics, const hardware::State& hardware,
                                license::Service& license, const runtimes::Supervisor& runtimes) {
  std::string text;
  text.reserve(8192);
  text += "# HELP aibox_build_info Version and build of the running aibox-agent.\n";
  text += "# TYPE aibox_build_info gauge\n";
  text += "aibox_build_info{version=\"" + http::labelValue(build::kVersion) + "\",build_id=\"" +
          http::labelValue(build::kBuildId) + "\"} 1\n";
  http::renderProcessMetrics(text);
  metrics.render(text);
  hardware::renderMetrics(hardware.reports(), text);
  renderLicenseMetrics(license, text);
  runtimes.renderMetrics(text);
  http::Response res{http::Status::ok, 11};
  res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(boost::beast::http::field::cache_control, "no-store");
  res.body() = std::move(text);
  return res;
}

}  // namespace

void addMetricsRoutes(http::Router& router, Services& services) {
  router.add(http::Verb::get, "/metrics", "metrics:read", [&services](const http::Call&) {
    return handleMetricsGet(services.metrics, services.hardware, services.license,
                            services.runtimes);
  });
}

}  // namespace aibox::agent::api
