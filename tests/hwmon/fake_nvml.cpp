// A fake libnvidia-ml.so.1: the NVML functions hwmon/source_nvml.cpp loads, serving GPUs from
// the JSON file named by AIBOX_FAKE_NVML. The file is read again at every device count, as NVML
// would see a GPU fall off the bus between polls; a value that is missing or null for a GPU is
// "not supported" (NVML_ERROR_NOT_SUPPORTED), as on boards without that sensor.
//
// {"gpus": [{"name": "...", "uuid": "GPU-...", "serial": "...", "pci_bus_id": "00000000:18:00.0",
//            "temperature": 41, "slowdown": 87, "shutdown": 92, "power_mw": 98000,
//            "limit_mw": 700000, "util_gpu": 12, "util_memory": 3, "memory_total": ...,
//            "memory_used": ..., "fan": 30, "sm_clock": 1980, "memory_clock": 2619,
//            "throttle": 0, "ecc_corrected": 0, "ecc_uncorrected": 0, "xid": [79]}]}
#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hwmon/nvml_abi.hpp"

namespace aibox::hwmon::nvml {

// A handle stays the same for a GPU (by UUID) for the life of the library, as real NVML
// handles do, so that events name the device the caller holds.
struct DeviceOpaque {
  std::string uuid;
  boost::json::object data;
  bool present = false;
  std::size_t xidsDelivered = 0;
  bool xidRegistered = false;
};

struct EventSetOpaque {};

}  // namespace aibox::hwmon::nvml

namespace {

namespace json = boost::json;
namespace nvml = aibox::hwmon::nvml;

constexpr nvml::Return kErrorUninitialized = 1;
constexpr nvml::Return kErrorInvalidArgument = 2;
constexpr nvml::Return kErrorInsufficientSize = 7;
constexpr nvml::Return kErrorUnknown = 999;

// NVML itself is thread-safe; this fake is not, as the source polls from one thread.
struct State {
  bool initialised = false;
  std::map<std::string, std::unique_ptr<nvml::DeviceOpaque>> byUuid;
  std::vector<nvml::DeviceOpaque*> order;  // as listed in the fixture
  std::vector<std::unique_ptr<nvml::EventSetOpaque>> eventSets;
};

State& state() {
  static State s;
  return s;
}

// Re-reads the fixture; false when it cannot be read or parsed.
bool reload(State& s) {
  const char* path = std::getenv("AIBOX_FAKE_NVML");  // NOLINT(concurrency-mt-unsafe): one thread
  if (path == nullptr) {
    return false;
  }
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  auto root = json::parse(text, ec);
  if (ec || !root.is_object() || !root.as_object().contains("gpus") ||
      !root.at("gpus").is_array()) {
    return false;
  }
  for (auto& [uuid, device] : s.byUuid) {
    device->present = false;
  }
  s.order.clear();
  for (const auto& entry : root.at("gpus").as_array()) {
    if (!entry.is_object() || !entry.as_object().contains("uuid")) {
      continue;
    }
    std::string uuid(entry.at("uuid").as_string());
    auto& device = s.byUuid[uuid];
    if (!device) {
      device = std::make_unique<nvml::DeviceOpaque>();
      device->uuid = uuid;
    }
    device->data = entry.as_object();
    device->present = true;
    s.order.push_back(device.get());
  }
  return true;
}

// A GPU gone from the fixture is lost, as NVML reports a GPU that fell off the bus.
nvml::Return check(const nvml::DeviceOpaque* device) {
  if (!state().initialised) {
    return kErrorUninitialized;
  }
  if (device == nullptr) {
    return kErrorInvalidArgument;
  }
  return device->present ? nvml::kSuccess : nvml::kErrorGpuIsLost;
}

template <class T>
nvml::Return number(const nvml::DeviceOpaque* device, const char* key, T* out) {
  if (auto rc = check(device); rc != nvml::kSuccess) {
    return rc;
  }
  if (out == nullptr) {
    return kErrorInvalidArgument;
  }
  const auto* value = device->data.if_contains(key);
  if (value == nullptr || value->is_null()) {
    return nvml::kErrorNotSupported;
  }
  boost::system::error_code ec;
  auto n = value->to_number<T>(ec);
  if (ec) {
    return kErrorUnknown;
  }
  *out = n;
  return nvml::kSuccess;
}

nvml::Return string(const nvml::DeviceOpaque* device, const char* key, char* out, unsigned length) {
  if (auto rc = check(device); rc != nvml::kSuccess) {
    return rc;
  }
  const auto* value = device->data.if_contains(key);
  if (value == nullptr || !value->is_string()) {
    return nvml::kErrorNotSupported;
  }
  const auto& text = value->as_string();
  if (out == nullptr || text.size() + 1 > length) {
    return kErrorInsufficientSize;
  }
  std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  return nvml::kSuccess;
}

}  // namespace

#define FAKE_NVML_EXPORT __attribute__((visibility("default")))

// NVML's exported names, versioned as its header maps them.
// NOLINTBEGIN(readability-identifier-naming)
extern "C" {

// Each session starts from the fixture afresh: handles, XIDs already handed out and event sets
// belong to the session, so a test that loads the library again sees every XID again.
FAKE_NVML_EXPORT nvml::Return nvmlInit_v2() {
  auto& s = state();
  s.byUuid.clear();
  s.order.clear();
  s.eventSets.clear();
  s.initialised = true;
  return nvml::kSuccess;
}

FAKE_NVML_EXPORT nvml::Return nvmlShutdown() {
  state().initialised = false;
  return nvml::kSuccess;
}

FAKE_NVML_EXPORT const char* nvmlErrorString(nvml::Return rc) {
  switch (rc) {
    case nvml::kSuccess:
      return "Success";
    case kErrorUninitialized:
      return "Uninitialized";
    case kErrorInvalidArgument:
      return "Invalid Argument";
    case nvml::kErrorNotSupported:
      return "Not Supported";
    case nvml::kErrorTimeout:
      return "Timeout";
    case nvml::kErrorGpuIsLost:
      return "GPU is lost";
    default:
      return "Unknown Error";
  }
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetCount_v2(unsigned* count) {
  auto& s = state();
  if (!s.initialised) {
    return kErrorUninitialized;
  }
  if (count == nullptr) {
    return kErrorInvalidArgument;
  }
  if (!reload(s)) {
    return kErrorUnknown;
  }
  *count = static_cast<unsigned>(s.order.size());
  return nvml::kSuccess;
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetHandleByIndex_v2(unsigned index, nvml::Device* device) {
  auto& s = state();
  if (!s.initialised) {
    return kErrorUninitialized;
  }
  if (device == nullptr || index >= s.order.size()) {
    return kErrorInvalidArgument;
  }
  *device = s.order[index];
  return nvml::kSuccess;
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetName(nvml::Device device, char* name, unsigned length) {
  return string(device, "name", name, length);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetUUID(nvml::Device device, char* uuid, unsigned length) {
  return string(device, "uuid", uuid, length);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetSerial(nvml::Device device, char* serial,
                                                  unsigned length) {
  return string(device, "serial", serial, length);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetPciInfo_v3(nvml::Device device, nvml::PciInfo* pci) {
  if (pci == nullptr) {
    return kErrorInvalidArgument;
  }
  *pci = {};
  if (auto rc = string(device, "pci_bus_id", pci->busId, sizeof(pci->busId));
      rc != nvml::kSuccess) {
    return rc;
  }
  // The legacy field holds the short form NVML also fills in: "0000:18:00.0".
  std::string_view full(pci->busId);
  auto legacy = full.substr(std::min<std::size_t>(4, full.size()), sizeof(pci->busIdLegacy) - 1);
  std::memcpy(pci->busIdLegacy, legacy.data(), legacy.size());
  return nvml::kSuccess;
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetTemperature(nvml::Device device, int sensor,
                                                       unsigned* temperature) {
  if (sensor != nvml::kTemperatureGpu) {
    return kErrorInvalidArgument;
  }
  return number(device, "temperature", temperature);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetTemperatureThreshold(nvml::Device device, int threshold,
                                                                unsigned* temperature) {
  switch (threshold) {
    case nvml::kThresholdShutdown:
      return number(device, "shutdown", temperature);
    case nvml::kThresholdSlowdown:
      return number(device, "slowdown", temperature);
    default:
      return nvml::kErrorNotSupported;
  }
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetPowerUsage(nvml::Device device, unsigned* milliwatts) {
  return number(device, "power_mw", milliwatts);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetEnforcedPowerLimit(nvml::Device device,
                                                              unsigned* milliwatts) {
  return number(device, "limit_mw", milliwatts);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetUtilizationRates(nvml::Device device,
                                                            nvml::Utilization* utilization) {
  if (utilization == nullptr) {
    return kErrorInvalidArgument;
  }
  if (auto rc = number(device, "util_gpu", &utilization->gpu); rc != nvml::kSuccess) {
    return rc;
  }
  return number(device, "util_memory", &utilization->memory);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetMemoryInfo(nvml::Device device, nvml::Memory* memory) {
  if (memory == nullptr) {
    return kErrorInvalidArgument;
  }
  if (auto rc = number(device, "memory_total", &memory->total); rc != nvml::kSuccess) {
    return rc;
  }
  if (auto rc = number(device, "memory_used", &memory->used); rc != nvml::kSuccess) {
    return rc;
  }
  memory->free = memory->total - memory->used;
  return nvml::kSuccess;
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetFanSpeed(nvml::Device device, unsigned* percent) {
  return number(device, "fan", percent);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetClockInfo(nvml::Device device, int type, unsigned* mhz) {
  switch (type) {
    case nvml::kClockSm:
      return number(device, "sm_clock", mhz);
    case nvml::kClockMem:
      return number(device, "memory_clock", mhz);
    default:
      return nvml::kErrorNotSupported;
  }
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetCurrentClocksThrottleReasons(
    nvml::Device device, unsigned long long* reasons) {
  return number(device, "throttle", reasons);
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceGetTotalEccErrors(nvml::Device device, int errorType,
                                                          int counterType,
                                                          unsigned long long* count) {
  if (counterType != nvml::kVolatileEcc) {
    return nvml::kErrorNotSupported;
  }
  switch (errorType) {
    case nvml::kErrorCorrected:
      return number(device, "ecc_corrected", count);
    case nvml::kErrorUncorrected:
      return number(device, "ecc_uncorrected", count);
    default:
      return kErrorInvalidArgument;
  }
}

FAKE_NVML_EXPORT nvml::Return nvmlEventSetCreate(nvml::EventSet* set) {
  auto& s = state();
  if (!s.initialised) {
    return kErrorUninitialized;
  }
  if (set == nullptr) {
    return kErrorInvalidArgument;
  }
  s.eventSets.push_back(std::make_unique<nvml::EventSetOpaque>());
  *set = s.eventSets.back().get();
  return nvml::kSuccess;
}

FAKE_NVML_EXPORT nvml::Return nvmlDeviceRegisterEvents(nvml::Device device,
                                                       unsigned long long types,
                                                       nvml::EventSet set) {
  if (auto rc = check(device); rc != nvml::kSuccess) {
    return rc;
  }
  if (set == nullptr) {
    return kErrorInvalidArgument;
  }
  if ((types & nvml::kEventXidCriticalError) != 0) {
    device->xidRegistered = true;
  }
  return nvml::kSuccess;
}

// Hands out each XID of the fixture once, for devices registered for XID events; NVML's timeout
// when there is none, without waiting (the source only ever asks with a zero timeout).
FAKE_NVML_EXPORT nvml::Return nvmlEventSetWait_v2(nvml::EventSet set, nvml::EventData* data,
                                                  unsigned /*timeoutMs*/) {
  auto& s = state();
  if (!s.initialised) {
    return kErrorUninitialized;
  }
  if (set == nullptr || data == nullptr) {
    return kErrorInvalidArgument;
  }
  for (auto* device : s.order) {
    const auto* xids = device->data.if_contains("xid");
    if (!device->xidRegistered || xids == nullptr || !xids->is_array() ||
        device->xidsDelivered >= xids->as_array().size()) {
      continue;
    }
    boost::system::error_code ec;
    auto xid = xids->as_array()[device->xidsDelivered++].to_number<unsigned long long>(ec);
    if (ec) {
      return kErrorUnknown;
    }
    *data = {};
    data->device = device;
    data->eventType = nvml::kEventXidCriticalError;
    data->eventData = xid;
    return nvml::kSuccess;
  }
  return nvml::kErrorTimeout;
}

FAKE_NVML_EXPORT nvml::Return nvmlEventSetFree(nvml::EventSet set) {
  auto& s = state();
  for (auto it = s.eventSets.begin(); it != s.eventSets.end(); ++it) {
    if (it->get() == set) {
      s.eventSets.erase(it);
      return nvml::kSuccess;
    }
  }
  return kErrorInvalidArgument;
}

}  // extern "C"
// NOLINTEND(readability-identifier-naming)
