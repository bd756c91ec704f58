#include <boost/json/parse.hpp>
#include <iostream>

#include "agent/ctl/ctl.hpp"
#include "common/json/json.hpp"

namespace aibox::ctl {
namespace {

std::string text(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    return "-";
  }
  if (v->is_string()) {
    return std::string(v->as_string());
  }
  return json::serialize(*v);
}

}  // namespace

int statusCommand(const Options& options, const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::cout
        << "Usage: aiboxctl [--root DIR | --socket PATH] [--json] status\n\n"
           "Shows whether the agent runs, its version, build, uptime and the box's identity.\n"
           "Exit code 3 when the agent cannot be reached.\n";
    return kOk;
  }
  if (!args.empty()) {
    std::cerr << "aiboxctl status: unexpected argument '" << args[0]
              << "' (see aiboxctl status --help)\n";
    return kUsage;
  }
  int code = kOk;
  auto value = callAgent(options, "GET", "/api/v1/system", "", code);
  if (!value) {
    return code;
  }
  if (!value->is_object()) {
    std::cerr << "aiboxctl: the agent sent an unexpected answer\n";
    return kFailed;
  }
  const auto& system = value->as_object();
  if (options.json) {
    std::cout << json::serialize(boost::json::object{{"agent", "running"}, {"system", system}})
              << '\n';
    return kOk;
  }
  long long uptime = system.contains("uptime_seconds") && system.at("uptime_seconds").is_int64()
                         ? system.at("uptime_seconds").as_int64()
                         : 0;
  printTable({
      {"Agent", "running, up " + formatDuration(uptime)},
      {"Version", text(system, "version") + " (build " + text(system, "build_id") + ")"},
      {"Hostname", text(system, "hostname")},
      {"Serial", text(system, "serial")},
      {"Started", text(system, "started_at")},
      {"Starts", text(system, "starts")},
      {"Schema", text(system, "schema_version")},
      {"Root", text(system, "root")},
      {"Socket", options.socket.string()},
  });
  return kOk;
}

}  // namespace aibox::ctl
