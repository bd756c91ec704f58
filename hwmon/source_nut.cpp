// UPSes through NUT's upsd, with NUT's own client library (libupsclient).
#include <pthread.h>
#include <sys/time.h>

#include <cstdint>
// upsclient.h needs uint16_t declared first.
#include <upsclient.h>

#include <charconv>
#include <cmath>
#include <csignal>
#include <map>
#include <sstream>

#include "hwmon/hwmon.hpp"

namespace aibox::hwmon {
namespace {

constexpr int kPollsToCommunicationLost = 3;

std::optional<double> number(const std::map<std::string, std::string>& vars,
                             const std::string& key) {
  auto it = vars.find(key);
  if (it == vars.end()) {
    return std::nullopt;
  }
  double value = 0;
  const auto& text = it->second;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::string text(const std::map<std::string, std::string>& vars, const std::string& key) {
  auto it = vars.find(key);
  return it == vars.end() ? std::string() : it->second;
}

// libupsclient writes with plain write(2): writing to a connection upsd has dropped (upsd
// restarted or killed) raises SIGPIPE, whose default action ends the whole process. SIGPIPE is
// blocked on this thread while libupsclient runs, and one raised meanwhile is taken back before
// the old mask returns; the failed write is then an error like any other.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    ::sigemptyset(&pipe_);
    ::sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    ::sigpending(&pending);
    pendingBefore_ = ::sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
  ~SigpipeBlocked() {
    sigset_t pending;
    ::sigpending(&pending);
    if (!pendingBefore_ && ::sigismember(&pending, SIGPIPE) == 1) {
      timespec noWait{};
      ::sigtimedwait(&pipe_, nullptr, &noWait);
    }
    ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }

 private:
  sigset_t pipe_{};
  sigset_t previous_{};
  bool pendingBefore_ = false;
};

// One UPS and its connection to upsd, kept open between polls.
class UpsLink {
 public:
  explicit UpsLink(UpsAddress address) : address_(std::move(address)) {}
  UpsLink(const UpsLink&) = delete;
  UpsLink& operator=(const UpsLink&) = delete;
  ~UpsLink() {
    SigpipeBlocked blocked;
    disconnect();
  }

  // All of the UPS's variables, or nullopt with `error` set.
  std::optional<std::map<std::string, std::string>> variables(std::string& error) {
    SigpipeBlocked blocked;
    if (!connected_) {
      timeval timeout{2, 0};
      if (::upscli_tryconnect(&connection_, address_.host.c_str(),
                              static_cast<std::uint16_t>(address_.port), 0, &timeout) != 0) {
        error = std::string("cannot connect to upsd at ") + address_.host + ":" +
                std::to_string(address_.port) + ": " + ::upscli_strerror(&connection_);
        ::upscli_disconnect(&connection_);
        return std::nullopt;
      }
      connected_ = true;
    }
    const char* query[] = {"VAR", address_.name.c_str()};
    if (::upscli_list_start(&connection_, 2, query) != 0) {
      error = ::upscli_strerror(&connection_);
      disconnect();
      return std::nullopt;
    }
    std::map<std::string, std::string> vars;
    std::size_t count = 0;
    char** answer = nullptr;
    int more = 0;
    while ((more = ::upscli_list_next(&connection_, 2, query, &count, &answer)) == 1) {
      if (count >= 4) {
        vars.emplace(answer[2], answer[3]);
      }
    }
    if (more < 0) {
      error = ::upscli_strerror(&connection_);
      disconnect();
      return std::nullopt;
    }
    return vars;
  }

  const UpsAddress& address() const { return address_; }
  int failures = 0;
  std::optional<Ups> last;

 private:
  void disconnect() {
    if (connected_) {
      ::upscli_disconnect(&connection_);
      connected_ = false;
    }
  }

  UpsAddress address_;
  UPSCONN_t connection_{};
  bool connected_ = false;
};

void addReadings(const Ups& ups, const std::map<std::string, std::string>& vars,
                 std::vector<Reading>& out) {
  auto add = [&ups, &out](std::string sensor, std::string label, Kind kind,
                          std::optional<double> value, Thresholds thresholds = {}) {
    Reading r;
    r.source = "nut";
    r.chip = ups.chip;
    r.sensor = std::move(sensor);
    r.id = ups.chip + "/" + r.sensor;
    r.label = "UPS " + ups.name + " " + label;
    r.kind = kind;
    r.value = value;
    r.thresholds = thresholds;
    out.push_back(std::move(r));
  };
  Thresholds charge;
  charge.criticalLow = number(vars, "battery.charge.low").value_or(20);
  charge.warningLow = number(vars, "battery.charge.warning").value_or(50);
  add("battery_charge", "battery charge", Kind::charge, ups.batteryCharge, charge);
  Thresholds runtime;
  runtime.criticalLow = number(vars, "battery.runtime.low");
  add("battery_runtime", "battery runtime", Kind::runtime, ups.batteryRuntime, runtime);
  Thresholds voltage;
  voltage.criticalLow = number(vars, "input.transfer.low");
  voltage.criticalHigh = number(vars, "input.transfer.high");
  add("input_voltage", "input voltage", Kind::voltage, ups.inputVoltage, voltage);
  Thresholds load;
  load.warningHigh = 80;
  load.criticalHigh = 100;
  add("load", "load", Kind::load, ups.load, load);
  if (ups.realPowerWatts || vars.empty()) {
    add("realpower", "real power", Kind::power, ups.realPowerWatts);
  }
}

class NutSource final : public Source {
 public:
  explicit NutSource(std::vector<UpsAddress> upses) {
    for (auto& address : upses) {
      links_.push_back(std::make_unique<UpsLink>(std::move(address)));
    }
  }
  std::string_view name() const override { return "nut"; }

  Report poll() override {
    Report report;
    report.source = "nut";
    report.time = std::chrono::system_clock::now();
    if (links_.empty()) {
      report.problem = "no UPS configured: set [hardware] ups = NAME@HOST:PORT";
    }
    for (auto& link : links_) {
      const auto& address = link->address();
      Ups ups;
      ups.name = address.name;
      ups.host = address.host;
      ups.port = address.port;
      ups.chip = "ups-" + address.name;
      std::string error;
      auto vars = link->variables(error);
      if (vars) {
        link->failures = 0;
        std::istringstream flags(text(*vars, "ups.status"));
        for (std::string flag; flags >> flag;) {
          ups.statusFlags.push_back(flag);
        }
        ups.batteryCharge = number(*vars, "battery.charge");
        ups.batteryRuntime = number(*vars, "battery.runtime");
        ups.inputVoltage = number(*vars, "input.voltage");
        ups.load = number(*vars, "ups.load");
        ups.realPowerWatts = number(*vars, "ups.realpower");
        ups.manufacturer =
            text(*vars, "device.mfr").empty() ? text(*vars, "ups.mfr") : text(*vars, "device.mfr");
        ups.model = text(*vars, "device.model").empty() ? text(*vars, "ups.model")
                                                        : text(*vars, "device.model");
        addReadings(ups, *vars, report.readings);
        link->last = ups;
      } else {
        ++link->failures;
        ups.problem = error;
        if (link->last) {
          ups.statusFlags = link->last->statusFlags;
          ups.manufacturer = link->last->manufacturer;
          ups.model = link->last->model;
        }
        ups.communicating = link->failures < kPollsToCommunicationLost;
        addReadings(ups, {}, report.readings);
      }
      report.upses.push_back(std::move(ups));
    }
    return report;
  }

 private:
  std::vector<std::unique_ptr<UpsLink>> links_;
};

}  // namespace

std::unique_ptr<Source> makeNutSource(std::vector<UpsAddress> upses) {
  return std::make_unique<NutSource>(std::move(upses));
}

}  // namespace aibox::hwmon
