#pragma once
// The part of NVML's C ABI (libnvidia-ml.so.1, API version 12) that aibox calls, declared from
// NVIDIA's published documentation so that building needs no driver or CUDA headers. The fake
// NVML library of the tests implements the same functions.

#include <cstdint>

namespace aibox::hwmon::nvml {

struct DeviceOpaque;
struct EventSetOpaque;
using Device = DeviceOpaque*;
using EventSet = EventSetOpaque*;
using Return = int;

constexpr Return kSuccess = 0;
constexpr Return kErrorNotSupported = 3;
constexpr Return kErrorNoPermission = 4;
constexpr Return kErrorNotFound = 6;
constexpr Return kErrorTimeout = 10;
constexpr Return kErrorGpuIsLost = 15;

constexpr unsigned kNameBufferSize = 96;
constexpr unsigned kUuidBufferSize = 96;
constexpr unsigned kSerialBufferSize = 30;

constexpr int kTemperatureGpu = 0;
constexpr int kThresholdShutdown = 0;
constexpr int kThresholdSlowdown = 1;
constexpr int kClockSm = 1;
constexpr int kClockMem = 2;
constexpr int kErrorCorrected = 0;
constexpr int kErrorUncorrected = 1;
constexpr int kVolatileEcc = 0;
constexpr unsigned long long kEventXidCriticalError = 0x8;

struct PciInfo {
  char busIdLegacy[16];
  unsigned domain;
  unsigned bus;
  unsigned device;
  unsigned pciDeviceId;
  unsigned pciSubSystemId;
  char busId[32];
};
static_assert(sizeof(PciInfo) == 68);

struct Utilization {
  unsigned gpu;
  unsigned memory;
};

struct Memory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct EventData {
  Device device;
  unsigned long long eventType;
  unsigned long long eventData;  // the XID for an XID event
  unsigned gpuInstanceId;
  unsigned computeInstanceId;
};

// Exported names, with the version suffixes the current header maps the plain names to.
extern "C" {
using InitFn = Return (*)();
using ShutdownFn = Return (*)();
using ErrorStringFn = const char* (*)(Return);
using GetCountFn = Return (*)(unsigned*);
using GetHandleByIndexFn = Return (*)(unsigned, Device*);
using GetStringFn = Return (*)(Device, char*, unsigned);
using GetPciInfoFn = Return (*)(Device, PciInfo*);
using GetTemperatureFn = Return (*)(Device, int, unsigned*);
using GetTemperatureThresholdFn = Return (*)(Device, int, unsigned*);
using GetUnsignedFn = Return (*)(Device, unsigned*);
using GetUtilizationFn = Return (*)(Device, Utilization*);
using GetMemoryFn = Return (*)(Device, Memory*);
using GetClockFn = Return (*)(Device, int, unsigned*);
using GetThrottleReasonsFn = Return (*)(Device, unsigned long long*);
using GetEccFn = Return (*)(Device, int, int, unsigned long long*);
using EventSetCreateFn = Return (*)(EventSet*);
using RegisterEventsFn = Return (*)(Device, unsigned long long, EventSet);
using EventSetWaitFn = Return (*)(EventSet, EventData*, unsigned);
using EventSetFreeFn = Return (*)(EventSet);
}

}  // namespace aibox::hwmon::nvml
