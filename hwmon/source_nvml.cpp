// NVIDIA GPUs through NVML, loaded at run time: a box without the driver still runs, and says
// why it has no GPUs.
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>

#include "hwmon/hwmon.hpp"
#include "hwmon/nvml_abi.hpp"

namespace aibox::hwmon {
namespace {

// XIDs that mean the GPU or its memory is failing (NVIDIA's XID catalogue); the others are
// mostly application faults.
constexpr std::array kCriticalXids{48U, 61U, 62U, 63U, 64U, 74U, 79U, 92U, 94U, 95U};

struct Api {
  nvml::InitFn init = nullptr;
  nvml::ShutdownFn shutdown = nullptr;
  nvml::ErrorStringFn errorString = nullptr;
  nvml::GetCountFn getCount = nullptr;
  nvml::GetHandleByIndexFn getHandleByIndex = nullptr;
  nvml::GetStringFn getName = nullptr;
  nvml::GetStringFn getUuid = nullptr;
  nvml::GetStringFn getSerial = nullptr;
  nvml::GetPciInfoFn getPciInfo = nullptr;
  nvml::GetTemperatureFn getTemperature = nullptr;
  nvml::GetTemperatureThresholdFn getTemperatureThreshold = nullptr;
  nvml::GetUnsignedFn getPowerUsage = nullptr;
  nvml::GetUnsignedFn getPowerLimit = nullptr;
  nvml::GetUtilizationFn getUtilization = nullptr;
  nvml::GetMemoryFn getMemory = nullptr;
  nvml::GetUnsignedFn getFanSpeed = nullptr;
  nvml::GetClockFn getClock = nullptr;
  nvml::GetThrottleReasonsFn getThrottleReasons = nullptr;
  nvml::GetEccFn getEcc = nullptr;
  nvml::EventSetCreateFn eventSetCreate = nullptr;
  nvml::RegisterEventsFn registerEvents = nullptr;
  nvml::EventSetWaitFn eventSetWait = nullptr;
  nvml::EventSetFreeFn eventSetFree = nullptr;
};

// Loads every symbol; the name of the first one missing, if any.
template <class Fn>
bool load(void* library, const char* symbol, Fn& fn, std::string& missing) {
  fn = reinterpret_cast<Fn>(::dlsym(library, symbol));
  if (fn == nullptr && missing.empty()) {
    missing = symbol;
  }
  return fn != nullptr;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "00000000:17:00.0" → "0000:17:00.0", as lspci and sysfs write it.
std::string shortBusId(std::string busId) {
  auto colon = busId.find(':');
  if (colon != std::string::npos && colon > 4) {
    busId.erase(0, colon - 4);
  }
  return lower(busId);
}

class NvmlSource final : public Source {
 public:
  explicit NvmlSource(std::string library) : libraryName_(std::move(library)) {}
  NvmlSource(const NvmlSource&) = delete;
  NvmlSource& operator=(const NvmlSource&) = delete;
  ~NvmlSource() override {
    if (events_ != nullptr) {
      api_.eventSetFree(events_);
    }
    if (initialised_) {
      api_.shutdown();
    }
    if (library_ != nullptr) {
      ::dlclose(library_);
    }
  }

  std::string_view name() const override { return "nvml"; }

  Report poll() override {
    Report report;
    report.source = "nvml";
    report.time = std::chrono::system_clock::now();
    if (!initialised_ && !start(report)) {
      return report;
    }
    unsigned count = 0;
    if (auto rc = api_.getCount(&count); rc != nvml::kSuccess) {
      report.problem = "NVML cannot count GPUs: " + error(rc);
      count = 0;
    }
    std::map<std::string, bool> seen;
    for (unsigned i = 0; i < count; ++i) {
      nvml::Device device = nullptr;
      if (api_.getHandleByIndex(i, &device) != nvml::kSuccess) {
        continue;
      }
      Gpu gpu = read(device, static_cast<int>(i));
      if (gpu.uuid.empty()) {
        continue;
      }
      seen[gpu.uuid] = true;
      if (!known_.contains(gpu.uuid)) {
        registerXid(device);
      }
      devices_[device] = gpu.uuid;
      known_[gpu.uuid] = gpu;
    }
    drainXid(report);
    for (auto& [uuid, gpu] : known_) {
      if (!seen.contains(uuid)) {
        Gpu gone;
        gone.index = gpu.index;
        gone.chip = gpu.chip;
        gone.name = gpu.name;
        gone.uuid = gpu.uuid;
        gone.serial = gpu.serial;
        gone.pciBusId = gpu.pciBusId;
        gone.lastXid = gpu.lastXid;
        gone.present = false;
        gone.problem = "NVML no longer sees this GPU (fallen off the bus or lost)";
        gpu = gone;
      }
      addReadings(gpu, report.readings);
      report.gpus.push_back(gpu);
    }
    std::sort(report.gpus.begin(), report.gpus.end(),
              [](const Gpu& a, const Gpu& b) { return a.pciBusId < b.pciBusId; });
    return report;
  }

 private:
  std::string error(nvml::Return rc) const {
    const char* text = api_.errorString != nullptr ? api_.errorString(rc) : nullptr;
    return (text != nullptr ? std::string(text) : "error") + " (" + std::to_string(rc) + ")";
  }

  bool start(Report& report) {
    if (library_ == nullptr) {
      library_ = ::dlopen(libraryName_.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (library_ == nullptr) {
        const char* why = ::dlerror();
        report.problem = "no NVIDIA driver: cannot load " + libraryName_ + " (" +
                         (why != nullptr ? why : "unknown error") +
                         "); install the driver or set [hardware] nvml_library";
        return false;
      }
      std::string missing;
      load(library_, "nvmlInit_v2", api_.init, missing);
      load(library_, "nvmlShutdown", api_.shutdown, missing);
      load(library_, "nvmlErrorString", api_.errorString, missing);
      load(library_, "nvmlDeviceGetCount_v2", api_.getCount, missing);
      load(library_, "nvmlDeviceGetHandleByIndex_v2", api_.getHandleByIndex, missing);
      load(library_, "nvmlDeviceGetName", api_.getName, missing);
      load(library_, "nvmlDeviceGetUUID", api_.getUuid, missing);
      load(library_, "nvmlDeviceGetSerial", api_.getSerial, missing);
      load(library_, "nvmlDeviceGetPciInfo_v3", api_.getPciInfo, missing);
      load(library_, "nvmlDeviceGetTemperature", api_.getTemperature, missing);
      load(library_, "nvmlDeviceGetTemperatureThreshold", api_.getTemperatureThreshold, missing);
      load(library_, "nvmlDeviceGetPowerUsage", api_.getPowerUsage, missing);
      load(library_, "nvmlDeviceGetEnforcedPowerLimit", api_.getPowerLimit, missing);
      load(library_, "nvmlDeviceGetUtilizationRates", api_.getUtilization, missing);
      load(library_, "nvmlDeviceGetMemoryInfo", api_.getMemory, missing);
      load(library_, "nvmlDeviceGetFanSpeed", api_.getFanSpeed, missing);
      load(library_, "nvmlDeviceGetClockInfo", api_.getClock, missing);
      load(library_, "nvmlDeviceGetCurrentClocksThrottleReasons", api_.getThrottleReasons, missing);
      load(library_, "nvmlDeviceGetTotalEccErrors", api_.getEcc, missing);
      load(library_, "nvmlEventSetCreate", api_.eventSetCreate, missing);
      load(library_, "nvmlDeviceRegisterEvents", api_.registerEvents, missing);
      load(library_, "nvmlEventSetWait_v2", api_.eventSetWait, missing);
      load(library_, "nvmlEventSetFree", api_.eventSetFree, missing);
      if (!missing.empty()) {
        report.problem = libraryName_ + " lacks " + missing + ": the NVIDIA driver is too old";
        ::dlclose(library_);
        library_ = nullptr;
        return false;
      }
    }
    if (auto rc = api_.init(); rc != nvml::kSuccess) {
      report.problem = "NVML cannot start: " + error(rc) + "; is the NVIDIA driver loaded?";
      return false;
    }
    initialised_ = true;
    if (api_.eventSetCreate(&events_) != nvml::kSuccess) {
      events_ = nullptr;
    }
    return true;
  }

  void registerXid(nvml::Device device) {
    if (events_ != nullptr) {
      api_.registerEvents(device, nvml::kEventXidCriticalError, events_);
    }
  }

  void drainXid(Report& report) {
    if (events_ == nullptr) {
      return;
    }
    nvml::EventData data{};
    while (api_.eventSetWait(events_, &data, 0) == nvml::kSuccess) {
      if (data.eventType != nvml::kEventXidCriticalError) {
        continue;
      }
      auto uuid = devices_.find(data.device);
      if (uuid == devices_.end()) {
        continue;
      }
      auto& gpu = known_[uuid->second];
      auto xid = static_cast<unsigned>(data.eventData);
      gpu.lastXid = xid;
      bool critical =
          std::find(kCriticalXids.begin(), kCriticalXids.end(), xid) != kCriticalXids.end();
      report.events.push_back({report.time, gpu.chip, "nvml",
                               critical ? Status::critical : Status::warning, "gpu_xid",
                               "GPU " + std::to_string(gpu.index) + " (" + gpu.name + ", " +
                                   gpu.pciBusId + ") reported XID " + std::to_string(xid),
                               static_cast<double>(xid)});
    }
  }

  Gpu read(nvml::Device device, int index) {
    Gpu gpu;
    gpu.index = index;
    std::array<char, nvml::kUuidBufferSize> text{};
    if (api_.getUuid(device, text.data(), text.size()) == nvml::kSuccess) {
      gpu.uuid = text.data();
    }
    if (auto old = known_.find(gpu.uuid); old != known_.end()) {
      gpu.lastXid = old->second.lastXid;
    }
    if (api_.getName(device, text.data(), text.size()) == nvml::kSuccess) {
      gpu.name = text.data();
    }
    if (api_.getSerial(device, text.data(), nvml::kSerialBufferSize) == nvml::kSuccess) {
      gpu.serial = text.data();
    }
    nvml::PciInfo pci{};
    if (api_.getPciInfo(device, &pci) == nvml::kSuccess) {
      pci.busId[sizeof(pci.busId) - 1] = '\0';
      gpu.pciBusId = shortBusId(pci.busId);
    }
    gpu.chip = "gpu-" + (gpu.pciBusId.empty() ? std::to_string(index) : gpu.pciBusId);
    // A value the GPU does not support is left out of its readings; any other failure is a
    // reading that could not be taken.
    auto& unsupported = unsupported_[gpu.uuid];
    auto supported = [&unsupported](nvml::Return rc, const char* sensor) {
      if (rc == nvml::kErrorNotSupported) {
        unsupported.insert(sensor);
      }
      return rc == nvml::kSuccess;
    };
    unsigned value = 0;
    auto get = [&value, &supported](nvml::Return rc, const char* sensor,
                                    double scale = 1) -> std::optional<double> {
      return supported(rc, sensor) ? std::optional(value * scale) : std::nullopt;
    };
    auto rc = api_.getTemperature(device, nvml::kTemperatureGpu, &value);
    gpu.temperature = get(rc, "temperature");
    if (rc == nvml::kErrorGpuIsLost) {
      gpu.problem = "the GPU is lost (XID 79?): it needs a reset or a reboot";
    }
    gpu.slowdownTemperature =
        get(api_.getTemperatureThreshold(device, nvml::kThresholdSlowdown, &value), "");
    gpu.shutdownTemperature =
        get(api_.getTemperatureThreshold(device, nvml::kThresholdShutdown, &value), "");
    gpu.powerWatts = get(api_.getPowerUsage(device, &value), "power", 1e-3);
    gpu.powerLimitWatts = get(api_.getPowerLimit(device, &value), "", 1e-3);
    gpu.fanPercent = get(api_.getFanSpeed(device, &value), "fan");
    gpu.smClockMhz = get(api_.getClock(device, nvml::kClockSm, &value), "sm_clock");
    gpu.memoryClockMhz = get(api_.getClock(device, nvml::kClockMem, &value), "memory_clock");
    nvml::Utilization utilization{};
    if (supported(api_.getUtilization(device, &utilization), "utilization")) {
      gpu.utilization = utilization.gpu;
      gpu.memoryUtilization = utilization.memory;
    }
    nvml::Memory memory{};
    if (supported(api_.getMemory(device, &memory), "memory_used")) {
      gpu.memoryUsedBytes = memory.used;
      gpu.memoryTotalBytes = memory.total;
    }
    unsigned long long wide = 0;
    if (api_.getThrottleReasons(device, &wide) == nvml::kSuccess) {
      gpu.throttleReasons = wide;
    }
    if (api_.getEcc(device, nvml::kErrorCorrected, nvml::kVolatileEcc, &wide) == nvml::kSuccess) {
      gpu.eccCorrected = wide;
    }
    if (supported(api_.getEcc(device, nvml::kErrorUncorrected, nvml::kVolatileEcc, &wide),
                  "ecc_uncorrected")) {
      gpu.eccUncorrected = wide;
    }
    return gpu;
  }

  void addReadings(const Gpu& gpu, std::vector<Reading>& out) {
    const auto& unsupported = unsupported_[gpu.uuid];
    auto add = [&gpu, &out, &unsupported](std::string sensor, std::string label, Kind kind,
                                          std::optional<double> value, Thresholds thresholds = {}) {
      if (unsupported.contains(sensor)) {
        return;
      }
      Reading r;
      r.source = "nvml";
      r.chip = gpu.chip;
      r.sensor = std::move(sensor);
      r.id = gpu.chip + "/" + r.sensor;
      r.label = "GPU " + std::to_string(gpu.index) + " " + label;
      r.kind = kind;
      r.value = value;
      r.thresholds = thresholds;
      out.push_back(std::move(r));
    };
    Thresholds temperature;
    if (gpu.slowdownTemperature) {
      temperature.warningHigh = *gpu.slowdownTemperature - 5;
      temperature.criticalHigh = gpu.slowdownTemperature;
    }
    add("temperature", "temperature", Kind::temperature, gpu.temperature, temperature);
    Thresholds power;
    power.warningHigh = gpu.powerLimitWatts;
    add("power", "power draw", Kind::power, gpu.powerWatts, power);
    add("utilization", "utilisation", Kind::utilization, gpu.utilization);
    auto used = gpu.memoryUsedBytes ? std::optional(static_cast<double>(*gpu.memoryUsedBytes))
                                    : std::nullopt;
    add("memory_used", "memory used", Kind::memory, used);
    add("fan", "fan speed", Kind::pwm, gpu.fanPercent);
    add("sm_clock", "SM clock", Kind::clock, gpu.smClockMhz);
    add("memory_clock", "memory clock", Kind::clock, gpu.memoryClockMhz);
    Thresholds ecc;
    ecc.criticalHigh = 1;
    auto uncorrected =
        gpu.eccUncorrected ? std::optional(static_cast<double>(*gpu.eccUncorrected)) : std::nullopt;
    add("ecc_uncorrected", "uncorrected ECC errors", Kind::errors, uncorrected, ecc);
  }

  std::string libraryName_;
  void* library_ = nullptr;
  bool initialised_ = false;
  Api api_;
  nvml::EventSet events_ = nullptr;
  std::map<std::string, Gpu> known_;             // by UUID, including GPUs gone missing
  std::map<nvml::Device, std::string> devices_;  // handle → UUID, for events
  std::map<std::string, std::set<std::string>> unsupported_;  // sensors a GPU lacks, by UUID
};

}  // namespace

std::unique_ptr<Source> makeNvmlSource(const std::string& library) {
  return std::make_unique<NvmlSource>(library);
}

}  // namespace aibox::hwmon
