#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>

#include "hwmon/hwmon.hpp"

namespace aibox::hwmon {
namespace {

struct KindInfo {
  Kind kind;
  std::string_view name;
  std::string_view unit;
};
constexpr std::array kKinds{
    KindInfo{Kind::temperature, "temperature", "celsius"},
    KindInfo{Kind::fan, "fan", "rpm"},
    KindInfo{Kind::voltage, "voltage", "volts"},
    KindInfo{Kind::current, "current", "amperes"},
    KindInfo{Kind::power, "power", "watts"},
    KindInfo{Kind::energy, "energy", "joules"},
    KindInfo{Kind::humidity, "humidity", "percent"},
    KindInfo{Kind::pwm, "pwm", "percent"},
    KindInfo{Kind::utilization, "utilization", "percent"},
    KindInfo{Kind::memory, "memory", "bytes"},
    KindInfo{Kind::clock, "clock", "megahertz"},
    KindInfo{Kind::charge, "charge", "percent"},
    KindInfo{Kind::runtime, "runtime", "seconds"},
    KindInfo{Kind::load, "load", "percent"},
    KindInfo{Kind::errors, "errors", "count"},
};

constexpr std::array<std::pair<Status, std::string_view>, 5> kStatuses{{
    {Status::ok, "ok"},
    {Status::warning, "warning"},
    {Status::critical, "critical"},
    {Status::unavailable, "unavailable"},
    {Status::nonFunctional, "non_functional"},
}};

// NVML's nvmlClocksThrottleReason* bits.
constexpr std::array<std::pair<std::uint64_t, std::string_view>, 9> kThrottleReasons{{
    {0x1, "gpu_idle"},
    {0x2, "applications_clocks_setting"},
    {0x4, "sw_power_cap"},
    {0x8, "hw_slowdown"},
    {0x10, "sync_boost"},
    {0x20, "sw_thermal_slowdown"},
    {0x40, "hw_thermal_slowdown"},
    {0x80, "hw_power_brake_slowdown"},
    {0x100, "display_clock_setting"},
}};

}  // namespace

std::string_view kindName(Kind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) {
      return k.name;
    }
  }
  return "unknown";
}

std::optional<Kind> parseKind(std::string_view name) {
  for (const auto& k : kKinds) {
    if (k.name == name) {
      return k.kind;
    }
  }
  return std::nullopt;
}

std::string_view unitName(Kind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) {
      return k.unit;
    }
  }
  return "";
}

std::string_view statusName(Status status) {
  for (const auto& [s, name] : kStatuses) {
    if (s == status) {
      return name;
    }
  }
  return "unknown";
}

std::optional<Status> parseStatus(std::string_view name) {
  for (const auto& [s, n] : kStatuses) {
    if (n == name) {
      return s;
    }
  }
  return std::nullopt;
}

int severity(Status status) {
  switch (status) {
    case Status::ok:
      return 0;
    case Status::unavailable:
      return 1;
    case Status::warning:
      return 2;
    case Status::nonFunctional:
      return 3;
    case Status::critical:
      return 4;
  }
  return 0;
}

std::vector<std::string> throttleReasonNames(std::uint64_t mask) {
  std::vector<std::string> names;
  for (const auto& [bit, name] : kThrottleReasons) {
    if ((mask & bit) != 0) {
      names.emplace_back(name);
    }
  }
  return names;
}

bool Ups::has(std::string_view flag) const {
  return std::find(statusFlags.begin(), statusFlags.end(), flag) != statusFlags.end();
}

Status Ups::status() const {
  if (!communicating || has("LB") || has("FSD") || has("OVER")) {
    return Status::critical;
  }
  if (has("OB") || has("RB") || has("BYPASS") || has("OFF")) {
    return Status::warning;
  }
  return Status::ok;
}

std::optional<UpsAddress> parseUpsAddress(std::string_view text) {
  UpsAddress address;
  auto at = text.find('@');
  address.name = std::string(text.substr(0, at));
  auto validName = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
    });
  };
  if (!validName(address.name)) {
    return std::nullopt;
  }
  if (at == std::string_view::npos) {
    return address;
  }
  auto rest = text.substr(at + 1);
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find(']') != std::string_view::npos &&
      colon < rest.find(']')) {
    colon = std::string_view::npos;  // "[::1]" without a port
  }
  auto host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // an IPv6 address needs brackets: "ups@::1" is not host ":" port 1
  }
  if (host.empty()) {
    return std::nullopt;
  }
  address.host = std::string(host);
  if (colon != std::string_view::npos) {
    auto port = rest.substr(colon + 1);
    int value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      return std::nullopt;
    }
    address.port = value;
  }
  return address;
}

}  // namespace aibox::hwmon
