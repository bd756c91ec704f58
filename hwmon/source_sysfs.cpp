// hwmon straight from sysfs: /sys/class/hwmon/hwmonN/{name,temp1_input,pwm1,...} below a
// configurable root. Also the write path for fan PWM.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <map>
#include <system_error>

#include "hwmon/hwmon.hpp"

namespace aibox::hwmon {
namespace {

namespace stdfs = std::filesystem;

// One attribute file, read with one read(2): sysfs attributes are small and atomic.
std::optional<std::string> readAttribute(const stdfs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  std::array<char, 256> buffer{};
  ssize_t n = ::read(fd, buffer.data(), buffer.size());
  ::close(fd);
  if (n < 0) {
    return std::nullopt;
  }
  std::string text(buffer.data(), static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

std::optional<long long> readInteger(const stdfs::path& file) {
  auto text = readAttribute(file);
  if (!text) {
    return std::nullopt;
  }
  long long value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) {
    return std::nullopt;
  }
  return value;
}

void writeAttribute(const stdfs::path& file, const std::string& value) {
  // O_TRUNC changes nothing on sysfs, but a shorter value written into a plain file (a fake tree
  // under --root) would otherwise leave the old value's tail behind: "77" over "128" is "778".
  int fd = ::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open " + file.string());
  }
  ssize_t n = ::write(fd, value.data(), value.size());
  int error = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    throw std::system_error(n < 0 ? error : EIO, std::generic_category(),
                            "cannot write " + file.string());
  }
}

struct SensorType {
  std::string_view prefix;
  Kind kind;
  double scale;  // sysfs unit → reading unit
};
constexpr std::array kTypes{
    SensorType{"temp", Kind::temperature, 1e-3},  SensorType{"fan", Kind::fan, 1},
    SensorType{"in", Kind::voltage, 1e-3},        SensorType{"curr", Kind::current, 1e-3},
    SensorType{"power", Kind::power, 1e-6},       SensorType{"energy", Kind::energy, 1e-6},
    SensorType{"humidity", Kind::humidity, 1e-3},
};

// "temp12_input" → ("temp", 12); nullopt for other files.
std::optional<std::pair<const SensorType*, int>> inputAttribute(std::string_view file) {
  for (const auto& type : kTypes) {
    if (!file.starts_with(type.prefix) ||
        (!file.ends_with("_input") && !(type.kind == Kind::power && file.ends_with("_average")))) {
      continue;
    }
    auto digits = file.substr(type.prefix.size(), file.find('_') - type.prefix.size());
    int index = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) {
      return std::pair{&type, index};
    }
  }
  return std::nullopt;
}

std::optional<double> scaled(const stdfs::path& file, double scale) {
  auto raw = readInteger(file);
  return raw ? std::optional(static_cast<double>(*raw) * scale) : std::nullopt;
}

std::vector<stdfs::path> hwmonDirectories(const stdfs::path& sysfsRoot) {
  std::vector<stdfs::path> dirs;
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(sysfsRoot / "class/hwmon", ec)) {
    if (entry.path().filename().string().starts_with("hwmon")) {
      dirs.push_back(entry.path());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// Readings of one hwmon directory: every *_input (and power*_average) with its label and
// limits, then the PWM outputs.
void readChip(const stdfs::path& dir, const std::string& chip, std::vector<Reading>& out) {
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& entry : stdfs::directory_iterator(dir, ec)) {
    files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto input = inputAttribute(file);
    if (!input) {
      continue;
    }
    const auto& [type, index] = *input;
    std::string sensor = std::string(type->prefix) + std::to_string(index);
    bool average = file.ends_with("_average");
    Reading r;
    r.source = "sysfs";
    r.chip = chip;
    r.sensor = average ? sensor + "_average" : sensor;
    r.id = chip + "/" + r.sensor;
    r.kind = type->kind;
    r.label = readAttribute(dir / (sensor + "_label")).value_or(r.sensor);
    r.value = scaled(dir / file, type->scale);
    r.thresholds.warningLow = scaled(dir / (sensor + "_min"), type->scale);
    r.thresholds.warningHigh = scaled(dir / (sensor + "_max"), type->scale);
    r.thresholds.criticalLow = scaled(dir / (sensor + "_lcrit"), type->scale);
    r.thresholds.criticalHigh = scaled(dir / (sensor + "_crit"), type->scale);
    out.push_back(std::move(r));
  }
  for (const auto& pwm : listPwm(dir)) {
    Reading r;
    r.source = "sysfs";
    r.chip = chip;
    r.sensor = "pwm" + std::to_string(pwm.index);
    r.id = chip + "/" + r.sensor;
    r.kind = Kind::pwm;
    r.label = r.sensor;
    if (pwm.duty) {
      r.value = *pwm.duty * 100.0 / 255.0;
    }
    out.push_back(std::move(r));
  }
}

class SysfsSource final : public Source {
 public:
  explicit SysfsSource(stdfs::path root) : root_(std::move(root)) {}
  std::string_view name() const override { return "sysfs"; }

  Report poll() override {
    Report report;
    report.source = "sysfs";
    report.time = std::chrono::system_clock::now();
    auto dirs = hwmonDirectories(root_);
    if (dirs.empty()) {
      report.problem = "no hwmon devices under " + (root_ / "class/hwmon").string();
    }
    for (const auto& dir : dirs) {
      if (auto chip = chipName(dir)) {
        readChip(dir, *chip, report.readings);
      }
    }
    return report;
  }

 private:
  stdfs::path root_;
};

}  // namespace

std::optional<std::string> chipName(const stdfs::path& hwmonDir) {
  auto name = readAttribute(hwmonDir / "name");
  if (!name || name->empty()) {
    return std::nullopt;
  }
  std::error_code ec;
  auto device = stdfs::canonical(hwmonDir / "device", ec);
  if (ec) {
    return *name + "-virtual-0";
  }
  auto subsystem = stdfs::canonical(device / "subsystem", ec).filename().string();
  auto deviceName = device.filename().string();
  std::array<char, 128> text{};
  int n = -1;
  if (subsystem == "i2c") {
    unsigned bus = 0;
    unsigned address = 0;
    if (std::sscanf(deviceName.c_str(), "%u-%x", &bus, &address) == 2) {
      n = std::snprintf(text.data(), text.size(), "%s-i2c-%u-%02x", name->c_str(), bus, address);
    }
  } else if (subsystem == "platform" || subsystem == "of_platform") {
    unsigned address = 0;
    if (std::sscanf(deviceName.c_str(), "%*[a-z0-9_].%u", &address) != 1) {
      address = 0;
    }
    n = std::snprintf(text.data(), text.size(), "%s-isa-%04x", name->c_str(), address);
  } else if (subsystem == "pci") {
    unsigned domain = 0;
    unsigned bus = 0;
    unsigned slot = 0;
    unsigned function = 0;
    if (std::sscanf(deviceName.c_str(), "%x:%x:%x.%x", &domain, &bus, &slot, &function) == 4) {
      unsigned address = (domain << 16) + (bus << 8) + (slot << 3) + function;
      n = std::snprintf(text.data(), text.size(), "%s-pci-%04x", name->c_str(), address);
    }
  } else if (subsystem == "acpi") {
    n = std::snprintf(text.data(), text.size(), "%s-acpi-0", name->c_str());
  }
  if (n <= 0) {
    return *name + "-virtual-0";
  }
  return std::string(text.data(),
                     std::min<std::size_t>(static_cast<std::size_t>(n), text.size() - 1));
}

std::vector<PwmChannel> listPwm(const stdfs::path& hwmonDir) {
  std::vector<PwmChannel> channels;
  for (int index = 1; index <= 16; ++index) {
    auto file = hwmonDir / ("pwm" + std::to_string(index));
    if (!stdfs::exists(file)) {
      continue;
    }
    PwmChannel channel;
    channel.hwmonDir = hwmonDir;
    channel.index = index;
    if (auto duty = readInteger(file); duty && *duty >= 0 && *duty <= 255) {
      channel.duty = static_cast<int>(*duty);
    }
    if (auto enable = readInteger(hwmonDir / ("pwm" + std::to_string(index) + "_enable"))) {
      channel.enable = static_cast<int>(*enable);
    }
    channels.push_back(channel);
  }
  return channels;
}

void setPwm(const stdfs::path& hwmonDir, int index, int duty) {
  if (duty < 0 || duty > 255) {
    throw std::system_error(EINVAL, std::generic_category(),
                            "PWM duty " + std::to_string(duty) + " is not 0..255");
  }
  auto base = hwmonDir / ("pwm" + std::to_string(index));
  if (stdfs::exists(base.string() + "_enable")) {
    writeAttribute(base.string() + "_enable", "1");
  }
  writeAttribute(base, std::to_string(duty));
}

std::unique_ptr<Source> makeSysfsSource(const stdfs::path& sysfsRoot) {
  return std::make_unique<SysfsSource>(sysfsRoot);
}

}  // namespace aibox::hwmon
