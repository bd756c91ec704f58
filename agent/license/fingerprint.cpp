// The machine fingerprint: parts of the box that identify it, each hashed. Every file is read
// under the root, so tests give a fake sysfs, DMI and mount table.
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "agent/license/license.hpp"

namespace aibox::agent::license {
namespace {

namespace fsys = std::filesystem;

std::string hashOf(std::string_view kind, std::string_view value) {
  std::string input = "aibox-fingerprint-v1\n";
  input += kind;
  input += '\n';
  input += value;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned length = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < length; ++i) {
    out += kDigits[digest[i] >> 4];
    out += kDigits[digest[i] & 0xf];
  }
  return out;
}

// The trimmed first line of a file; empty when it cannot be read.
std::string readValue(const fsys::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  auto begin = line.find_first_not_of(" \t\r");
  auto end = line.find_last_not_of(" \t\r");
  return begin == std::string::npos ? "" : line.substr(begin, end - begin + 1);
}

// Firmware fills unset DMI fields with placeholders that many boxes share.
bool placeholder(std::string value) {
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::set<std::string, std::less<>> kPlaceholders{
      "not specified",
      "to be filled by o.e.m.",
      "default string",
      "none",
      "n/a",
      "0",
      "system serial number",
      "03000200-0400-0500-0006-000700080009",
      "123456789"};
  if (kPlaceholders.contains(value)) {
    return true;
  }
  return std::all_of(value.begin(), value.end(), [](char c) { return c == '0' || c == '-'; }) ||
         std::all_of(value.begin(), value.end(), [](char c) { return c == 'f' || c == '-'; });
}

void addDmi(const fsys::path& root, std::string_view kind, std::string_view file,
            Fingerprint& out) {
  // Only root may read these; the agent's unit copies them to /run/aibox/dmi before it starts.
  auto path = root / "sys/class/dmi/id" / file;
  auto value = readValue(path);
  if (value.empty()) {
    value = readValue(root / "run/aibox/dmi" / file);
  }
  if (value.empty() || placeholder(value)) {
    out.missing.push_back(
        std::string(kind) + ": " +
        (value.empty() ? "cannot read " + path.string() : "not set by the firmware"));
    return;
  }
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  out.components.push_back({std::string(kind), std::string(file), hashOf(kind, value)});
}

// The device numbers of the file system mounted at "/", from the mount table.
std::optional<std::string> rootDevice(const fsys::path& root) {
  std::ifstream in(root / "proc/self/mountinfo");
  std::string line;
  std::optional<std::string> found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, subtree, mountPoint;
    fields >> id >> parent >> device >> subtree >> mountPoint;
    if (mountPoint == "/") {
      found = device;  // the last mount over "/" is the one in use
    }
  }
  return found;
}

void addBootDisk(const fsys::path& root, Fingerprint& out) {
  auto device = rootDevice(root);
  if (!device || device->starts_with("0:")) {
    out.missing.push_back("boot_disk: \"/\" is not on a block device (a container or a RAM disk)");
    return;
  }
  std::error_code ec;
  auto node = fsys::canonical(root / "sys/dev/block" / *device, ec);
  if (ec) {
    out.missing.push_back("boot_disk: no " + (root / "sys/dev/block" / *device).string());
    return;
  }
  if (fsys::exists(node / "partition")) {
    node = node.parent_path();
  }
  std::string serial;
  for (const char* file : {"device/serial", "serial", "device/wwid", "wwid"}) {
    serial = readValue(node / file);
    if (!serial.empty()) {
      break;
    }
  }
  if (serial.empty()) {
    // SATA and SAS disks: udev's database has the serial.
    auto dev = readValue(node / "dev");
    std::ifstream in(root / "run/udev/data" / ("b" + dev));
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("E:ID_SERIAL_SHORT=") ||
          (serial.empty() && line.starts_with("E:ID_SERIAL="))) {
        serial = line.substr(line.find('=') + 1);
      }
    }
  }
  if (serial.empty()) {
    out.missing.push_back("boot_disk: " + node.filename().string() + " has no serial number");
    return;
  }
  out.components.push_back({"boot_disk", node.filename().string(), hashOf("boot_disk", serial)});
}

// The first onboard NIC: a physical device (with a "device" link), eno* names first, then
// other en*, then the rest, each group by name.
void addNic(const fsys::path& root, Fingerprint& out) {
  std::vector<std::pair<int, std::string>> candidates;
  std::error_code ec;
  for (const auto& entry : fsys::directory_iterator(root / "sys/class/net", ec)) {
    auto name = entry.path().filename().string();
    if (!fsys::exists(entry.path() / "device") || fsys::exists(entry.path() / "phy80211")) {
      continue;
    }
    int rank = name.starts_with("eno") ? 0 : name.starts_with("en") ? 1 : 2;
    candidates.emplace_back(rank, name);
  }
  std::sort(candidates.begin(), candidates.end());
  for (const auto& [rank, name] : candidates) {
    auto mac = readValue(root / "sys/class/net" / name / "address");
    std::transform(mac.begin(), mac.end(), mac.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (mac.size() == 17 && mac != "00:00:00:00:00:00") {
      out.components.push_back({"nic", name, hashOf("nic", mac)});
      return;
    }
  }
  out.missing.push_back("nic: no physical network interface with an address in " +
                        (root / "sys/class/net").string());
}

}  // namespace

Fingerprint readFingerprint(const std::filesystem::path& root,
                            const std::vector<std::string>& gpuUuids) {
  Fingerprint out;
  addDmi(root, "dmi_product_uuid", "product_uuid", out);
  addDmi(root, "dmi_board_serial", "board_serial", out);
  for (std::size_t i = 0; i < gpuUuids.size(); ++i) {
    out.components.push_back({"gpu", "GPU " + std::to_string(i), hashOf("gpu", gpuUuids[i])});
  }
  addBootDisk(root, out);
  addNic(root, out);
  return out;
}

boost::json::object fingerprintJson(const Fingerprint& fingerprint) {
  boost::json::array components;
  boost::json::array parts;
  for (const auto& c : fingerprint.components) {
    components.emplace_back(c.id());
    parts.push_back(boost::json::object{{"kind", c.kind}, {"label", c.label}, {"hash", c.hash}});
  }
  boost::json::array missing;
  for (const auto& m : fingerprint.missing) {
    missing.emplace_back(m);
  }
  return {{"components", components}, {"parts", parts}, {"missing", missing}};
}

std::variant<std::vector<std::string>, std::string> fingerprintComponents(
    const boost::json::object& fingerprint) {
  // A provisioning report (aibox-provision): its report's fingerprint.
  if (const auto* report = fingerprint.if_contains("report");
      report != nullptr && report->is_object()) {
    return fingerprintComponents(report->get_object());
  }
  // The agent's answer, or its "fingerprint" field (GET /api/v1/license).
  const auto* inner = fingerprint.if_contains("fingerprint");
  const auto& o = inner != nullptr && inner->is_object() ? inner->get_object() : fingerprint;
  const auto* components = o.if_contains("components");
  if (components == nullptr || !components->is_array() || components->get_array().empty()) {
    return std::string(
        "a fingerprint needs a non-empty 'components' list (the output of "
        "'aiboxctl license fingerprint --json' on the box)");
  }
  std::vector<std::string> out;
  for (const auto& c : components->get_array()) {
    if (!c.is_string() || c.get_string().find(':') == boost::json::string::npos) {
      return std::string("each fingerprint component is \"kind:hash\"");
    }
    out.emplace_back(c.get_string());
  }
  return out;
}

std::size_t matchCount(const License& license, const Fingerprint& fingerprint, bool gpusPending) {
  std::set<std::string> have;
  for (const auto& c : fingerprint.components) {
    have.insert(c.id());
  }
  std::set<std::string> wanted(license.components.begin(), license.components.end());
  return static_cast<std::size_t>(
      std::count_if(wanted.begin(), wanted.end(), [&have, gpusPending](const std::string& c) {
        return have.contains(c) || (gpusPending && c.starts_with("gpu:"));
      }));
}

}  // namespace aibox::agent::license
