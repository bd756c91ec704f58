#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <iostream>

#include "aibox_build_info.hpp"
#include "runtime/gateway/gateway.hpp"

namespace po = boost::program_options;

namespace aibox::gateway {
namespace {

using config::inRange;

po::options_description settingsDescription(Settings& s) {
  po::options_description d(
      "Settings (in aibox.conf under [gateway] as 'key = value', or here as --gateway.key=VALUE)");
  // clang-format off
  d.add_options()
    ("gateway.listen", po::value(&s.listen)->default_value(s.listen)->notifier([](const std::string& v) {
        if (!http::parseEndpoint(v)) {
          throw config::InvalidValue("gateway.listen", "'" + v + "' is not ADDRESS:PORT (e.g. 0.0.0.0:8000 or [::]:8000)");
        }
      }), "address and port of the OpenAI-compatible API")
    ("gateway.tls", po::value(&s.tls)->default_value(true),
        "serve HTTPS with the box's certificate; false serves plain HTTP (only behind a TLS proxy)")
    ("gateway.tls_certificate", po::value<std::string>()->default_value("/var/lib/aibox/identity/https.crt"),
        "certificate chain (PEM), inside the root; the agent's by default")
    ("gateway.tls_key", po::value<std::string>()->default_value("/var/lib/aibox/identity/https.key"),
        "private key (PEM, mode 0600), inside the root")
    ("gateway.threads", po::value(&s.threads)->default_value(s.threads)->notifier(inRange("gateway.threads", 1, 64)),
        "threads that run the event loop")
    ("gateway.max_body_bytes", po::value<std::uint64_t>()->default_value(8ULL * 1024 * 1024)
        ->notifier([&s](std::uint64_t v) {
          inRange<std::uint64_t>("gateway.max_body_bytes", 1024, 256ULL * 1024 * 1024)(v);
          s.server.maxBodyBytes = v;
        }),
        "largest request body accepted (else 413)")
    ("gateway.allow", po::value<std::string>()->default_value("")->notifier([&s](const std::string& v) {
        auto list = http::AllowList::parse(v);
        if (auto* problem = std::get_if<std::string>(&list)) {
          throw config::InvalidValue("gateway.allow", *problem);
        }
        s.allow = std::get<http::AllowList>(std::move(list));
      }),
        "comma-separated networks (10.0.0.0/8, 2001:db8::/32) allowed to call the API; empty allows all")
    ("gateway.upstream_timeout_s", po::value<int>()->default_value(static_cast<int>(s.upstreamTimeout.count()))
        ->notifier([&s](int v) {
          inRange("gateway.upstream_timeout_s", 1, 3600)(v);
          s.upstreamTimeout = std::chrono::seconds(v);
        }),
        "longest wait for an instance to begin its answer (a non-streamed one begins when complete)")
    ("gateway.flush_interval_ms", po::value<int>()->default_value(static_cast<int>(s.flushInterval.count()))
        ->notifier([&s](int v) {
          inRange("gateway.flush_interval_ms", 100, 600'000)(v);
          s.flushInterval = std::chrono::milliseconds(v);
        }),
        "how often usage is sent to the agent")
    ("gateway.resync_s", po::value<int>()->default_value(static_cast<int>(s.resync.count()))
        ->notifier([&s](int v) {
          inRange("gateway.resync_s", 1, 3600)(v);
          s.resync = std::chrono::seconds(v);
        }),
        "the snapshot is pulled from the agent at least this often, besides on every change")
    ("gateway.log_level", po::value<std::string>()->default_value("info")->notifier([&s](const std::string& v) {
        auto level = log::parseLevel(v);
        if (!level) {
          throw config::InvalidValue("gateway.log_level", "must be debug, info, warning or error");
        }
        s.logLevel = *level;
      }), "debug, info, warning or error");
  // clang-format on
  return d;
}

}  // namespace

std::optional<Settings> loadSettings(int argc, const char* const* argv) {
  Settings s;
  po::options_description general("aibox-gateway: the OpenAI-compatible front door of the box");
  // clang-format off
  general.add_options()
    ("help,h", "show this help")
    ("version", "show the version")
    ("root", po::value<std::string>(), "prefix every path with DIR (tests, the demo); also $AIBOX_ROOT")
    ("config", po::value<std::string>(), "configuration file (default: <root>/etc/aibox/aibox.conf)");
  // clang-format on
  auto settings = settingsDescription(s);
  po::options_description all;
  all.add(general).add(settings);
  po::variables_map vm;
  config::Origins origins;
  config::parseCommandLine(argc, argv, all, vm, origins);
  if (vm.count("help") != 0) {
    std::cout << all
              << "\nServes /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models "
                 "to\napplications with an inference API key, and /metrics on "
                 "<root>/run/aibox/gateway.sock;\nsee docs/gateway.md.\n";
    return std::nullopt;
  }
  if (vm.count("version") != 0) {
    std::cout << "aibox-gateway " << build::kVersion << " (build " << build::kBuildId << ")\n";
    return std::nullopt;
  }
  auto given = [&vm](const char* key) -> std::optional<std::string> {
    return vm.count(key) != 0 ? std::optional(vm[key].as<std::string>()) : std::nullopt;
  };
  s.paths = config::Paths::resolve(given("root"));
  if (auto file = given("config")) {
    s.configFile = std::filesystem::absolute(*file);
    if (!std::filesystem::exists(s.configFile)) {
      throw config::Error(s.configFile.string() + ": configuration file not found");
    }
  } else {
    s.configFile = s.paths.configFile();
  }
  if (std::filesystem::exists(s.configFile)) {
    // Only [gateway] is ours; the rest of the file is the agent's.
    config::parseFile(s.configFile, settings, vm, origins,
                      [](std::string_view section) { return section == "gateway"; });
  }
  config::validate(vm, origins);
  s.tlsCertificate = s.paths.under(vm["gateway.tls_certificate"].as<std::string>());
  s.tlsKey = s.paths.under(vm["gateway.tls_key"].as<std::string>());
  if (vm["gateway.tls_certificate"].defaulted() && vm["gateway.tls_key"].defaulted() &&
      std::filesystem::exists(s.paths.deviceCertificate())) {
    s.tlsCertificate = s.paths.deviceCertificate();
    s.tlsKey = s.paths.deviceKey();
  }
  s.agentSocket = s.paths.agentSocket();
  s.metricsSocket = s.paths.runDir() / "gateway.sock";
  s.stateDir = s.paths.stateDir() / "gateway";
  // Answers stream for as long as generation takes; a request body is small and quick.
  s.server.bodyTimeout = std::chrono::seconds(120);
  return s;
}

}  // namespace aibox::gateway
