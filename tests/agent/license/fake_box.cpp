#include "tests/agent/license/fake_box.hpp"

#include <chrono>
#include <stdexcept>

#include "provisioning/license/issue.hpp"
#include "tests/support/files.hpp"

namespace aibox::test {

void FakeBox::write(const std::filesystem::path& root) const {
  namespace fs = std::filesystem;
  writeFile(root / "sys/class/dmi/id/product_uuid", productUuid + "\n");
  writeFile(root / "sys/class/dmi/id/board_serial", boardSerial + "\n");
  writeFile(root / "proc/self/mountinfo",
            "22 1 0:21 / /proc rw - proc proc rw\n"
            "26 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw\n");
  auto disk = root / "sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1";
  writeFile(disk / "nvme0n1p2/partition", "2\n");
  writeFile(disk / "nvme0n1p2/dev", "259:2\n");
  writeFile(disk / "dev", "259:0\n");
  writeFile(disk / "device/serial", diskSerial + "\n");
  fs::create_directories(root / "sys/dev/block");
  auto link = root / "sys/dev/block/259:2";
  std::error_code ec;
  fs::remove(link, ec);
  fs::create_directory_symlink(
      "../../devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1/nvme0n1p2", link);
  auto nic = root / "sys/class/net/eno1";
  fs::create_directories(nic / "device");
  writeFile(nic / "address", mac + "\n");
  // Not onboard and not physical: skipped.
  fs::create_directories(root / "sys/class/net/docker0");
  writeFile(root / "sys/class/net/docker0/address", "02:42:ac:11:00:01\n");
}

std::string testVendorKey() {
  return readFile(AIBOX_TEST_VENDOR_KEY);
}

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string issueLicense(const std::vector<std::string>& components,
                         const boost::json::object& fields, std::int64_t now,
                         const std::string& key) {
  boost::json::object request{
      {"id", "LIC-TEST-1"}, {"customer", "Example Corp"}, {"days", 365}, {"grace_days", 14}};
  for (const auto& f : fields) {
    request[f.key()] = f.value();
  }
  if (request.contains("not_after")) {
    request.erase("days");
  }
  auto document =
      provisioning::license::buildDocument({request, components}, now == 0 ? unixNow() : now);
  if (auto* problem = std::get_if<std::string>(&document)) {
    throw std::runtime_error("cannot build the test license: " + *problem);
  }
  auto file = provisioning::license::signFile(std::get<boost::json::object>(document), key);
  if (file.index() == 1) {
    throw std::runtime_error("cannot sign the test license: " + std::get<1>(file));
  }
  return std::get<0>(file);
}

}  // namespace aibox::test
