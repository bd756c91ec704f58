#pragma once
// Tensor storage types of GGUF files and the CPU kernels that compute with them: conversion
// to and from float rows, and the matrix product the model's linear layers need. Each kernel
// has a portable version and an AVX2/FMA one, picked once at start by a runtime CPU check.
// Block layouts follow the public ggml/GGUF documentation.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace aibox::kernels {

// ggml type ids, as stored in GGUF tensor infos.
enum class Type : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  BF16 = 30,
};

struct TypeInfo {
  Type type;
  std::string_view name;        // "Q4_K"
  std::uint32_t blockElements;  // values per block
  std::uint32_t blockBytes;     // bytes per block
};

// The types this engine computes with, in id order.
const std::vector<TypeInfo>& supportedTypes();
// Info of a supported type; nullopt for any other id.
std::optional<TypeInfo> typeInfo(std::uint32_t id);
// "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K": for error messages.
std::string supportedTypeNames();

// Bytes of a row of `elements` values; `elements` must be a multiple of the block size.
std::size_t rowBytes(Type type, std::size_t elements);

// float <-> half and bfloat16 (round to nearest even).
float halfToFloat(std::uint16_t h);
std::uint16_t floatToHalf(float f);
float bf16ToFloat(std::uint16_t h);
std::uint16_t floatToBf16(float f);

// One row of `n` values (a multiple of the block size, else std::invalid_argument) to and from
// floats. quantizeRow is the reference quantiser (used to write test models and in tests); it
// is not on any hot path. The quantised side is aligned as matmul's `w`.
void dequantizeRow(Type type, const void* src, float* dst, std::size_t n);
void quantizeRow(Type type, const float* src, void* dst, std::size_t n);

// Which code the kernels run: AVX2+FMA+F16C when the CPU has them, else portable C++.
enum class Isa { Portable, Avx2 };
Isa detectedIsa();
Isa activeIsa();
// Forces an ISA (tests compare both; AIBOX_ISA=portable in the environment does it at start).
// Asking for Avx2 on a CPU without it keeps Portable; returns what is active.
Isa setIsa(Isa isa);
std::string_view isaName(Isa isa);

// A fixed set of worker threads; run() hands the same function to every thread (the caller's
// thread is thread 0) and returns when all have finished. Not re-entrant, and one caller at a
// time. Workers poll for 200 us after a run, so back-to-back runs cost little (an empty run:
// about 0.5 us with 2 threads, 2.5 us with 16), then sleep on a condition variable. An exception
// from thread 0's share is rethrown after the workers finish; one from a worker's share ends the
// program.
class ThreadPool {
 public:
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return threads_; }
  void run(const std::function<void(unsigned thread, unsigned threads)>& work);

 private:
  void worker(unsigned index);
  bool awaitWork(std::uint64_t seen);
  void awaitWorkers();

  unsigned threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // What waiting workers poll, on a cache line of its own: a run publishes work_ by bumping
  // generation_ (release). Workers count pending_ down on another line, so that their
  // decrements do not keep taking the polled line away from the others.
  alignas(64) std::atomic<std::uint64_t> generation_{0};
  const std::function<void(unsigned, unsigned)>* work_ = nullptr;
  std::atomic<bool> stopping_{false};
  alignas(64) std::atomic<unsigned> pending_{0};
};

// y[t * rows + r] = sum over k < cols of w[r][k] * x[t * cols + k], for t < tokens, r < rows.
// `w` holds `rows` rows of rowBytes(type, cols) bytes each (a GGUF tensor of shape
// [cols, rows]); cols must be a multiple of the type's block size (std::invalid_argument
// otherwise). Work is split over the pool's threads by rows; activations are quantised once per
// call where the type's dot product wants it (Q8_0 for Q4_0/Q8_0, Q8_K for the K types), into a
// scratch buffer of the calling thread that grows to the largest call and is then reused.
// `w` needs the alignment of its block's fields (2 bytes; 4 for F32), as GGUF data has; `y`
// must not overlap `x` or `w`. Calls from different threads with different pools may overlap.
void matmul(ThreadPool& pool, Type type, const void* w, std::size_t rows, std::size_t cols,
            const float* x, std::size_t tokens, float* y);

// Float vector helpers for attention, on the active ISA: the dot product of a and b, and
// y += alpha * x.
float dot(const float* a, const float* b, std::size_t n);
void addScaled(float* y, const float* x, float alpha, std::size_t n);

}  // namespace aibox::kernels
