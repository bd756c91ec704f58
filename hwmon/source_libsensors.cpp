// lm-sensors' libsensors: chips, features and subfeatures with the labels and compute lines of
// sensors.conf. Fan PWM, which libsensors does not expose, is read from the chip's sysfs dir.
#include <sensors/error.h>
#include <sensors/sensors.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "hwmon/hwmon.hpp"

namespace aibox::hwmon {
namespace {

struct FeatureKind {
  sensors_feature_type feature;
  Kind kind;
  std::array<sensors_subfeature_type, 2> inputs;  // the first one present is the value
  sensors_subfeature_type min, max, lcrit, crit;
};

// libsensors' own "no such subfeature": -1 would be outside the enum's range, which is undefined
// behaviour to load (UBSan stops the tests on it).
constexpr auto kNone = SENSORS_SUBFEATURE_UNKNOWN;

constexpr std::array kFeatures{
    FeatureKind{SENSORS_FEATURE_TEMP,
                Kind::temperature,
                {SENSORS_SUBFEATURE_TEMP_INPUT, kNone},
                SENSORS_SUBFEATURE_TEMP_MIN,
                SENSORS_SUBFEATURE_TEMP_MAX,
                SENSORS_SUBFEATURE_TEMP_LCRIT,
                SENSORS_SUBFEATURE_TEMP_CRIT},
    FeatureKind{SENSORS_FEATURE_FAN,
                Kind::fan,
                {SENSORS_SUBFEATURE_FAN_INPUT, kNone},
                SENSORS_SUBFEATURE_FAN_MIN,
                SENSORS_SUBFEATURE_FAN_MAX,
                kNone,
                kNone},
    FeatureKind{SENSORS_FEATURE_IN,
                Kind::voltage,
                {SENSORS_SUBFEATURE_IN_INPUT, kNone},
                SENSORS_SUBFEATURE_IN_MIN,
                SENSORS_SUBFEATURE_IN_MAX,
                SENSORS_SUBFEATURE_IN_LCRIT,
                SENSORS_SUBFEATURE_IN_CRIT},
    FeatureKind{SENSORS_FEATURE_CURR,
                Kind::current,
                {SENSORS_SUBFEATURE_CURR_INPUT, kNone},
                SENSORS_SUBFEATURE_CURR_MIN,
                SENSORS_SUBFEATURE_CURR_MAX,
                SENSORS_SUBFEATURE_CURR_LCRIT,
                SENSORS_SUBFEATURE_CURR_CRIT},
    FeatureKind{SENSORS_FEATURE_POWER,
                Kind::power,
                {SENSORS_SUBFEATURE_POWER_INPUT, SENSORS_SUBFEATURE_POWER_AVERAGE},
                SENSORS_SUBFEATURE_POWER_MIN,
                SENSORS_SUBFEATURE_POWER_MAX,
                SENSORS_SUBFEATURE_POWER_LCRIT,
                SENSORS_SUBFEATURE_POWER_CRIT},
    FeatureKind{SENSORS_FEATURE_ENERGY,
                Kind::energy,
                {SENSORS_SUBFEATURE_ENERGY_INPUT, kNone},
                kNone,
                kNone,
                kNone,
                kNone},
    FeatureKind{SENSORS_FEATURE_HUMIDITY,
                Kind::humidity,
                {SENSORS_SUBFEATURE_HUMIDITY_INPUT, kNone},
                kNone,
                kNone,
                kNone,
                kNone},
};

std::optional<double> value(const sensors_chip_name* chip, const sensors_subfeature* sub) {
  double v = 0;
  if (sub == nullptr || (sub->flags & SENSORS_MODE_R) == 0 ||
      sensors_get_value(chip, sub->number, &v) < 0) {
    return std::nullopt;
  }
  return v;
}

std::optional<double> limit(const sensors_chip_name* chip, const sensors_feature* feature,
                            sensors_subfeature_type type) {
  if (type == kNone) {
    return std::nullopt;
  }
  return value(chip, sensors_get_subfeature(chip, feature, type));
}

// libsensors' one process-wide state.
bool gLoaded = false;

// libsensors reports what is wrong in sensors.conf only through a callback (by default to
// stderr). While it starts, the messages are also kept for the problem the source reports.
std::string gParseErrors;
void (*gDefaultParseError)(const char*, const char*, int) = nullptr;

void keepParseError(const char* error, const char* file, int line) {
  gParseErrors += (gParseErrors.empty() ? "" : "; ") + std::string("line ") + std::to_string(line) +
                  ": " + (error != nullptr ? error : "error");
  if (gDefaultParseError != nullptr) {
    gDefaultParseError(error, file, line);
  }
}

int initLibsensors(FILE* config, std::string& parseErrors) {
  gParseErrors.clear();
  gDefaultParseError = sensors_parse_error_wfn;
  sensors_parse_error_wfn = keepParseError;
  int rc = sensors_init(config);
  sensors_parse_error_wfn = gDefaultParseError;
  parseErrors = std::move(gParseErrors);
  return rc;
}

class LibsensorsSource final : public Source {
 public:
  explicit LibsensorsSource(const LibsensorsOptions& options) {
    if (gLoaded) {
      throw std::logic_error("libsensors is already in use in this process");
    }
    FILE* config = nullptr;
    if (options.config) {
      config = std::fopen(options.config->c_str(), "re");
      if (config == nullptr) {
        problem_ = "cannot open sensors configuration " + options.config->string() + ": " +
                   std::strerror(errno);
        return;
      }
    }
    std::string parseErrors;
    int rc = initLibsensors(config, parseErrors);
    if (config != nullptr) {
      std::fclose(config);
    }
    if (rc != 0) {
      problem_ = "libsensors cannot start (" + std::string(sensors_strerror(rc)) +
                 (parseErrors.empty() ? "" : ", " + parseErrors) +
                 "): check the sensors configuration" +
                 (options.config ? " " + options.config->string() : std::string());
      sensors_cleanup();
      return;
    }
    gLoaded = true;
    loaded_ = true;
  }
  LibsensorsSource(const LibsensorsSource&) = delete;
  LibsensorsSource& operator=(const LibsensorsSource&) = delete;
  ~LibsensorsSource() override {
    // Only the source that started libsensors may stop it: one that failed to start must not
    // tear down the state of the one made after it.
    if (loaded_) {
      sensors_cleanup();
      gLoaded = false;
    }
  }

  std::string_view name() const override { return "libsensors"; }

  Report poll() override {
    Report report;
    report.source = "libsensors";
    report.time = std::chrono::system_clock::now();
    if (problem_) {
      report.problem = problem_;
      return report;
    }
    int chipIndex = 0;
    while (const sensors_chip_name* chip = sensors_get_detected_chips(nullptr, &chipIndex)) {
      std::array<char, 128> nameBuffer{};
      if (sensors_snprintf_chip_name(nameBuffer.data(), nameBuffer.size(), chip) < 0) {
        continue;
      }
      std::string chipName = nameBuffer.data();
      int featureIndex = 0;
      while (const sensors_feature* feature = sensors_get_features(chip, &featureIndex)) {
        readFeature(chip, chipName, feature, report.readings);
      }
      if (chip->path != nullptr) {
        for (const auto& pwm : listPwm(chip->path)) {
          Reading r;
          r.source = "libsensors";
          r.chip = chipName;
          r.sensor = "pwm" + std::to_string(pwm.index);
          r.id = chipName + "/" + r.sensor;
          r.label = r.sensor;
          r.kind = Kind::pwm;
          if (pwm.duty) {
            r.value = *pwm.duty * 100.0 / 255.0;
          }
          report.readings.push_back(std::move(r));
        }
      }
    }
    if (report.readings.empty()) {
      report.problem = "libsensors found no sensors (is the hwmon driver for this board loaded?)";
    }
    return report;
  }

 private:
  static void readFeature(const sensors_chip_name* chip, const std::string& chipName,
                          const sensors_feature* feature, std::vector<Reading>& out) {
    for (const auto& kind : kFeatures) {
      if (kind.feature != feature->type) {
        continue;
      }
      const sensors_subfeature* input = nullptr;
      for (auto type : kind.inputs) {
        if (type != kNone && input == nullptr) {
          input = sensors_get_subfeature(chip, feature, type);
        }
      }
      if (input == nullptr) {
        return;
      }
      Reading r;
      r.source = "libsensors";
      r.chip = chipName;
      r.sensor = feature->name;
      r.id = chipName + "/" + r.sensor;
      std::unique_ptr<char, decltype(&std::free)> label(sensors_get_label(chip, feature),
                                                        &std::free);
      r.label = label ? label.get() : r.sensor;
      r.kind = kind.kind;
      r.value = value(chip, input);
      r.thresholds.warningLow = limit(chip, feature, kind.min);
      r.thresholds.warningHigh = limit(chip, feature, kind.max);
      r.thresholds.criticalLow = limit(chip, feature, kind.lcrit);
      r.thresholds.criticalHigh = limit(chip, feature, kind.crit);
      out.push_back(std::move(r));
      return;
    }
  }

  std::optional<std::string> problem_;
  bool loaded_ = false;
};

}  // namespace

std::unique_ptr<Source> makeLibsensorsSource(const LibsensorsOptions& options) {
  return std::make_unique<LibsensorsSource>(options);
}

}  // namespace aibox::hwmon
