#include "runtime/gateway/gateway.hpp"

#include <curl/curl.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include "aibox_build_info.hpp"
#include "common/fs/fs.hpp"
#include "common/http/tls.hpp"
#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {
namespace {

// The security core's source allow-list, answered in OpenAI's error shape.
class SourceCheck final : public http::Authenticator {
 public:
  explicit SourceCheck(const http::AllowList& allow) : allow_(allow) {}
  std::optional<http::Response> authenticate(http::Call& call,
                                             std::string_view /*permission*/) const override {
    if (allow_.allows(call.address)) {
      return std::nullopt;
    }
    return openaiError(http::Status::forbidden, "permission_error", "source_not_allowed",
                       call.address + " may not call this box's API (gateway.allow)");
  }

 private:
  const http::AllowList& allow_;
};

class Current {
 public:
  std::shared_ptr<const Snapshot> get() const {
    std::lock_guard lock(mutex_);
    return snapshot_;
  }
  void set(std::shared_ptr<const Snapshot> s) {
    std::lock_guard lock(mutex_);
    snapshot_ = std::move(s);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> snapshot_;
};

}  // namespace

int run(const Settings& settings) {
  log::setLevel(settings.logLevel);
  ::umask(027);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  boost::asio::io_context io(settings.threads);
  http::HttpMetrics httpMetrics;
  http::Router router;
  http::Router local;
  SourceCheck sources(settings.allow);
  router.setAuthenticator(&sources);
  AgentClient agent(settings.agentSocket);
  Limiter limiter;
  Balancer balancer;
  Metrics metrics;
  Current current;
  std::unique_ptr<Meter> meter;
  std::unique_ptr<AgentLink> link;
  std::unique_ptr<http::Server> server;
  std::unique_ptr<http::Server> localServer;
  ProxyContext proxy{io, balancer, metrics, settings.upstreamTimeout};
  std::unique_ptr<Front> front;
  std::string listening;
  try {
    fs::makeDirectories(settings.stateDir, 0750);
    fs::makeDirectories(settings.metricsSocket.parent_path(), 0755);  // the agent's too
    meter = std::make_unique<Meter>(agent, settings.stateDir / "spool", settings.flushInterval);
    front = std::make_unique<Front>(
        Front{proxy, limiter, *meter, metrics, [&current] { return current.get(); }});
    addRoutes(router, *front);
    local.add(http::Verb::get, "/metrics", "metrics:read", [&](const http::Call&) {
      std::string out;
      metrics.render(out, limiter.inFlight(), link && link->connected(), meter->pendingBatches());
      httpMetrics.render(out);
      http::renderProcessMetrics(out);
      http::Response res{http::Status::ok, 11};
      res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = std::move(out);
      return res;
    });
    server = std::make_unique<http::Server>(io, router, httpMetrics, settings.server);
    auto tls =
        settings.tls ? http::serverTlsContext({settings.tlsCertificate, settings.tlsKey}) : nullptr;
    auto bound = server->listenTcp(*http::parseEndpoint(settings.listen), tls);
    localServer = std::make_unique<http::Server>(io, local, httpMetrics, http::ServerOptions{});
    localServer->listenUnix(settings.metricsSocket);
    listening = "listening on " + bound.address().to_string() + ":" + std::to_string(bound.port()) +
                (tls ? " (https)" : " (http, TLS off)") + "; metrics on " +
                settings.metricsSocket.string();
    link = std::make_unique<AgentLink>(agent, settings.stateDir / "snapshot.json", settings.resync,
                                       [&current, &limiter](std::shared_ptr<const Snapshot> s) {
                                         limiter.update(*s);
                                         current.set(std::move(s));
                                       });
    link->start();
    meter->start();
  } catch (const std::exception& e) {
    log::error("aibox-gateway cannot start", {{"error", e.what()}});
    if (link) {
      link->stop();
    }
    return 1;
  }

  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&server, &localServer, &io](const boost::system::error_code& ec, int sig) {
    if (ec) {
      return;
    }
    log::info("stopping: draining connections", {{"signal", std::to_string(sig)}});
    sd_notify(0, "STOPPING=1\nSTATUS=draining connections");
    localServer->drain([] {});
    server->drain([&io] { io.stop(); });
  });
  boost::asio::post(io, [&listening, &settings] {
    sd_notify(0, ("READY=1\nSTATUS=" + listening).c_str());
    log::info("aibox-gateway ready", {{"version", build::kVersion},
                                      {"root", settings.paths.root().string()},
                                      {"status", listening}});
  });
  std::vector<std::jthread> extra;
  for (int i = 1; i < settings.threads; ++i) {
    extra.emplace_back([&io] { io.run(); });
  }
  io.run();
  extra.clear();
  link->stop();
  meter->stop();  // the last usage goes to the agent, or stays spooled for the next start
  log::info("aibox-gateway stopped");
  return 0;
}

}  // namespace aibox::gateway
