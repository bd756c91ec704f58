#pragma once
// aibox-gateway: the applications' front door (docs/gateway.md). It checks inference API keys,
// applies their limits and the box's concurrency cap, routes each request by `model` to a
// ready instance and passes the answer through as the instance sends it, and meters usage.
// Keys, instances and limits come from the agent's unix socket; the last snapshot on disk
// keeps it serving while the agent is down.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/config/config.hpp"
#include "common/http/allow.hpp"
#include "common/http/server.hpp"
#include "common/log/log.hpp"

namespace aibox::gateway {

struct Settings {
  config::Paths paths{"/"};
  std::filesystem::path configFile;
  std::string listen = "0.0.0.0:8000";
  bool tls = true;
  std::filesystem::path tlsCertificate;  // inside the root
  std::filesystem::path tlsKey;
  int threads = 2;
  http::ServerOptions server;
  http::AllowList allow;
  std::filesystem::path agentSocket;    // <root>/run/aibox/agent.sock
  std::filesystem::path metricsSocket;  // <root>/run/aibox/gateway.sock
  std::filesystem::path stateDir;       // <root>/var/lib/aibox/gateway: snapshot, usage spool
  // Longest wait for an instance's answer to begin (a non-streamed answer begins when it is
  // complete).
  std::chrono::seconds upstreamTimeout{600};
  std::chrono::milliseconds flushInterval{2000};  // usage batches to the agent
  std::chrono::seconds resync{30};                // snapshot pulled at least this often
  log::Level logLevel = log::Level::info;
};

// Reads the command line and the [gateway] section of aibox.conf. Returns nullopt after
// printing --help or --version; throws config::Error on a bad setting.
std::optional<Settings> loadSettings(int argc, const char* const* argv);

// Serves until SIGTERM or SIGINT; returns the exit code.
int run(const Settings& settings);

}  // namespace aibox::gateway
