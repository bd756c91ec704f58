#pragma once
// The agent's settings: command line and /etc/aibox/aibox.conf (see docs/configuration.md).

#include <filesystem>
#include <optional>
#include <string>

#include "agent/events/events.hpp"
#include "agent/hardware/hardware.hpp"
#include "agent/license/license.hpp"
#include "agent/models/models.hpp"
#include "agent/runtimes/runtimes.hpp"
#include "agent/security/security.hpp"
#include "common/config/config.hpp"
#include "common/http/server.hpp"
#include "common/log/log.hpp"

namespace aibox::agent {

struct Settings {
  config::Paths paths{"/"};
  std::filesystem::path configFile;
  std::string listen = "0.0.0.0:8443";
  int threads = 1;
  http::ServerOptions server;
  bool tls = true;
  std::filesystem::path tlsCertificate;  // inside the root
  std::filesystem::path tlsKey;
  // The web console's files: <root>/usr/share/aibox/webui, or server.webui_dir as given.
  std::filesystem::path webuiDir;
  events::Options events;
  log::Level logLevel = log::Level::info;
  security::Policy security;
  int auditRetentionDays = 90;
  hardware::Settings hardware;
  models::Settings models;
  license::Settings license;
  runtimes::Settings runtimes;
};

// Reads the command line and the config file. Returns nullopt after printing --help or
// --version. Throws config::Error (file, line, key) on any bad setting.
std::optional<Settings> loadSettings(int argc, const char* const* argv);

}  // namespace aibox::agent
