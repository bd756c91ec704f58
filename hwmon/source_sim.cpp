// A simulated box for the demo and benchmarks: every report says simulated. Temperatures, fan
// speeds and power follow one load signal, so the dashboard moves like a real box under work.
#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>

#include "hwmon/hwmon.hpp"

namespace aibox::hwmon {
namespace {

constexpr int kGpus = 8;
constexpr int kFans = 6;

class SimSource final : public Source {
 public:
  explicit SimSource(int extraSensors)
      : extra_(extraSensors), start_(std::chrono::steady_clock::now()) {}
  std::string_view name() const override { return "sim"; }

  Report poll() override {
    Report report;
    report.source = "sim";
    report.simulated = true;
    report.time = std::chrono::system_clock::now();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    // Work arrives in waves: a 10-minute cycle between 20 % and 90 % load.
    double load = 0.55 + 0.35 * std::sin(2 * std::numbers::pi * seconds / 600);
    auto& out = report.readings;
    for (int package = 0; package < 2; ++package) {
      std::string chip = "coretemp-isa-000" + std::to_string(package);
      add(out, chip, "temp1", "Package id " + std::to_string(package), Kind::temperature,
          38 + 45 * load + package, limits(std::nullopt, 90, std::nullopt, 100));
      for (int core = 0; core < 8; ++core) {
        add(out, chip, "temp" + std::to_string(core + 2), "Core " + std::to_string(core),
            Kind::temperature, 36 + 44 * load + core * 0.3,
            limits(std::nullopt, 90, std::nullopt, 100));
      }
    }
    const std::string board = "nct6798-isa-0290";
    for (int fan = 1; fan <= kFans; ++fan) {
      double duty = 30 + 60 * load;
      add(out, board, "fan" + std::to_string(fan), "System fan " + std::to_string(fan), Kind::fan,
          1200 + 90 * duty + fan * 15, limits(600, std::nullopt, 300, std::nullopt));
      add(out, board, "pwm" + std::to_string(fan), "pwm" + std::to_string(fan), Kind::pwm, duty,
          {});
    }
    add(out, board, "in0", "Vcore", Kind::voltage, 0.95 + 0.1 * load, limits(0.7, 1.5, 0.6, 1.6));
    add(out, board, "in1", "+12V", Kind::voltage, 12.05, limits(11.4, 12.6, 10.8, 13.2));
    add(out, board, "in2", "+5V", Kind::voltage, 5.02, limits(4.75, 5.25, 4.5, 5.5));
    add(out, board, "in3", "+3.3V", Kind::voltage, 3.31, limits(3.14, 3.47, 2.97, 3.63));
    add(out, board, "temp1", "SYSTIN", Kind::temperature, 30 + 8 * load,
        limits(std::nullopt, 60, std::nullopt, 75));
    double boxWatts = 900 + 4800 * load;
    for (int psu = 0; psu < 2; ++psu) {
      std::string chip = "pmbus-i2c-7-5" + std::to_string(8 + psu);
      add(out, chip, "in1", "PSU " + std::to_string(psu + 1) + " input voltage", Kind::voltage,
          229 + psu, limits(200, 250, 180, 264));
      add(out, chip, "in2", "PSU " + std::to_string(psu + 1) + " output voltage", Kind::voltage,
          12.1, limits(11.4, 12.6, 10.8, 13.2));
      add(out, chip, "power1", "PSU " + std::to_string(psu + 1) + " input power", Kind::power,
          boxWatts / 2 / 0.94, limits(std::nullopt, 3000, std::nullopt, 3300));
      add(out, chip, "power2", "PSU " + std::to_string(psu + 1) + " output power", Kind::power,
          boxWatts / 2, limits(std::nullopt, 2800, std::nullopt, 3000));
      add(out, chip, "curr1", "PSU " + std::to_string(psu + 1) + " output current", Kind::current,
          boxWatts / 2 / 12.1, limits(std::nullopt, 230, std::nullopt, 250));
      add(out, chip, "temp1", "PSU " + std::to_string(psu + 1) + " temperature", Kind::temperature,
          32 + 20 * load, limits(std::nullopt, 70, std::nullopt, 85));
      add(out, chip, "fan1", "PSU " + std::to_string(psu + 1) + " fan", Kind::fan,
          4000 + 8000 * load, limits(1000, std::nullopt, 500, std::nullopt));
    }
    for (int i = 0; i < extra_; ++i) {
      add(out, "sim-board-virtual-0", "temp" + std::to_string(i + 1),
          "Board sensor " + std::to_string(i + 1), Kind::temperature, 28 + 10 * load + (i % 7),
          limits(std::nullopt, 70, std::nullopt, 85));
    }
    for (int g = 0; g < kGpus; ++g) {
      report.gpus.push_back(gpu(g, load, out));
    }
    for (int u = 0; u < 2; ++u) {
      report.upses.push_back(ups(u, load, out));
    }
    return report;
  }

 private:
  static Thresholds limits(std::optional<double> warningLow, std::optional<double> warningHigh,
                           std::optional<double> criticalLow, std::optional<double> criticalHigh) {
    return {warningLow, warningHigh, criticalLow, criticalHigh, std::nullopt};
  }

  void add(std::vector<Reading>& out, const std::string& chip, const std::string& sensor,
           const std::string& label, Kind kind, double value, Thresholds thresholds) {
    Reading r;
    r.source = "sim";
    r.chip = chip;
    r.sensor = sensor;
    r.id = chip + "/" + sensor;
    r.label = label;
    r.kind = kind;
    r.value = value * (1 + noise_(random_));
    r.thresholds = thresholds;
    out.push_back(std::move(r));
  }

  Gpu gpu(int index, double load, std::vector<Reading>& out) {
    Gpu g;
    g.index = index;
    std::array<char, 16> bus{};
    std::snprintf(bus.data(), bus.size(), "0000:%02x:00.0", 0x18 + index * 0x10);
    g.pciBusId = bus.data();
    g.chip = "gpu-" + g.pciBusId;
    g.name = "Simulated H20 96GB";
    g.uuid = "GPU-5130" + std::to_string(index) + "000-0000-4000-8000-00000000000" +
             std::to_string(index);
    g.serial = "SIM" + std::to_string(1652000000 + index);
    g.slowdownTemperature = 87;
    g.shutdownTemperature = 92;
    g.temperature = 34 + 46 * load + index * 0.7;
    g.powerLimitWatts = 500;
    g.powerWatts = 70 + 380 * load;
    g.utilization = std::round(100 * load);
    g.memoryUtilization = std::round(60 * load);
    g.memoryTotalBytes = 96ULL << 30;
    g.memoryUsedBytes = static_cast<std::uint64_t>((20 + 60 * load) * (1ULL << 30));
    g.fanPercent = std::nullopt;  // passively cooled, like the real board
    g.smClockMhz = 1980 * (0.5 + 0.5 * load);
    g.memoryClockMhz = 2619;
    g.throttleReasons = load < 0.25 ? 0x1 : 0;
    g.eccCorrected = 0;
    g.eccUncorrected = 0;
    Thresholds temperature{std::nullopt, 82, std::nullopt, 87, std::nullopt};
    std::string label = "GPU " + std::to_string(index) + " ";
    add(out, g.chip, "temperature", label + "temperature", Kind::temperature, *g.temperature,
        temperature);
    add(out, g.chip, "power", label + "power draw", Kind::power, *g.powerWatts,
        {std::nullopt, 500, std::nullopt, std::nullopt, std::nullopt});
    add(out, g.chip, "utilization", label + "utilisation", Kind::utilization, *g.utilization, {});
    add(out, g.chip, "memory_used", label + "memory used", Kind::memory,
        static_cast<double>(*g.memoryUsedBytes), {});
    add(out, g.chip, "sm_clock", label + "SM clock", Kind::clock, *g.smClockMhz, {});
    add(out, g.chip, "memory_clock", label + "memory clock", Kind::clock, *g.memoryClockMhz, {});
    add(out, g.chip, "ecc_uncorrected", label + "uncorrected ECC errors", Kind::errors, 0,
        {std::nullopt, std::nullopt, std::nullopt, 1, std::nullopt});
    return g;
  }

  Ups ups(int index, double load, std::vector<Reading>& out) {
    Ups u;
    u.name = "ups" + std::to_string(index + 1);
    u.host = "localhost";
    u.chip = "ups-" + u.name;
    u.statusFlags = {"OL"};
    u.batteryCharge = 100;
    u.batteryRuntime = 1800 - 900 * load;
    u.inputVoltage = 230;
    u.load = 15 + 40 * load;
    u.realPowerWatts = 450 + 2400 * load;
    u.manufacturer = "Simulated";
    u.model = "SIM-6000";
    std::string label = "UPS " + u.name + " ";
    add(out, u.chip, "battery_charge", label + "battery charge", Kind::charge, 100,
        {50, std::nullopt, 20, std::nullopt, std::nullopt});
    add(out, u.chip, "battery_runtime", label + "battery runtime", Kind::runtime, *u.batteryRuntime,
        {std::nullopt, std::nullopt, 300, std::nullopt, std::nullopt});
    add(out, u.chip, "input_voltage", label + "input voltage", Kind::voltage, 230,
        {std::nullopt, std::nullopt, 180, 264, std::nullopt});
    add(out, u.chip, "load", label + "load", Kind::load, *u.load,
        {std::nullopt, 80, std::nullopt, 100, std::nullopt});
    add(out, u.chip, "realpower", label + "real power", Kind::power, *u.realPowerWatts, {});
    return u;
  }

  int extra_;
  std::chrono::steady_clock::time_point start_;
  std::mt19937 random_{42};
  std::uniform_real_distribution<double> noise_{-0.004, 0.004};
};

}  // namespace

std::unique_ptr<Source> makeSimSource(int extraSensors) {
  return std::make_unique<SimSource>(extraSensors);
}

}  // namespace aibox::hwmon
