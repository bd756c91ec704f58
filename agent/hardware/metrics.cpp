// Hardware metrics under the names existing dashboards expect: node_exporter's hwmon collector,
// dcgm-exporter for GPUs, nut_exporter for UPSes. Label values are aibox's chip and sensor ids.
#include "common/http/metrics.hpp"

#include <array>
#include <cstdio>

#include "agent/hardware/hardware.hpp"

namespace aibox::agent::hardware {
namespace {

// Series grouped by metric name, each family written once with its HELP and TYPE.
class Families {
 public:
  void add(const std::string& name, const char* type, const char* help, const std::string& labels,
           double value) {
    auto [it, inserted] = index_.try_emplace(name, families_.size());
    if (inserted) {
      families_.push_back({name, type, help, {}});
    }
    auto& series = families_[it->second].series;
    series += name;
    if (!labels.empty()) {
      series += '{';
      series += labels;
      series += '}';
    }
    series += ' ';
    std::array<char, 32> text{};
    int n = std::snprintf(text.data(), text.size(), "%.17g", value);
    series.append(text.data(), static_cast<std::size_t>(n));
    series += '\n';
  }

  void render(std::string& out) const {
    for (const auto& f : families_) {
      out += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
      out += f.series;
    }
  }

 private:
  struct Family {
    std::string name;
    const char* type;
    const char* help;
    std::string series;
  };
  std::vector<Family> families_;
  std::map<std::string, std::size_t> index_;
};

std::string label(const char* name, const std::string& value) {
  return std::string(name) + "=\"" + http::labelValue(value) + "\"";
}

void hwmonReading(Families& f, const hwmon::Reading& r) {
  std::string sensor = r.sensor;
  bool average = sensor.ends_with("_average");
  if (average) {
    sensor.resize(sensor.size() - 8);
  }
  std::string labels = label("chip", r.chip) + "," + label("sensor", sensor);
  f.add("node_hwmon_sensor_label", "gauge", "Label for given chip and sensor",
        labels + "," + label("label", r.label), 1);
  const auto& t = r.thresholds;
  auto limits = [&f, &labels, &t](const std::string& prefix, const char* unit, const char* help,
                                  double scale) {
    auto one = [&](const char* element, const std::optional<double>& v) {
      if (v) {
        f.add(prefix + "_" + element + unit, "gauge", help, labels, *v * scale);
      }
    };
    one("min", t.warningLow);
    one("max", t.warningHigh);
    one("lcrit", t.criticalLow);
    one("crit", t.criticalHigh);
  };
  std::optional<double> v = r.value;
  switch (r.kind) {
    case hwmon::Kind::temperature:
      if (v) {
        f.add("node_hwmon_temp_celsius", "gauge", "Hardware monitor for temperature (input)",
              labels, *v);
      }
      limits("node_hwmon_temp", "_celsius", "Hardware monitor for temperature", 1);
      break;
    case hwmon::Kind::fan:
      if (v) {
        f.add("node_hwmon_fan_rpm", "gauge",
              "Hardware monitor for fan revolutions per minute (input)", labels, *v);
      }
      limits("node_hwmon_fan", "_rpm", "Hardware monitor for fan revolutions per minute", 1);
      break;
    case hwmon::Kind::voltage:
      if (v) {
        f.add("node_hwmon_in_volts", "gauge", "Hardware monitor for voltage (input)", labels, *v);
      }
      limits("node_hwmon_in", "_volts", "Hardware monitor for voltage", 1);
      break;
    case hwmon::Kind::current:
      if (v) {
        f.add("node_hwmon_curr_amps", "gauge", "Hardware monitor for current (input)", labels, *v);
      }
      limits("node_hwmon_curr", "_amps", "Hardware monitor for current", 1);
      break;
    case hwmon::Kind::power:
      if (v) {
        f.add(average ? "node_hwmon_power_average_watt" : "node_hwmon_power_watt", "gauge",
              "Hardware monitor for power usage in watts", labels, *v);
      }
      break;
    case hwmon::Kind::energy:
      if (v) {
        f.add("node_hwmon_energy_joule_total", "counter",
              "Hardware monitor for joules used so far (input)", labels, *v);
      }
      break;
    case hwmon::Kind::humidity:
      if (v) {
        f.add("node_hwmon_humidity", "gauge",
              "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the "
              "humidity as a percentage) (input)",
              labels, *v / 100);
      }
      break;
    case hwmon::Kind::pwm:
      if (v) {
        f.add("node_hwmon_pwm", "gauge", "Hardware monitor pwm element ", labels, *v * 2.55);
      }
      break;
    default:
      break;
  }
}

void gpu(Families& f, const hwmon::Gpu& g) {
  if (!g.present) {
    return;
  }
  std::string labels = label("gpu", std::to_string(g.index)) + "," + label("UUID", g.uuid) + "," +
                       label("pci_bus_id", g.pciBusId) + "," +
                       label("device", "nvidia" + std::to_string(g.index)) + "," +
                       label("modelName", g.name);
  auto add = [&f, &labels](const char* name, const char* type, const char* help,
                           std::optional<double> v) {
    if (v) {
      f.add(name, type, help, labels, *v);
    }
  };
  auto mib = [](const std::optional<std::uint64_t>& bytes) -> std::optional<double> {
    return bytes ? std::optional(static_cast<double>(*bytes) / (1 << 20)) : std::nullopt;
  };
  auto count = [](const std::optional<std::uint64_t>& n) -> std::optional<double> {
    return n ? std::optional(static_cast<double>(*n)) : std::nullopt;
  };
  add("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", g.temperature);
  add("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", g.powerWatts);
  add("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", "Power management limit (in W).", g.powerLimitWatts);
  add("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", g.utilization);
  add("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", g.memoryUtilization);
  add("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", mib(g.memoryUsedBytes));
  if (g.memoryUsedBytes && g.memoryTotalBytes) {
    add("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).",
        mib(*g.memoryTotalBytes - std::min(*g.memoryUsedBytes, *g.memoryTotalBytes)));
  }
  add("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", g.smClockMhz);
  add("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", g.memoryClockMhz);
  add("DCGM_FI_DEV_FAN_SPEED", "gauge", "Fan speed for the device in percent 0-100.", g.fanPercent);
  add("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons (bitmask).",
      count(g.throttleReasons));
  add("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.",
      static_cast<double>(g.lastXid.value_or(0)));
  add("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Total number of single-bit volatile ECC errors.",
      count(g.eccCorrected));
  add("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors.",
      count(g.eccUncorrected));
}

constexpr std::array kUpsFlags{"OL",     "OB",  "LB",  "HB",   "RB",   "CHRG",  "DISCHRG",
                               "BYPASS", "CAL", "OFF", "OVER", "TRIM", "BOOST", "FSD"};

void ups(Families& f, const hwmon::Ups& u) {
  std::string labels = label("ups", u.name);
  f.add("network_ups_tools_device_info", "gauge", "UPS device information",
        labels + "," + label("mfr", u.manufacturer) + "," + label("model", u.model), 1);
  f.add("aibox_ups_communicating", "gauge",
        "Whether upsd answered for this UPS (0 after 3 polls without an answer)", labels,
        u.communicating ? 1 : 0);
  if (!u.communicating) {
    return;
  }
  auto add = [&f, &labels](const char* name, const char* help, std::optional<double> v) {
    if (v) {
      f.add(name, "gauge", help, labels, *v);
    }
  };
  add("network_ups_tools_battery_charge", "Value of the battery.charge variable (percent)",
      u.batteryCharge);
  add("network_ups_tools_battery_runtime", "Value of the battery.runtime variable (seconds)",
      u.batteryRuntime);
  add("network_ups_tools_input_voltage", "Value of the input.voltage variable (volts)",
      u.inputVoltage);
  add("network_ups_tools_ups_load", "Value of the ups.load variable (percent)", u.load);
  add("network_ups_tools_ups_realpower", "Value of the ups.realpower variable (watts)",
      u.realPowerWatts);
  for (const char* flag : kUpsFlags) {
    f.add("network_ups_tools_ups_status", "gauge", "UPS status flag",
          labels + "," + label("flag", flag), u.has(flag) ? 1 : 0);
  }
}

}  // namespace

void renderMetrics(const State::Reports& reports, std::string& out) {
  Families f;
  std::map<std::string, std::size_t> statusCounts;
  bool isSimulated = false;
  std::map<std::string, std::string> chips;
  for (const auto& [name, report] : reports) {
    isSimulated = isSimulated || report->simulated;
    f.add("aibox_hardware_source_up", "gauge",
          "Whether the hardware source could be read at its last poll", label("source", name),
          report->problem ? 0 : 1);
    for (const auto& r : report->readings) {
      ++statusCounts[std::string(hwmon::statusName(r.status))];
      if (!r.chip.starts_with("gpu-") && !r.chip.starts_with("ups-")) {
        hwmonReading(f, r);
        chips.try_emplace(r.chip, r.chip.substr(0, r.chip.find('-')));
      }
    }
    for (const auto& g : report->gpus) {
      gpu(f, g);
    }
    for (const auto& u : report->upses) {
      ups(f, u);
    }
  }
  for (const auto& [chip, chipName] : chips) {
    f.add("node_hwmon_chip_names", "gauge", "Annotation metric for human-readable chip names",
          label("chip", chip) + "," + label("chip_name", chipName), 1);
  }
  for (const char* status : {"ok", "warning", "critical", "unavailable", "non_functional"}) {
    f.add("aibox_hardware_sensors", "gauge", "Hardware readings by threshold status",
          label("status", status), static_cast<double>(statusCounts[status]));
  }
  f.add("aibox_hardware_simulated", "gauge",
        "1 when the readings come from the simulated box, not real hardware", "",
        isSimulated ? 1 : 0);
  f.render(out);
}

}  // namespace aibox::agent::hardware
