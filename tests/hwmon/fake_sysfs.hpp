#pragma once
// Fake sysfs trees for the hwmon tests: hwmon class directories with the device and subsystem
// links the kernel makes, so that both libsensors and the sysfs source name chips as they would
// on a real board.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/files.hpp"
#include "tests/support/mount_sandbox.hpp"

namespace aibox::hwmon::test {

using aibox::test::enterPrivateMountNamespace;
using aibox::test::Mount;
using aibox::test::readFile;
using aibox::test::TempDir;
using aibox::test::writeFile;

using Attributes = std::vector<std::pair<std::string, std::string>>;

// Where a chip hangs: the device directory below <root>/devices and its bus below <root>/bus.
// An empty `bus` makes a virtual chip: no device link at all.
struct FakeDevice {
  std::string path;  // below devices/: "platform/nct6775.656", "virtual"
  std::string bus;   // "platform", "i2c", "pci", or empty
};

// Makes <root>/devices/<device.path>/hwmon/hwmon<index> with `name` and `attributes`, links
// <root>/class/hwmon/hwmon<index> to it (absolute, so the link still works when <root>/class is
// bind-mounted over /sys/class), and gives the device its subsystem link. Returns the class path.
std::filesystem::path addHwmon(const std::filesystem::path& root, int index,
                               const std::string& name, const FakeDevice& device,
                               const Attributes& attributes);

}  // namespace aibox::hwmon::test
