#include <algorithm>
#include <array>
#include <boost/program_options/value_semantic.hpp>
#include <sstream>

#include "agent/hardware/hardware.hpp"
#include "common/config/config.hpp"

namespace po = boost::program_options;

namespace aibox::agent::hardware {
namespace {

constexpr std::array kSourceNames{"libsensors", "sysfs", "nvml", "nut", "sim"};

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> items;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    auto first = item.find_first_not_of(" \t");
    auto last = item.find_last_not_of(" \t");
    if (first != std::string::npos) {
      items.push_back(item.substr(first, last - first + 1));
    }
  }
  return items;
}

auto seconds(const char* key, std::chrono::milliseconds& target) {
  return [key, &target](double v) {
    if (!(v >= 0.1 && v <= 3600)) {
      throw config::InvalidValue(key, "must be between 0.1 and 3600 seconds");
    }
    target = std::chrono::milliseconds(static_cast<long long>(v * 1000));
  };
}

}  // namespace

void addSettings(po::options_description& d, Settings& s) {
  // clang-format off
  d.add_options()
    ("hardware.sources", po::value<std::string>()->default_value("libsensors,nvml,nut")
        ->notifier([&s](const std::string& v) {
          s.sources = splitList(v);
          for (const auto& name : s.sources) {
            if (std::count(s.sources.begin(), s.sources.end(), name) > 1) {
              throw config::InvalidValue("hardware.sources", "'" + name + "' is listed twice");
            }
            if (std::find(kSourceNames.begin(), kSourceNames.end(), name) == kSourceNames.end()) {
              throw config::InvalidValue("hardware.sources", "'" + name +
                  "' is not a source: use libsensors, sysfs, nvml, nut or sim (the simulated box)");
            }
          }
        }),
        "comma-separated hardware sources: libsensors, sysfs, nvml, nut; sim is a simulated box")
    ("hardware.sysfs_root", po::value<std::string>()->default_value("/sys"),
        "sysfs of the 'sysfs' source (fan PWM reads and writes)")
    ("hardware.nvml_library", po::value(&s.nvmlLibrary)->default_value(s.nvmlLibrary),
        "NVML library to dlopen: a name searched as usual, or an absolute path")
    ("hardware.sensors_config", po::value<std::string>(),
        "sensors.conf for libsensors (labels, compute lines); default: libsensors' own")
    ("hardware.ups", po::value<std::vector<std::string>>()->composing()
        ->notifier([&s](const std::vector<std::string>& values) {
          for (const auto& value : values) {
            for (const auto& item : splitList(value)) {
              auto address = hwmon::parseUpsAddress(item);
              if (!address) {
                throw config::InvalidValue("hardware.ups", "'" + item + "' is not NAME@HOST:PORT (e.g. ups1@localhost:3493)");
              }
              s.upses.push_back(*address);
            }
          }
        }),
        "a UPS watched through NUT's upsd, NAME@HOST:PORT; repeat the key for each UPS")
    ("hardware.poll_interval", po::value<double>()->default_value(1.0)
        ->notifier(seconds("hardware.poll_interval", s.pollInterval)),
        "seconds between reads of sensors and GPUs")
    ("hardware.ups_poll_interval", po::value<double>()->default_value(5.0)
        ->notifier(seconds("hardware.ups_poll_interval", s.upsPollInterval)),
        "seconds between reads of the UPSes")
    ("hardware.threshold", po::value<std::vector<std::string>>()->composing()
        ->notifier([&s](const std::vector<std::string>& values) {
          for (const auto& value : values) {
            std::string error;
            auto parsed = hwmon::parseThresholdOverride(value, error);
            if (!parsed) {
              throw config::InvalidValue("hardware.threshold", "'" + value + "': " + error);
            }
            s.overrides.push_back(*parsed);
          }
        }),
        "'GLOB: warning_high=N, critical_high=N, warning_low=N, critical_low=N, hysteresis=N' "
        "overrides the thresholds of matching sensor ids; repeatable, later ones win")
    ("hardware.sim_sensors", po::value(&s.simExtraSensors)->default_value(0)
        ->notifier([](int v) {
          if (v < 0 || v > 10000) {
            throw config::InvalidValue("hardware.sim_sensors", "must be between 0 and 10000");
          }
        }),
        "extra board sensors of the simulated box (benchmarks)");
  // clang-format on
}

void resolvePaths(const po::variables_map& vm, const config::Paths& paths, Settings& s) {
  s.sysfsRoot = paths.under(vm["hardware.sysfs_root"].as<std::string>());
  if (vm.count("hardware.sensors_config") != 0) {
    s.sensorsConfig = paths.under(vm["hardware.sensors_config"].as<std::string>());
  }
}

std::vector<PolledSource> makeSources(const Settings& s) {
  std::vector<PolledSource> sources;
  for (const auto& name : s.sources) {
    if (name == "libsensors") {
      sources.push_back({hwmon::makeLibsensorsSource({s.sensorsConfig}), s.pollInterval});
    } else if (name == "sysfs") {
      sources.push_back({hwmon::makeSysfsSource(s.sysfsRoot), s.pollInterval});
    } else if (name == "nvml") {
      sources.push_back({hwmon::makeNvmlSource(s.nvmlLibrary), s.pollInterval});
    } else if (name == "nut") {
      sources.push_back({hwmon::makeNutSource(s.upses), s.upsPollInterval});
    } else if (name == "sim") {
      sources.push_back({hwmon::makeSimSource(s.simExtraSensors), s.pollInterval});
    }
  }
  return sources;
}

}  // namespace aibox::agent::hardware
