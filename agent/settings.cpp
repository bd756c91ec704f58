#include "agent/settings.hpp"

#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <iostream>

#include "aibox_build_info.hpp"
#include "common/http/server.hpp"

namespace po = boost::program_options;

namespace aibox::agent {
namespace {

using config::inRange;

po::options_description settingsDescription(Settings& s) {
  po::options_description d(
      "Settings (in aibox.conf as 'key = value' under [section], or here as --section.key=VALUE)");
  // clang-format off
  d.add_options()
    ("server.listen", po::value(&s.listen)->default_value(s.listen)->notifier([](const std::string& v) {
        if (!http::parseEndpoint(v)) {
          throw config::InvalidValue("server.listen", "'" + v + "' is not ADDRESS:PORT (e.g. 0.0.0.0:8443 or [::]:8443)");
        }
      }), "address and port of the HTTPS admin API")
    ("server.threads", po::value(&s.threads)->default_value(s.threads)->notifier(inRange("server.threads", 1, 64)),
        "threads that run the event loop")
    ("server.max_header_bytes", po::value(&s.server.maxHeaderBytes)->default_value(s.server.maxHeaderBytes)
        ->notifier(inRange<std::size_t>("server.max_header_bytes", 1024, 1024UL * 1024)),
        "largest request head accepted (else 431)")
    ("server.max_body_bytes", po::value(&s.server.maxBodyBytes)->default_value(s.server.maxBodyBytes)
        ->notifier(inRange<std::uint64_t>("server.max_body_bytes", 1024, 64ULL * 1024 * 1024)),
        "largest request body accepted (else 413)")
    ("server.header_timeout_ms", po::value<int>()->default_value(static_cast<int>(s.server.headerTimeout.count()))
        ->notifier([&s](int v) {
          inRange("server.header_timeout_ms", 100, 600'000)(v);
          s.server.headerTimeout = std::chrono::milliseconds(v);
        }),
        "time a client has to send a request head; also the keep-alive idle limit")
    ("server.drain_timeout_ms", po::value<int>()->default_value(static_cast<int>(s.server.drainTimeout.count()))
        ->notifier([&s](int v) {
          inRange("server.drain_timeout_ms", 0, 600'000)(v);
          s.server.drainTimeout = std::chrono::milliseconds(v);
        }),
        "on SIGTERM, how long requests in flight may take to finish")
    ("server.webui_dir", po::value<std::string>()->notifier([](const std::string& v) {
        if (!std::filesystem::path(v).is_absolute()) {
          throw config::InvalidValue("server.webui_dir", "'" + v + "' is not an absolute path");
        }
      }),
        "directory of the web console's files, taken as given (not inside the root); default: "
        "/usr/share/aibox/webui inside the root")
    ("server.events_max_clients", po::value(&s.events.maxClients)->default_value(s.events.maxClients)
        ->notifier(inRange<std::size_t>("server.events_max_clients", 1, 1024)),
        "event streams (GET /api/v1/events) served at once; more get 503")
    ("server.events_heartbeat_s", po::value<int>()->default_value(static_cast<int>(s.events.heartbeat.count()))
        ->notifier([&s](int v) {
          inRange("server.events_heartbeat_s", 1, 300)(v);
          s.events.heartbeat = std::chrono::seconds(v);
        }),
        "seconds between keep-alive comments on an event stream; also how often a stream checks "
        "that its session is still live")
    ("tls.enabled", po::value(&s.tls)->default_value(true),
        "serve HTTPS (turn off only for a benchmark on loopback)")
    ("tls.certificate", po::value<std::string>()->default_value("/var/lib/aibox/identity/https.crt"),
        "PEM certificate chain; made self-signed on first start when neither it nor the key exists")
    ("tls.key", po::value<std::string>()->default_value("/var/lib/aibox/identity/https.key"),
        "PEM private key (mode 0600)")
    ("security.session_idle_s", po::value<int>()->default_value(static_cast<int>(s.security.sessionIdle.count()))
        ->notifier([&s](int v) {
          inRange("security.session_idle_s", 1, 7 * 86400)(v);
          s.security.sessionIdle = std::chrono::seconds(v);
        }),
        "a login session ends after this many seconds without a request")
    ("security.session_max_s", po::value<int>()->default_value(static_cast<int>(s.security.sessionMax.count()))
        ->notifier([&s](int v) {
          inRange("security.session_max_s", 1, 30 * 86400)(v);
          s.security.sessionMax = std::chrono::seconds(v);
        }),
        "a login session ends this many seconds after login, active or not")
    ("security.lockout_threshold", po::value(&s.security.lockoutThreshold)->default_value(s.security.lockoutThreshold)
        ->notifier(inRange("security.lockout_threshold", 1, 100)),
        "failed logins (per user and per source address) before a lock-out")
    ("security.lockout_base_s", po::value<int>()->default_value(static_cast<int>(s.security.lockoutBase.count()))
        ->notifier([&s](int v) {
          inRange("security.lockout_base_s", 1, 86400)(v);
          s.security.lockoutBase = std::chrono::seconds(v);
        }),
        "first lock-out; each further failure doubles it")
    ("security.lockout_max_s", po::value<int>()->default_value(static_cast<int>(s.security.lockoutMax.count()))
        ->notifier([&s](int v) {
          inRange("security.lockout_max_s", 1, 7 * 86400)(v);
          s.security.lockoutMax = std::chrono::seconds(v);
        }),
        "longest lock-out")
    ("security.scrypt_log2n", po::value(&s.security.scryptLog2N)->default_value(s.security.scryptLog2N)
        ->notifier(inRange("security.scrypt_log2n", 14, 20)),
        "password hash cost: scrypt N = 2^VALUE (r=8, p=1); 17 uses 128 MiB per hash")
    ("security.password_min_length", po::value(&s.security.passwordMinLength)->default_value(s.security.passwordMinLength)
        ->notifier(inRange<std::size_t>("security.password_min_length", 8, 128)),
        "shortest password accepted")
    ("security.admin_allow", po::value<std::string>()->default_value("")
        ->notifier([&s](const std::string& v) {
          auto list = http::AllowList::parse(v);
          if (auto* problem = std::get_if<std::string>(&list)) {
            throw config::InvalidValue("security.admin_allow", *problem);
          }
          s.security.allow = std::get<http::AllowList>(std::move(list));
        }),
        "comma-separated networks (10.0.0.0/8, 2001:db8::/32) allowed on the HTTPS listener; "
        "empty allows all")
    ("audit.retention_days", po::value(&s.auditRetentionDays)->default_value(s.auditRetentionDays)
        ->notifier(inRange("audit.retention_days", 0, 3650)),
        "audit rows older than this move to compressed monthly archives in /var/lib/aibox/audit")
    ("license.clock_tolerance_s", po::value(&s.license.clockTolerance)->default_value(s.license.clockTolerance)
        ->notifier(inRange<std::int64_t>("license.clock_tolerance_s", 60, 7 * 86400)),
        "how far the clock may fall behind the latest time the box has seen before the license "
        "counts as expired (a clock set back)")
    ("log.level", po::value<std::string>()->default_value("info")->notifier([&s](const std::string& v) {
        auto level = log::parseLevel(v);
        if (!level) {
          throw config::InvalidValue("log.level", "'" + v + "' is not one of debug, info, warning, error");
        }
        s.logLevel = *level;
      }), "debug, info, warning or error");
  // clang-format on
  hardware::addSettings(d, s.hardware);
  models::addSettings(d, s.models);
  runtimes::addSettings(d, s.runtimes);
  return d;
}

}  // namespace

std::optional<Settings> loadSettings(int argc, const char* const* argv) {
  Settings s;
  po::options_description general(
      "aibox-agent: the aibox control-plane daemon\n\nUsage: aibox-agent [OPTIONS]\n\nOptions");
  // clang-format off
  general.add_options()
    ("help,h", "show this help and exit")
    ("version", "show the version and exit")
    ("root", po::value<std::string>(), "prefix every path with DIR (tests, the demo); also $AIBOX_ROOT")
    ("config", po::value<std::string>(), "configuration file (default: <root>/etc/aibox/aibox.conf)")
    ("listen", po::value<std::string>(), "ADDRESS:PORT of the HTTPS API; same as --server.listen");
  // clang-format on
  auto settings = settingsDescription(s);
  po::options_description all;
  all.add(general).add(settings);

  po::variables_map vm;
  config::Origins origins;
  config::parseCommandLine(argc, argv, all, vm, origins);
  if (vm.count("help") != 0) {
    std::cout
        << all
        << "\nThe agent serves /healthz, /api/v1/... and /metrics on the TLS listener and on\n"
           "<root>/run/aibox/agent.sock; see docs/api.md.\n";
    return std::nullopt;
  }
  if (vm.count("version") != 0) {
    std::cout << "aibox-agent " << build::kVersion << " (build " << build::kBuildId << ")\n";
    return std::nullopt;
  }
  auto given = [&vm](const char* key) -> std::optional<std::string> {
    return vm.count(key) != 0 ? std::optional(vm[key].as<std::string>()) : std::nullopt;
  };
  s.paths = config::Paths::resolve(given("root"));
  if (auto configFile = given("config")) {
    s.configFile = std::filesystem::absolute(*configFile);
    if (!std::filesystem::exists(s.configFile)) {
      throw config::Error(s.configFile.string() + ": configuration file not found");
    }
  } else {
    s.configFile = s.paths.configFile();
  }
  if (auto listen = given("listen")) {
    if (origins.contains("server.listen")) {
      throw config::Error("--listen and --server.listen are the same setting: give one of them");
    }
    po::parsed_options parsed(&settings);
    parsed.options.emplace_back("server.listen", std::vector<std::string>{*listen});
    po::store(parsed, vm);
    origins.insert_or_assign("server.listen", "command line (--listen)");
  }
  if (std::filesystem::exists(s.configFile)) {
    // [gateway] is aibox-gateway's.
    config::parseFile(s.configFile, settings, vm, origins,
                      [](std::string_view section) { return section != "gateway"; });
  }
  config::validate(vm, origins);
  s.tlsCertificate = s.paths.under(vm["tls.certificate"].as<std::string>());
  s.tlsKey = s.paths.under(vm["tls.key"].as<std::string>());
  if (vm["tls.certificate"].defaulted() && vm["tls.key"].defaulted() &&
      std::filesystem::exists(s.paths.deviceCertificate())) {
    s.tlsCertificate = s.paths.deviceCertificate();
    s.tlsKey = s.paths.deviceKey();
  }
  s.webuiDir = vm.count("server.webui_dir") != 0
                   ? std::filesystem::path(vm["server.webui_dir"].as<std::string>())
                   : s.paths.webuiDir();
  hardware::resolvePaths(vm, s.paths, s.hardware);
  s.license.file = s.paths.stateDir() / "license/aibox.lic";
  s.license.clockFile = s.paths.stateDir() / "license/clock";
  s.runtimes.shippedProfiles =
      vm.count("runtimes.engines_dir") != 0
          ? std::filesystem::path(vm["runtimes.engines_dir"].as<std::string>())
          : s.paths.under("/usr/share/aibox/engines");
  s.runtimes.overrideProfiles = s.paths.under("/etc/aibox/engines");
  s.runtimes.stateDir = s.paths.stateDir() / "runtimes";
  s.runtimes.runDir = s.paths.runDir() / "instances";
  if (s.models.caBundle) {
    s.models.caBundle = s.paths.under(s.models.caBundle->string());
  }
  return s;
}

}  // namespace aibox::agent
