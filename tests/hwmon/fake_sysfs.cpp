#include "tests/hwmon/fake_sysfs.hpp"

#include <system_error>

namespace aibox::hwmon::test {

namespace stdfs = std::filesystem;

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
