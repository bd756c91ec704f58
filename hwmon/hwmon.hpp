#pragma once
// Hardware health readings: one reading model for every source (libsensors, sysfs hwmon, NVML,
// NUT, the simulated box), threshold evaluation with hysteresis, and the sources themselves.
// A library: it knows nothing of SQLite, HTTP or the agent.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace aibox::hwmon {

enum class Kind {
  temperature,  // °C
  fan,          // RPM
  voltage,      // V
  current,      // A
  power,        // W
  energy,       // J
  humidity,     // %RH
  pwm,          // fan duty, %
  utilization,  // GPU busy, %
  memory,       // bytes in use
  clock,        // MHz
  charge,       // UPS battery charge, %
  runtime,      // UPS battery runtime, s
  load,         // UPS load, %
  errors,       // a counter (ECC errors)
};
std::string_view kindName(Kind kind);
std::optional<Kind> parseKind(std::string_view name);
std::string_view unitName(Kind kind);

enum class Status { ok, warning, critical, unavailable, nonFunctional };
std::string_view statusName(Status status);  // "non_functional" for nonFunctional
std::optional<Status> parseStatus(std::string_view name);
// How bad a status is, for the overall health (ok < unavailable < warning < non_functional <
// critical).
int severity(Status status);

struct Thresholds {
  std::optional<double> warningLow;
  std::optional<double> warningHigh;
  std::optional<double> criticalLow;
  std::optional<double> criticalHigh;
  std::optional<double> hysteresis;  // absent: 1 % of the sensor's range
  bool empty() const { return !warningLow && !warningHigh && !criticalLow && !criticalHigh; }
};

struct Reading {
  std::string id;  // stable: "<chip>/<sensor>", e.g. "nct6798-isa-0290/temp1"
  std::string source;
  std::string chip;
  std::string sensor;  // the part of the id after the chip: "temp1"
  std::string label;   // "CPU Package", or the sensor name when there is no label
  Kind kind = Kind::temperature;
  std::optional<double> value;  // absent: the read failed (never 0 for "unknown")
  Thresholds thresholds;
  Status status = Status::ok;  // set by Monitor
};

struct Gpu {
  int index = 0;
  std::string chip;  // the chip of its readings: "gpu-<pci bus id>"
  std::string name;
  std::string uuid;
  std::string serial;
  std::string pciBusId;
  bool present = true;  // false once NVML stops seeing it
  std::optional<double> temperature;
  std::optional<double> slowdownTemperature;
  std::optional<double> shutdownTemperature;
  std::optional<double> powerWatts;
  std::optional<double> powerLimitWatts;
  std::optional<double> utilization;        // %
  std::optional<double> memoryUtilization;  // %
  std::optional<std::uint64_t> memoryUsedBytes;
  std::optional<std::uint64_t> memoryTotalBytes;
  std::optional<double> fanPercent;
  std::optional<double> smClockMhz;
  std::optional<double> memoryClockMhz;
  std::optional<std::uint64_t> throttleReasons;  // NVML bit mask
  std::optional<std::uint64_t> eccCorrected;     // volatile counts since the driver loaded
  std::optional<std::uint64_t> eccUncorrected;
  std::optional<unsigned> lastXid;  // the last XID error seen since the agent started
  std::string problem;              // why values are missing, when they are
};
// "sw_power_cap", "hw_thermal_slowdown", ... for each bit set.
std::vector<std::string> throttleReasonNames(std::uint64_t mask);

struct Ups {
  std::string name;  // NUT's UPS name
  std::string host;
  int port = 3493;
  std::string chip;  // the chip of its readings: "ups-<name>"
  bool communicating = true;
  std::vector<std::string> statusFlags;  // ups.status split on spaces: OL, OB, LB, CHRG...
  std::optional<double> batteryCharge;   // %
  std::optional<double> batteryRuntime;  // s
  std::optional<double> inputVoltage;
  std::optional<double> load;  // %
  std::optional<double> realPowerWatts;
  std::string manufacturer;
  std::string model;
  std::string problem;
  bool has(std::string_view flag) const;
  // ok, warning (on battery, replace battery...) or critical (low battery, overload, forced
  // shutdown, communication lost).
  Status status() const;
};

// Something a caller should know about: a status change, an XID error, a UPS on battery.
struct Event {
  std::chrono::system_clock::time_point time;
  std::string subject;  // a reading id, "gpu-..." or "ups-..."
  std::string source;
  Status severity = Status::ok;
  std::string type;  // "sensor_status", "gpu_xid", "ups_status", "source"
  std::string message;
  std::optional<double> value;
};

// What one poll of one source found.
struct Report {
  std::string source;
  bool simulated = false;
  std::chrono::system_clock::time_point time;
  std::vector<Reading> readings;
  std::vector<Gpu> gpus;
  std::vector<Ups> upses;
  std::optional<std::string> problem;  // the source as a whole cannot be read, and why
  std::vector<Event> events;           // raised by the source itself (XID, UPS flags)
};

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string_view name() const = 0;
  // Takes one reading of everything. Never throws for a sensor that cannot be read: that
  // reading is absent, or the report carries a problem.
  virtual Report poll() = 0;
};

// --- sources ---------------------------------------------------------------------------

struct LibsensorsOptions {
  std::optional<std::filesystem::path> config;  // sensors.conf; absent: libsensors' default
};
// libsensors: every chip, feature and subfeature, with sensors.conf labels and compute lines,
// plus fan PWM duty read from the chip's sysfs directory. libsensors has process-wide state:
// create at most one at a time.
std::unique_ptr<Source> makeLibsensorsSource(const LibsensorsOptions& options);

// Reads hwmon straight from sysfs below `sysfsRoot` (normally "/sys"), PWM included.
std::unique_ptr<Source> makeSysfsSource(const std::filesystem::path& sysfsRoot);

// NVML loaded at run time with dlopen; no driver means an empty GPU list with a reason.
std::unique_ptr<Source> makeNvmlSource(const std::string& library);

struct UpsAddress {
  std::string name;
  std::string host = "localhost";
  int port = 3493;
};
// "NAME@HOST:PORT", "NAME@HOST" or "NAME"; nullopt when malformed.
std::optional<UpsAddress> parseUpsAddress(std::string_view text);
// UPSes through NUT's upsd, with libupsclient. Three polls without an answer: communication
// lost.
std::unique_ptr<Source> makeNutSource(std::vector<UpsAddress> upses);

// A simulated box: 2 CPU packages, 8 GPUs, 6 fans, 2 PSUs and 2 UPSes whose temperatures follow
// a load signal. Every report says simulated. `extraSensors` adds board sensors (for benches).
std::unique_ptr<Source> makeSimSource(int extraSensors = 0);

// --- fan PWM through sysfs (the fan-control issue builds on it) --------------------------

struct PwmChannel {
  std::filesystem::path hwmonDir;
  int index = 1;
  std::optional<int> duty;    // 0..255 as in sysfs
  std::optional<int> enable;  // 0 full speed, 1 manual, 2+ automatic
};
std::vector<PwmChannel> listPwm(const std::filesystem::path& hwmonDir);
// Writes pwmN_enable = 1 (manual) and pwmN = duty (0..255). Throws std::system_error.
void setPwm(const std::filesystem::path& hwmonDir, int index, int duty);

// The chip name libsensors gives a hwmon directory: "<name>-<bus>-<address>" from its device
// link (platform → isa, i2c, pci), or "<name>-virtual-0" without one.
std::optional<std::string> chipName(const std::filesystem::path& hwmonDir);

// --- thresholds ------------------------------------------------------------------------

// A config override: readings whose id matches `glob` (fnmatch) take these thresholds.
struct ThresholdOverride {
  std::string glob;
  Thresholds thresholds;
};
// "GLOB: warning_high=80, critical_high=90, hysteresis=2"; on error, what is wrong.
std::optional<ThresholdOverride> parseThresholdOverride(std::string_view text, std::string& error);

// The hysteresis used when none is set: 1 % of the sensor's range (the kind's range for
// temperatures and percentages, else the largest threshold).
double defaultHysteresis(Kind kind, const Thresholds& thresholds);

// Keeps what threshold evaluation needs between polls: which thresholds are asserted, and how
// many reads in a row failed. Not thread-safe: one per source thread.
class Monitor {
 public:
  static constexpr int kFailuresToNonFunctional = 5;

  explicit Monitor(std::vector<ThresholdOverride> overrides = {});

  // Applies overrides, sets each reading's status and appends an event for each change.
  void evaluate(Report& report);

 private:
  struct State {
    bool warningLow = false;
    bool warningHigh = false;
    bool criticalLow = false;
    bool criticalHigh = false;
    int failures = 0;
    std::optional<Status> last;
  };
  Status update(State& state, const Reading& reading) const;

  std::vector<ThresholdOverride> overrides_;
  std::unordered_map<std::string, State> states_;
  std::unordered_map<std::string, Status> upsStates_;
};

}  // namespace aibox::hwmon
