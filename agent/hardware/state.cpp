// The latest reports, and the JSON views of them that the API and `aiboxctl hw --direct` show.
#include <algorithm>
#include <cctype>

#include "agent/hardware/hardware.hpp"
#include "common/time/time.hpp"

namespace aibox::agent::hardware {
namespace {

boost::json::value optional(const std::optional<double>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

boost::json::value optional(const std::optional<std::uint64_t>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

bool simulated(const State::Reports& reports) {
  return std::any_of(reports.begin(), reports.end(),
                     [](const auto& entry) { return entry.second->simulated; });
}

bool isPsu(const std::string& chip) {
  std::string lower(chip);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.starts_with("pmbus") || lower.find("psu") != std::string::npos;
}

// Readings that belong to a GPU or a UPS are shown with it; the rest are board sensors.
bool isBoard(const hwmon::Reading& r) {
  return !r.chip.starts_with("gpu-") && !r.chip.starts_with("ups-");
}

hwmon::Status gpuStatus(const hwmon::Report& report, const hwmon::Gpu& gpu) {
  auto worst = gpu.present ? hwmon::Status::ok : hwmon::Status::nonFunctional;
  for (const auto& r : report.readings) {
    if (r.chip == gpu.chip && hwmon::severity(r.status) > hwmon::severity(worst)) {
      worst = r.status;
    }
  }
  return worst;
}

}  // namespace

void State::update(std::shared_ptr<const hwmon::Report> report) {
  std::lock_guard lock(mutex_);
  reports_.insert_or_assign(report->source, std::move(report));
}

State::Reports State::reports() const {
  std::lock_guard lock(mutex_);
  return reports_;
}

boost::json::object readingJson(const hwmon::Reading& r, bool isSimulated) {
  boost::json::object thresholds;
  const auto& t = r.thresholds;
  auto set = [&thresholds](const char* key, const std::optional<double>& v) {
    if (v) {
      thresholds[key] = *v;
    }
  };
  set("warning_low", t.warningLow);
  set("warning_high", t.warningHigh);
  set("critical_low", t.criticalLow);
  set("critical_high", t.criticalHigh);
  thresholds["hysteresis"] = t.hysteresis.value_or(hwmon::defaultHysteresis(r.kind, t));
  return {{"id", r.id},
          {"source", r.source},
          {"chip", r.chip},
          {"sensor", r.sensor},
          {"label", r.label},
          {"kind", hwmon::kindName(r.kind)},
          {"unit", hwmon::unitName(r.kind)},
          {"value", optional(r.value)},
          {"status", hwmon::statusName(r.status)},
          {"thresholds", std::move(thresholds)},
          {"simulated", isSimulated}};
}

boost::json::object summaryJson(const State::Reports& reports) {
  std::map<std::string, std::int64_t> counts{
      {"ok", 0}, {"warning", 0}, {"critical", 0}, {"unavailable", 0}, {"non_functional", 0}};
  auto worst = hwmon::Status::ok;
  auto consider = [&worst](hwmon::Status s) {
    if (hwmon::severity(s) > hwmon::severity(worst)) {
      worst = s;
    }
  };
  std::size_t sensors = 0;
  std::size_t gpus = 0;
  std::size_t upses = 0;
  boost::json::array sources;
  for (const auto& [name, report] : reports) {
    for (const auto& r : report->readings) {
      ++counts[std::string(hwmon::statusName(r.status))];
      consider(r.status);
      ++sensors;
    }
    for (const auto& ups : report->upses) {
      consider(ups.status());
    }
    gpus += report->gpus.size();
    upses += report->upses.size();
    boost::json::object source{{"name", name},
                               {"simulated", report->simulated},
                               {"polled_at", time::isoTime(report->time)},
                               {"readings", report->readings.size()}};
    source["problem"] = report->problem ? boost::json::value(*report->problem) : nullptr;
    sources.push_back(std::move(source));
  }
  boost::json::object countsJson;
  for (const auto& [status, n] : counts) {
    countsJson[status] = n;
  }
  bool nothing = sensors == 0 && upses == 0;
  return {{"health", nothing ? "unknown" : hwmon::statusName(worst)},
          {"simulated", simulated(reports)},
          {"counts", std::move(countsJson)},
          {"sensors", sensors},
          {"gpus", gpus},
          {"upses", upses},
          {"sources", std::move(sources)}};
}

boost::json::object sensorsJson(const State::Reports& reports, const SensorFilter& filter) {
  boost::json::array sensors;
  for (const auto& [name, report] : reports) {
    for (const auto& r : report->readings) {
      if ((filter.kind && r.kind != *filter.kind) ||
          (filter.status && r.status != *filter.status)) {
        continue;
      }
      sensors.push_back(readingJson(r, report->simulated));
    }
  }
  return {{"simulated", simulated(reports)}, {"sensors", std::move(sensors)}};
}

boost::json::object gpusJson(const State::Reports& reports) {
  boost::json::array gpus;
  boost::json::value problem = nullptr;
  for (const auto& [name, report] : reports) {
    if (name == "nvml" && report->problem) {
      problem = *report->problem;
    }
    for (const auto& g : report->gpus) {
      boost::json::array reasons;
      for (const auto& reason : hwmon::throttleReasonNames(g.throttleReasons.value_or(0))) {
        reasons.emplace_back(reason);
      }
      gpus.push_back(
          boost::json::object{{"index", g.index},
                              {"chip", g.chip},
                              {"name", g.name},
                              {"uuid", g.uuid},
                              {"serial", g.serial},
                              {"pci_bus_id", g.pciBusId},
                              {"present", g.present},
                              {"status", hwmon::statusName(gpuStatus(*report, g))},
                              {"temperature_celsius", optional(g.temperature)},
                              {"slowdown_temperature_celsius", optional(g.slowdownTemperature)},
                              {"shutdown_temperature_celsius", optional(g.shutdownTemperature)},
                              {"power_watts", optional(g.powerWatts)},
                              {"power_limit_watts", optional(g.powerLimitWatts)},
                              {"utilization_percent", optional(g.utilization)},
                              {"memory_utilization_percent", optional(g.memoryUtilization)},
                              {"memory_used_bytes", optional(g.memoryUsedBytes)},
                              {"memory_total_bytes", optional(g.memoryTotalBytes)},
                              {"fan_percent", optional(g.fanPercent)},
                              {"sm_clock_mhz", optional(g.smClockMhz)},
                              {"memory_clock_mhz", optional(g.memoryClockMhz)},
                              {"throttle_reasons", std::move(reasons)},
                              {"ecc_corrected", optional(g.eccCorrected)},
                              {"ecc_uncorrected", optional(g.eccUncorrected)},
                              {"last_xid", g.lastXid ? boost::json::value(*g.lastXid) : nullptr},
                              {"problem", g.problem.empty() ? boost::json::value(nullptr)
                                                            : boost::json::value(g.problem)},
                              {"simulated", report->simulated}});
    }
  }
  return {{"simulated", simulated(reports)}, {"gpus", std::move(gpus)}, {"problem", problem}};
}

boost::json::object powerJson(const State::Reports& reports) {
  std::map<std::string, boost::json::object> psus;
  boost::json::array upses;
  boost::json::value upsProblem = nullptr;
  for (const auto& [name, report] : reports) {
    for (const auto& r : report->readings) {
      if (!isBoard(r) || !isPsu(r.chip)) {
        continue;
      }
      auto& psu = psus[r.chip];
      if (psu.empty()) {
        psu = {{"chip", r.chip}, {"status", "ok"}, {"readings", boost::json::array()}};
      }
      auto current = hwmon::parseStatus(psu["status"].as_string()).value_or(hwmon::Status::ok);
      if (hwmon::severity(r.status) > hwmon::severity(current)) {
        psu["status"] = hwmon::statusName(r.status);
      }
      psu["readings"].as_array().push_back(readingJson(r, report->simulated));
    }
    if (name == "nut" && report->problem) {
      upsProblem = *report->problem;
    }
    for (const auto& u : report->upses) {
      boost::json::array flags;
      for (const auto& f : u.statusFlags) {
        flags.emplace_back(f);
      }
      upses.push_back(
          boost::json::object{{"name", u.name},
                              {"host", u.host},
                              {"port", u.port},
                              {"chip", u.chip},
                              {"communicating", u.communicating},
                              {"status", hwmon::statusName(u.status())},
                              {"flags", std::move(flags)},
                              {"battery_charge_percent", optional(u.batteryCharge)},
                              {"battery_runtime_seconds", optional(u.batteryRuntime)},
                              {"input_voltage_volts", optional(u.inputVoltage)},
                              {"load_percent", optional(u.load)},
                              {"realpower_watts", optional(u.realPowerWatts)},
                              {"manufacturer", u.manufacturer},
                              {"model", u.model},
                              {"problem", u.problem.empty() ? boost::json::value(nullptr)
                                                            : boost::json::value(u.problem)},
                              {"simulated", report->simulated}});
    }
  }
  boost::json::array psuList;
  for (auto& [chip, psu] : psus) {
    psuList.push_back(std::move(psu));
  }
  return {{"simulated", simulated(reports)},
          {"psus", std::move(psuList)},
          {"upses", std::move(upses)},
          {"ups_problem", upsProblem}};
}

}  // namespace aibox::agent::hardware
