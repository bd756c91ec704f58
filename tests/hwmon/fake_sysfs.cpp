#include "tests/hwmon/fake_sysfs.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace aibox::hwmon::test {

namespace stdfs = std::filesystem;

TempDir::TempDir() {
  std::string pattern = (stdfs::temp_directory_path() / "aibox-hwmon-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  stdfs::remove_all(path_, ec);
}

void writeFile(const stdfs::path& path, const std::string& text) {
  stdfs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

std::string readFile(const stdfs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

stdfs::path addHwmon(const stdfs::path& root, int index, const std::string& name,
                     const FakeDevice& device, const Attributes& attributes) {
  std::string hwmon = "hwmon" + std::to_string(index);
  auto deviceDir = root / "devices" / device.path;
  auto dir = deviceDir / "hwmon" / hwmon;
  stdfs::create_directories(dir);
  // sysfs ends attribute values with a newline; the readers must cope with it.
  writeFile(dir / "name", name + "\n");
  for (const auto& [attribute, value] : attributes) {
    writeFile(dir / attribute, value + "\n");
  }
  if (!device.bus.empty()) {
    stdfs::create_directories(root / "bus" / device.bus);
    if (!stdfs::is_symlink(deviceDir / "subsystem")) {
      stdfs::create_directory_symlink(root / "bus" / device.bus, deviceDir / "subsystem");
    }
    // Relative and ending in the device's name, as the kernel makes it: libsensors takes the
    // device name from the link's last component.
    stdfs::create_directory_symlink(stdfs::path("../../..") / deviceDir.filename(), dir / "device");
  }
  auto classDir = root / "class/hwmon";
  stdfs::create_directories(classDir);
  stdfs::create_directory_symlink(dir, classDir / hwmon);
  return classDir / hwmon;
}

}  // namespace aibox::hwmon::test
