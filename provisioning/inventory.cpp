// Step 1, inventory: what the box has (CPU, memory, disks, NICs from /proc and sysfs; GPUs,
// PSUs, fans and UPSes from the agent's hardware sources), compared with the SKU.
#include <boost/json/array.hpp>
#include <chrono>
#include <set>
#include <sstream>

#include "agent/hardware/hardware.hpp"
#include "agent/license/license.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {
namespace {

namespace stdfs = std::filesystem;

std::string trimmed(std::string text) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

std::string fileText(const stdfs::path& file) {
  return trimmed(readText(file).value_or(""));
}

void readCpu(const config::Paths& paths, Inventory& out) {
  auto text = readText(paths.under("/proc/cpuinfo"));
  if (!text) {
    out.problems.push_back("cannot read " + paths.under("/proc/cpuinfo").string());
    return;
  }
  std::istringstream in(*text);
  std::set<std::string> packages;
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    auto key = trimmed(line.substr(0, colon));
    auto value = trimmed(line.substr(colon + 1));
    if (key == "processor") {
      ++out.cpuThreads;
    } else if (key == "model name" && out.cpuModel.empty()) {
      out.cpuModel = value;
    } else if (key == "physical id") {
      packages.insert(value);
    }
  }
  out.cpuPackages =
      packages.empty() && out.cpuThreads > 0 ? 1 : static_cast<std::int64_t>(packages.size());
}

void readMemory(const config::Paths& paths, Inventory& out) {
  auto text = readText(paths.under("/proc/meminfo"));
  if (!text) {
    out.problems.push_back("cannot read " + paths.under("/proc/meminfo").string());
    return;
  }
  std::istringstream in(*text);
  for (std::string key; in >> key;) {
    std::int64_t kib = 0;
    if (key == "MemTotal:" && in >> kib) {
      out.memoryBytes = kib * 1024;
      return;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
}

void readDisks(const stdfs::path& sysfs, Inventory& out) {
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(sysfs / "block", ec)) {
    auto name = entry.path().filename().string();
    if (name.starts_with("loop") || name.starts_with("ram") || name.starts_with("dm-") ||
        name.starts_with("zram") || name.starts_with("sr") ||
        !stdfs::exists(entry.path() / "device")) {
      continue;
    }
    Inventory::Part disk;
    disk.name = name;
    disk.model = fileText(entry.path() / "device/model");
    try {
      disk.bytes = std::stoll(fileText(entry.path() / "size")) * 512;
    } catch (const std::exception&) {
      disk.bytes = 0;
    }
    out.disks.push_back(std::move(disk));
  }
  std::sort(out.disks.begin(), out.disks.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
}

void readNics(const stdfs::path& sysfs, Inventory& out) {
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(sysfs / "class/net", ec)) {
    if (!stdfs::exists(entry.path() / "device")) {
      continue;  // lo, bridges, tunnels: not a part of the box
    }
    Inventory::Part nic;
    nic.name = entry.path().filename().string();
    try {
      nic.speedMbps = std::max(0LL, std::stoll(fileText(entry.path() / "speed")));
    } catch (const std::exception&) {
      nic.speedMbps = 0;  // link down: the kernel answers -1 or refuses the read
    }
    nic.model =
        fileText(entry.path() / "device/vendor") + ":" + fileText(entry.path() / "device/device");
    out.nics.push_back(std::move(nic));
  }
  std::sort(out.nics.begin(), out.nics.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
}

void readSensors(const agent::hardware::Settings& settings, Inventory& out) {
  hwmon::Monitor monitor(settings.overrides);
  std::set<std::string> psus;
  for (auto& polled : agent::hardware::makeSources(settings)) {
    auto report = polled.source->poll();
    monitor.evaluate(report);
    out.simulated = out.simulated || report.simulated;
    if (report.problem) {
      out.problems.push_back(report.source + ": " + *report.problem);
    }
    for (auto& gpu : report.gpus) {
      out.gpus.push_back(std::move(gpu));
    }
    for (auto& ups : report.upses) {
      out.upses.push_back(std::move(ups));
    }
    for (auto& reading : report.readings) {
      if (reading.chip.starts_with("gpu-") || reading.chip.starts_with("ups-")) {
        out.readings.push_back(std::move(reading));
        continue;
      }
      if (reading.chip.starts_with("pmbus") || reading.label.starts_with("PSU")) {
        psus.insert(reading.chip);
      } else if (reading.kind == hwmon::Kind::fan && reading.value) {
        ++out.fans;
      }
      out.readings.push_back(std::move(reading));
    }
  }
  out.psus.assign(psus.begin(), psus.end());
}

std::string gib(std::int64_t bytes) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << static_cast<double>(bytes) / (1LL << 30) << " GiB";
  return s.str();
}

void compareCounts(StepResult& r, const std::string& check, const std::string& what,
                   std::optional<std::int64_t> expected, std::int64_t found) {
  if (!expected) {
    return;
  }
  bool ok = found == *expected;
  r.findings.push_back(
      {check, ok,
       what + ": " + std::to_string(found) + " found, the SKU has " + std::to_string(*expected)});
}

// Parts matching each rule of the SKU, taken in order so that one part counts for one rule.
template <typename Item>
void compareParts(StepResult& r, const std::string& check, const std::string& what,
                  const std::vector<CountRule>& rules, const std::vector<Item>& items,
                  const std::function<std::string(const Item&)>& model,
                  const std::function<bool(const CountRule&, const Item&)>& fits) {
  if (rules.empty()) {
    return;
  }
  std::vector<bool> used(items.size(), false);
  std::size_t wanted = 0;
  for (const auto& rule : rules) {
    wanted += static_cast<std::size_t>(rule.count);
    std::int64_t matched = 0;
    for (std::size_t i = 0; i < items.size() && matched < rule.count; ++i) {
      if (!used[i] && model(items[i]).find(rule.model) != std::string::npos &&
          fits(rule, items[i])) {
        used[i] = true;
        ++matched;
      }
    }
    std::string name = rule.model.empty() ? what : what + " '" + rule.model + "'";
    if (rule.minGib > 0) {
      name += " of at least " + std::to_string(rule.minGib) + " GiB";
    }
    r.findings.push_back({check, matched == rule.count,
                          name + ": " + std::to_string(matched) + " found, the SKU has " +
                              std::to_string(rule.count)});
  }
  std::vector<std::string> extra;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!used[i]) {
      extra.push_back(model(items[i]));
    }
  }
  if (!extra.empty() && items.size() > wanted) {
    std::string list;
    for (const auto& e : extra) {
      list += (list.empty() ? "" : ", ") + e;
    }
    r.findings.push_back({check, false, what + " not in the SKU: " + list});
  }
}

}  // namespace

StepResult inventoryStep(Box& box, const Manifest& manifest) {
  StepResult r;
  Inventory& inv = box.inventory;
  inv = Inventory{};
  readCpu(box.paths, inv);
  readMemory(box.paths, inv);
  readDisks(box.settings.hardware.sysfsRoot, inv);
  readNics(box.settings.hardware.sysfsRoot, inv);
  readSensors(box.settings.hardware, inv);
  box.fingerprint = agent::license::readFingerprint(box.paths.root(), box.gpuUuids());
  box.inventoryDone = true;

  const Sku& sku = manifest.sku;
  if (sku.cpu) {
    bool model = inv.cpuModel.find(sku.cpu->model) != std::string::npos;
    r.findings.push_back({"inventory.cpu", model && inv.cpuPackages == sku.cpu->count,
                          "CPU: " + std::to_string(inv.cpuPackages) + " x '" + inv.cpuModel +
                              "' found, the SKU has " + std::to_string(sku.cpu->count) + " x '" +
                              sku.cpu->model + "'"});
  }
  if (sku.memoryGib) {
    r.findings.push_back({"inventory.memory", inv.memoryBytes >= *sku.memoryGib << 30,
                          "memory: " + gib(inv.memoryBytes) + " found, the SKU needs at least " +
                              std::to_string(*sku.memoryGib) + " GiB"});
  }
  std::vector<hwmon::Gpu> gpus;
  std::copy_if(inv.gpus.begin(), inv.gpus.end(), std::back_inserter(gpus),
               [](const hwmon::Gpu& g) { return g.present; });
  compareParts<hwmon::Gpu>(
      r, "inventory.gpus", "GPUs", sku.gpus, gpus, [](const hwmon::Gpu& g) { return g.name; },
      [](const CountRule&, const hwmon::Gpu&) { return true; });
  compareParts<Inventory::Part>(
      r, "inventory.disks", "disks", sku.disks, inv.disks,
      [](const Inventory::Part& d) { return d.model.empty() ? d.name : d.model; },
      [](const CountRule& rule, const Inventory::Part& d) { return d.bytes >= rule.minGib << 30; });
  if (sku.nics) {
    std::int64_t fast = std::count_if(inv.nics.begin(), inv.nics.end(), [&sku](const auto& n) {
      return n.speedMbps >= sku.nics->minSpeedMbps;
    });
    std::string speed = sku.nics->minSpeedMbps > 0
                            ? " at " + std::to_string(sku.nics->minSpeedMbps) + " Mb/s or more"
                            : "";
    compareCounts(r, "inventory.nics", "NICs" + speed, sku.nics->count, fast);
  }
  compareCounts(r, "inventory.psus", "PSUs", sku.psus, static_cast<std::int64_t>(inv.psus.size()));
  compareCounts(r, "inventory.fans", "fans", sku.fans, inv.fans);
  compareCounts(r, "inventory.ups", "UPSes", sku.upses,
                static_cast<std::int64_t>(inv.upses.size()));
  if (!inv.problems.empty()) {
    auto& problems = r.details["problems"].emplace_array();
    for (const auto& problem : inv.problems) {
      problems.emplace_back(problem);
    }
  }
  conclude(r, manifest);
  std::size_t differences =
      std::count_if(r.findings.begin(), r.findings.end(), [](const Finding& f) { return !f.ok; });
  r.message = differences == 0
                  ? "the box matches SKU " + sku.name
                  : std::to_string(differences) + " difference(s) from SKU " + sku.name;
  if (inv.simulated) {
    r.message += " (simulated hardware)";
  }
  r.details["inventory"] = inventoryJson(inv);
  return r;
}

boost::json::object inventoryJson(const Inventory& inv) {
  boost::json::array gpus;
  for (const auto& g : inv.gpus) {
    gpus.push_back({{"index", g.index},
                    {"name", g.name},
                    {"uuid", g.uuid},
                    {"serial", g.serial},
                    {"pci_bus_id", g.pciBusId},
                    {"present", g.present}});
  }
  auto parts = [](const std::vector<Inventory::Part>& list, bool nic) {
    boost::json::array out;
    for (const auto& p : list) {
      boost::json::object o{{"name", p.name}, {"model", p.model}};
      if (nic) {
        o["speed_mbps"] = p.speedMbps;
      } else {
        o["bytes"] = p.bytes;
      }
      out.push_back(std::move(o));
    }
    return out;
  };
  boost::json::array upses;
  for (const auto& u : inv.upses) {
    boost::json::array flags;
    for (const auto& f : u.statusFlags) {
      flags.emplace_back(f);
    }
    upses.push_back({{"name", u.name},
                     {"model", u.manufacturer.empty() ? u.model : u.manufacturer + " " + u.model},
                     {"status", flags},
                     {"communicating", u.communicating}});
  }
  boost::json::array psus;
  for (const auto& p : inv.psus) {
    psus.emplace_back(p);
  }
  return {{"cpu",
           {{"model", inv.cpuModel}, {"packages", inv.cpuPackages}, {"threads", inv.cpuThreads}}},
          {"memory_bytes", inv.memoryBytes},
          {"gpus", gpus},
          {"disks", parts(inv.disks, false)},
          {"nics", parts(inv.nics, true)},
          {"psus", psus},
          {"fans", inv.fans},
          {"upses", upses},
          {"sensors", inv.readings.size()},
          {"simulated", inv.simulated}};
}

}  // namespace aibox::provisioning
