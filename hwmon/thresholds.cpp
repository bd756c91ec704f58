#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "hwmon/hwmon.hpp"

namespace aibox::hwmon {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<double> parseNumber(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

void merge(Thresholds& into, const Thresholds& from) {
  for (auto member : {&Thresholds::warningLow, &Thresholds::warningHigh, &Thresholds::criticalLow,
                      &Thresholds::criticalHigh, &Thresholds::hysteresis}) {
    if (from.*member) {
      into.*member = from.*member;
    }
  }
}

std::string number(double v) {
  std::array<char, 32> text{};
  int n = std::snprintf(text.data(), text.size(), "%.6g", v);
  return {text.data(), static_cast<std::size_t>(std::max(n, 0))};
}

std::string describe(const Reading& reading, Status status) {
  std::string text = reading.label + " (" + reading.id + ") is " + std::string(statusName(status));
  if (reading.value) {
    text += ": " + number(*reading.value) + " " + std::string(unitName(reading.kind));
  }
  const auto& t = reading.thresholds;
  std::string bounds;
  auto bound = [&bounds](const char* name, const std::optional<double>& v) {
    if (v) {
      bounds += (bounds.empty() ? "" : ", ") + std::string(name) + " " + number(*v);
    }
  };
  if (status == Status::critical) {
    bound("critical low", t.criticalLow);
    bound("critical high", t.criticalHigh);
  } else if (status == Status::warning) {
    bound("warning low", t.warningLow);
    bound("warning high", t.warningHigh);
  }
  if (!bounds.empty()) {
    text += " (" + bounds + ")";
  }
  if (status == Status::nonFunctional) {
    text += " after " + std::to_string(Monitor::kFailuresToNonFunctional) + " failed reads";
  }
  return text;
}

std::string upsDescription(const Ups& ups) {
  if (!ups.communicating) {
    return "UPS " + ups.name + "@" + ups.host + ": communication lost" +
           (ups.problem.empty() ? "" : " (" + ups.problem + ")");
  }
  std::string flags;
  for (const auto& f : ups.statusFlags) {
    flags += (flags.empty() ? "" : " ") + f;
  }
  return "UPS " + ups.name + "@" + ups.host + " is " + std::string(statusName(ups.status())) +
         ": status " + flags;
}

}  // namespace

double defaultHysteresis(Kind kind, const Thresholds& thresholds) {
  switch (kind) {
    case Kind::temperature:
      return 2.55;  // 1 % of the -128..127 °C range of a hwmon temperature
    case Kind::fan:
      return 250;  // 1 % of 0..25000 RPM
    case Kind::humidity:
    case Kind::pwm:
    case Kind::utilization:
    case Kind::charge:
    case Kind::load:
      return 1;  // 1 % of 0..100 %
    default:
      break;
  }
  double largest = 0;
  for (const auto& v : {thresholds.warningLow, thresholds.warningHigh, thresholds.criticalLow,
                        thresholds.criticalHigh}) {
    if (v) {
      largest = std::max(largest, std::abs(*v));
    }
  }
  return largest * 0.01;
}

std::optional<ThresholdOverride> parseThresholdOverride(std::string_view text, std::string& error) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    error = "expected 'GLOB: key=value, ...' (e.g. 'coretemp-*/temp*: warning_high=85')";
    return std::nullopt;
  }
  ThresholdOverride result;
  result.glob = std::string(trim(text.substr(0, colon)));
  if (result.glob.empty()) {
    error = "the sensor glob before ':' is empty";
    return std::nullopt;
  }
  auto rest = text.substr(colon + 1);
  while (!trim(rest).empty()) {
    auto comma = rest.find(',');
    auto item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    auto equals = item.find('=');
    auto key = trim(item.substr(0, equals));
    auto value = equals == std::string_view::npos ? std::nullopt
                                                  : parseNumber(trim(item.substr(equals + 1)));
    if (!value) {
      error = std::string(item).insert(0, "'") + "' is not KEY=NUMBER";
      return std::nullopt;
    }
    auto& t = result.thresholds;
    if (key == "warning_low") {
      t.warningLow = value;
    } else if (key == "warning_high") {
      t.warningHigh = value;
    } else if (key == "critical_low") {
      t.criticalLow = value;
    } else if (key == "critical_high") {
      t.criticalHigh = value;
    } else if (key == "hysteresis" && *value >= 0) {
      t.hysteresis = value;
    } else {
      error = std::string(key).insert(0, "'") +
              "' is not one of warning_low, warning_high, critical_low, critical_high, "
              "hysteresis (>= 0)";
      return std::nullopt;
    }
  }
  if (result.thresholds.empty() && !result.thresholds.hysteresis) {
    error = "no thresholds given after ':'";
    return std::nullopt;
  }
  return result;
}

Monitor::Monitor(std::vector<ThresholdOverride> overrides) : overrides_(std::move(overrides)) {}

Status Monitor::update(State& state, const Reading& reading) const {
  if (!reading.value) {
    ++state.failures;
    return state.failures >= kFailuresToNonFunctional ? Status::nonFunctional : Status::unavailable;
  }
  state.failures = 0;
  double v = *reading.value;
  const auto& t = reading.thresholds;
  double h = t.hysteresis.value_or(defaultHysteresis(reading.kind, t));
  // Each threshold is asserted when reached and released only once the value is back past it
  // by the hysteresis, so a value hovering at a threshold does not flap.
  auto high = [v, h](bool& asserted, const std::optional<double>& limit) {
    if (!limit) {
      asserted = false;
    } else if (v >= *limit) {
      asserted = true;
    } else if (v < *limit - h) {
      asserted = false;
    }
  };
  auto low = [v, h](bool& asserted, const std::optional<double>& limit) {
    if (!limit) {
      asserted = false;
    } else if (v <= *limit) {
      asserted = true;
    } else if (v > *limit + h) {
      asserted = false;
    }
  };
  high(state.criticalHigh, t.criticalHigh);
  high(state.warningHigh, t.warningHigh);
  low(state.criticalLow, t.criticalLow);
  low(state.warningLow, t.warningLow);
  if (state.criticalHigh || state.criticalLow) {
    return Status::critical;
  }
  if (state.warningHigh || state.warningLow) {
    return Status::warning;
  }
  return Status::ok;
}

void Monitor::evaluate(Report& report) {
  for (auto& reading : report.readings) {
    if (reading.kind == Kind::fan && reading.thresholds.warningLow == 0.0) {
      reading.thresholds.warningLow.reset();  // the kernel's "no minimum"
    }
    for (const auto& o : overrides_) {
      if (::fnmatch(o.glob.c_str(), reading.id.c_str(), 0) == 0) {
        merge(reading.thresholds, o.thresholds);
      }
    }
    auto& state = states_[reading.id];
    reading.status = update(state, reading);
    bool firstBad = !state.last && reading.status != Status::ok;
    if (firstBad || (state.last && *state.last != reading.status)) {
      report.events.push_back({report.time, reading.id, report.source, reading.status,
                               "sensor_status", describe(reading, reading.status), reading.value});
    }
    state.last = reading.status;
  }
  for (const auto& ups : report.upses) {
    auto status = ups.status();
    auto [it, inserted] = upsStates_.try_emplace(ups.chip, status);
    if ((inserted && status != Status::ok) || (!inserted && it->second != status)) {
      report.events.push_back({report.time, ups.chip, report.source, status, "ups_status",
                               upsDescription(ups), ups.batteryCharge});
    }
    it->second = status;
  }
}

}  // namespace aibox::hwmon
