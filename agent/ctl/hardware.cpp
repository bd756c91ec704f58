// aiboxctl hw ...: hardware health from the agent, or read directly with --direct (docs/cli.md).
#include "agent/hardware/hardware.hpp"

#include <boost/program_options/parsers.hpp>
#include <boost/program_options/variables_map.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "agent/ctl/ctl.hpp"
#include "common/time/time.hpp"

namespace aibox::ctl {
namespace {

constexpr const char* kHwUsage =
    "Usage: aiboxctl hw [COMMAND] [--direct [--config FILE]]\n\n"
    "  (none)          overall health: counts by status, sources and their problems\n"
    "  sensors [--kind K] [--status S] [--watch]\n"
    "                  every reading with its status (K: temperature, fan, voltage, power...;\n"
    "                  S: ok, warning, critical, unavailable, non_functional); --watch\n"
    "                  refreshes every 2 s until Ctrl-C\n"
    "  gpus            NVIDIA GPUs: temperature, power, utilisation, memory, XID errors\n"
    "  power           PSUs and UPSes\n"
    "  events [--severity S] [--subject ID] [--limit N] [--before ID]\n"
    "                  status changes, XID errors and UPS events, newest first\n"
    "  history ID [--since 1h] [--step 1m]\n"
    "                  min/avg/max of one sensor over time (since: 90s, 15m, 24h, 30d)\n\n"
    "--direct reads the hardware itself, with the [hardware] settings of the agent's\n"
    "configuration (default <root>/etc/aibox/aibox.conf), for when the agent is down. It works\n"
    "with the summary, sensors, gpus and power.\n";

namespace hw = agent::hardware;

std::string number(const boost::json::value& v, int decimals = 1) {
  if (!v.is_number()) {
    return "-";
  }
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.*f", decimals, v.to_number<double>());
  return text.data();
}

std::string withUnit(const boost::json::object& o, const char* key, const char* unit,
                     int decimals = 1) {
  const auto* v = o.if_contains(key);
  return v == nullptr || v->is_null() ? "-" : number(*v, decimals) + unit;
}

std::string unitSuffix(std::string_view unit) {
  if (unit == "celsius") {
    return " °C";
  }
  if (unit == "percent") {
    return " %";
  }
  if (unit == "volts") {
    return " V";
  }
  if (unit == "amperes") {
    return " A";
  }
  if (unit == "watts") {
    return " W";
  }
  if (unit == "joules") {
    return " J";
  }
  if (unit == "seconds") {
    return " s";
  }
  if (unit == "megahertz") {
    return " MHz";
  }
  if (unit == "rpm") {
    return " RPM";
  }
  return unit == "count" ? "" : " " + std::string(unit);
}

std::string readingValue(const boost::json::object& r) {
  const auto& v = r.at("value");
  if (!v.is_number()) {
    return "-";
  }
  std::string unit(r.at("unit").as_string());
  if (unit == "bytes") {
    return number(v.to_number<double>() / (1 << 30), 1) + " GiB";
  }
  int decimals = unit == "volts" || unit == "amperes" ? 3
                 : unit == "rpm" || unit == "count"   ? 0
                                                      : 1;
  return number(v, decimals) + unitSuffix(unit);
}

void printSummary(const boost::json::object& s) {
  const auto& counts = s.at("counts").as_object();
  std::string byStatus;
  for (const auto& [status, n] : counts) {
    if (n.as_int64() > 0) {
      byStatus +=
          (byStatus.empty() ? "" : ", ") + field(counts, status) + " " + std::string(status);
    }
  }
  printTable({{"Health",
               field(s, "health") + (s.at("simulated").as_bool() ? " (SIMULATED hardware)" : "")},
              {"Sensors", field(s, "sensors") + (byStatus.empty() ? "" : " (" + byStatus + ")")},
              {"GPUs", field(s, "gpus")},
              {"UPSes", field(s, "upses")}});
  std::vector<std::vector<std::string>> rows{{"SOURCE", "READINGS", "POLLED", "PROBLEM"}};
  for (const auto& v : s.at("sources").as_array()) {
    const auto& src = v.as_object();
    rows.push_back({field(src, "name"), field(src, "readings"), field(src, "polled_at"),
                    field(src, "problem")});
  }
  std::cout << '\n';
  printRows(rows);
}

void printSensors(const boost::json::object& answer) {
  std::vector<std::vector<std::string>> rows{{"ID", "LABEL", "VALUE", "STATUS"}};
  for (const auto& v : answer.at("sensors").as_array()) {
    const auto& r = v.as_object();
    rows.push_back({field(r, "id"), field(r, "label"), readingValue(r), field(r, "status")});
  }
  if (answer.at("simulated").as_bool()) {
    std::cout << "SIMULATED hardware\n";
  }
  printRows(rows);
}

void printGpus(const boost::json::object& answer) {
  const auto& gpus = answer.at("gpus").as_array();
  if (gpus.empty()) {
    std::cout << "No GPUs"
              << (answer.at("problem").is_null() ? "" : ": " + field(answer, "problem")) << '\n';
    return;
  }
  std::vector<std::vector<std::string>> rows{
      {"GPU", "NAME", "BUS", "TEMP", "POWER", "UTIL", "MEMORY", "XID", "STATUS"}};
  for (const auto& v : gpus) {
    const auto& g = v.as_object();
    std::string memory = "-";
    if (g.at("memory_used_bytes").is_number() && g.at("memory_total_bytes").is_number()) {
      memory = number(g.at("memory_used_bytes").to_number<double>() / (1 << 30), 1) + "/" +
               number(g.at("memory_total_bytes").to_number<double>() / (1 << 30), 0) + " GiB";
    }
    rows.push_back(
        {field(g, "index"), field(g, "name"), field(g, "pci_bus_id"),
         withUnit(g, "temperature_celsius", " °C", 0),
         withUnit(g, "power_watts", " W", 0) + " / " + withUnit(g, "power_limit_watts", " W", 0),
         withUnit(g, "utilization_percent", " %", 0), memory, field(g, "last_xid"),
         g.at("present").as_bool() ? field(g, "status") : "missing"});
  }
  if (answer.at("simulated").as_bool()) {
    std::cout << "SIMULATED hardware\n";
  }
  printRows(rows);
}

void printPower(const boost::json::object& answer) {
  if (answer.at("simulated").as_bool()) {
    std::cout << "SIMULATED hardware\n";
  }
  std::vector<std::vector<std::string>> psus{{"PSU", "STATUS", "READINGS"}};
  for (const auto& v : answer.at("psus").as_array()) {
    const auto& p = v.as_object();
    std::string readings;
    for (const auto& r : p.at("readings").as_array()) {
      const auto& reading = r.as_object();
      readings +=
          (readings.empty() ? "" : ", ") + field(reading, "sensor") + " " + readingValue(reading);
    }
    psus.push_back({field(p, "chip"), field(p, "status"), readings});
  }
  printRows(psus);
  std::cout << '\n';
  std::vector<std::vector<std::string>> upses{
      {"UPS", "STATUS", "FLAGS", "CHARGE", "RUNTIME", "LOAD", "INPUT", "PROBLEM"}};
  for (const auto& v : answer.at("upses").as_array()) {
    const auto& u = v.as_object();
    std::string flags;
    for (const auto& f : u.at("flags").as_array()) {
      flags += (flags.empty() ? "" : " ") + std::string(f.as_string());
    }
    upses.push_back({field(u, "name") + "@" + field(u, "host"),
                     u.at("communicating").as_bool() ? field(u, "status") : "communication lost",
                     flags.empty() ? "-" : flags, withUnit(u, "battery_charge_percent", " %", 0),
                     withUnit(u, "battery_runtime_seconds", " s", 0),
                     withUnit(u, "load_percent", " %", 0),
                     withUnit(u, "input_voltage_volts", " V", 0), field(u, "problem")});
  }
  if (upses.size() == 1 && !answer.at("ups_problem").is_null()) {
    std::cout << "No UPS: " << field(answer, "ups_problem") << '\n';
  } else {
    printRows(upses);
  }
}

void printEvents(const boost::json::object& answer) {
  std::vector<std::vector<std::string>> rows{{"ID", "TIME", "SEVERITY", "SUBJECT", "MESSAGE"}};
  for (const auto& v : answer.at("events").as_array()) {
    const auto& e = v.as_object();
    rows.push_back({field(e, "id"), field(e, "time"), field(e, "severity"), field(e, "subject"),
                    field(e, "message")});
  }
  printRows(rows);
  if (!answer.at("next_before").is_null()) {
    std::cout << "more: --before " << field(answer, "next_before") << '\n';
  }
}

void printHistory(const boost::json::object& answer) {
  std::cout << field(answer, "sensor") << ": " << field(answer, "tier") << " tier, one point per "
            << field(answer, "step_seconds") << " s\n";
  std::vector<std::vector<std::string>> rows{{"TIME", "MIN", "AVG", "MAX"}};
  for (const auto& v : answer.at("points").as_array()) {
    const auto& p = v.as_object();
    rows.push_back(
        {field(p, "time"), number(p.at("min"), 2), number(p.at("avg"), 2), number(p.at("max"), 2)});
  }
  printRows(rows);
}

// Reads the sources of the agent's [hardware] settings once, here.
std::optional<hw::State::Reports> readDirect(const Options& options,
                                             const std::filesystem::path& configFile) {
  namespace po = boost::program_options;
  hw::Settings settings;
  po::options_description description;
  hw::addSettings(description, settings);
  po::variables_map vm;
  try {
    std::ifstream in(configFile);  // a missing file leaves the defaults
    po::store(po::parse_config_file(in, description, true), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "aiboxctl hw: " << configFile.string() << ": " << e.what() << '\n';
    return std::nullopt;
  }
  hw::resolvePaths(vm, config::Paths(options.root), settings);
  hw::State state;
  for (auto& polled : hw::makeSources(settings)) {
    hwmon::Monitor monitor(settings.overrides);
    auto report = polled.source->poll();
    monitor.evaluate(report);
    state.update(std::make_shared<hwmon::Report>(std::move(report)));
  }
  return state.reports();
}

template <class View, class Human>
int show(const Options& options, const std::vector<std::string>& args, std::size_t first,
         const std::string& path, View view, Human human) {
  bool direct = false;
  std::filesystem::path configFile = config::Paths(options.root).configFile();
  for (std::size_t i = first; i < args.size(); ++i) {
    if (args[i] == "--direct") {
      direct = true;
    } else if (args[i] == "--config" && i + 1 < args.size()) {
      configFile = args[++i];
    } else {
      return usage(kHwUsage, "bad option '" + args[i] + "'");
    }
  }
  if (!direct) {
    return run(options, "GET", path, {}, human);
  }
  auto reports = readDirect(options, configFile);
  if (!reports) {
    return kFailed;
  }
  auto answer = view(*reports);
  if (options.json) {
    printJson(answer);
  } else {
    human(answer);
  }
  return kOk;
}

int sensors(const Options& options, const std::vector<std::string>& args) {
  bool watch = false;
  std::vector<std::string> filterArgs{args.front()};
  std::vector<std::string> showArgs{args.front()};  // --direct and --config, checked by show()
  hw::SensorFilter filter;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--watch") {
      watch = true;
    } else if ((args[i] == "--kind" || args[i] == "--status") && i + 1 < args.size()) {
      const auto& value = args[i + 1];
      bool known = args[i] == "--kind" ? (filter.kind = hwmon::parseKind(value)).has_value()
                                       : (filter.status = hwmon::parseStatus(value)).has_value();
      if (!known) {
        return usage(kHwUsage, "unknown " + args[i].substr(2) + " '" + value + "'");
      }
      filterArgs.push_back(args[i]);
      filterArgs.push_back(args[++i]);
    } else {
      showArgs.push_back(args[i]);
    }
  }
  auto query = queryString(filterArgs, {"kind", "status"}, kHwUsage);
  if (!query) {
    return kUsage;
  }
  while (true) {
    if (watch && !options.json) {
      std::cout << "\033[H\033[2J" << std::flush;  // clear the terminal between refreshes
    }
    int code = show(
        options, showArgs, 1, "/api/v1/hardware/sensors" + *query,
        [&filter](const hw::State::Reports& r) { return hw::sensorsJson(r, filter); },
        printSensors);
    if (!watch || code != kOk) {
      return code;
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

int history(const Options& options, const std::vector<std::string>& args) {
  auto slash = args.size() < 2 ? std::string::npos : args[1].find('/');
  if (slash == std::string::npos || args[1].starts_with("--")) {
    return usage(kHwUsage, "hw history needs a sensor id, CHIP/SENSOR (see aiboxctl hw sensors)");
  }
  std::string since = "1h";
  std::string step;
  for (std::size_t i = 2; i < args.size(); i += 2) {
    if (i + 1 >= args.size() || (args[i] != "--since" && args[i] != "--step")) {
      return usage(kHwUsage, "bad option '" + args[i] + "'");
    }
    (args[i] == "--since" ? since : step) = args[i + 1];
  }
  auto seconds = aibox::time::parseDuration(since);
  if (!seconds || *seconds < 1) {
    return usage(kHwUsage, "--since takes a duration such as 90s, 15m, 24h or 30d");
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::string path =
      "/api/v1/hardware/sensors/" + urlEncode(args[1].substr(0, slash)) + "/" +
      urlEncode(args[1].substr(slash + 1)) + "/history?from=" + std::to_string(now - *seconds) +
      "&to=" + std::to_string(now) + (step.empty() ? "" : "&step=" + urlEncode(step));
  return run(options, "GET", path, {}, printHistory);
}

}  // namespace

int hardwareCommand(const Options& options, const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")) {
    return usage(kHwUsage);
  }
  if (args.empty() || args[0].starts_with("--")) {
    std::vector<std::string> withCommand{"summary"};
    withCommand.insert(withCommand.end(), args.begin(), args.end());
    return show(options, withCommand, 1, "/api/v1/hardware", hw::summaryJson, printSummary);
  }
  const auto& command = args[0];
  if (command == "sensors") {
    return sensors(options, args);
  }
  if (command == "gpus") {
    return show(options, args, 1, "/api/v1/hardware/gpus", hw::gpusJson, printGpus);
  }
  if (command == "power") {
    return show(options, args, 1, "/api/v1/hardware/power", hw::powerJson, printPower);
  }
  if (command == "events") {
    auto query = queryString(args, {"severity", "subject", "limit", "before"}, kHwUsage);
    return query ? run(options, "GET", "/api/v1/hardware/events" + *query, {}, printEvents)
                 : kUsage;
  }
  if (command == "history") {
    return history(options, args);
  }
  return usage(kHwUsage, "unknown hw command '" + command + "'");
}

}  // namespace aibox::ctl
