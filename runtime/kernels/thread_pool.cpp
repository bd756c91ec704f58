// The worker pool. A run is published by bumping generation_; workers that finished the last
// run less than kSpin ago are still polling it and start at once, the others sleep on wake_.
// The last worker to finish wakes the caller if it went to sleep.

#include <chrono>
#include <thread>

#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels {
namespace {

// Generation calls matmul hundreds of times per token with little in between: polling this
// long keeps the workers awake through those gaps and lets them sleep once the burst is over.
constexpr auto kSpin = std::chrono::microseconds(200);
constexpr auto kSpinBeforeYield = std::chrono::microseconds(5);

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls `done` for up to kSpin; true once it holds. After the first few microseconds it also
// yields the core, in case the thread it waits for is not running (more threads than cores).
template <typename Done>
bool spinUntil(Done done) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) {
        return true;
      }
      cpuRelax();
    }
    auto spun = std::chrono::steady_clock::now() - start;
    if (spun >= kSpin) {
      return false;
    }
    if (spun >= kSpinBeforeYield) {
      std::this_thread::yield();
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(unsigned threads) : threads_(threads == 0 ? 1 : threads) {
  workers_.reserve(threads_ - 1);
  for (unsigned index = 1; index < threads_; ++index) {
    workers_.emplace_back([this, index] { worker(index); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
  }
  wake_.notify_all();
  for (auto& thread : workers_) {
    thread.join();
  }
}

void ThreadPool::run(const std::function<void(unsigned thread, unsigned threads)>& work) {
  if (threads_ == 1) {
    work(0, 1);
    return;
  }
  work_ = &work;
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  try {
    work(0, threads_);
  } catch (...) {
    awaitWorkers();
    throw;
  }
  awaitWorkers();
}

void ThreadPool::awaitWorkers() {
  auto finished = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (spinUntil(finished)) {
    return;
  }
  std::unique_lock lock(mutex_);
  done_.wait(lock, finished);
}

bool ThreadPool::awaitWork(std::uint64_t seen) {
  auto ready = [this, seen] {
    return generation_.load(std::memory_order_acquire) != seen || stopping_.load();
  };
  if (!spinUntil(ready)) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, ready);
  }
  return !stopping_.load();
}

void ThreadPool::worker(unsigned index) {
  std::uint64_t seen = 0;
  while (awaitWork(seen)) {
    seen = generation_.load(std::memory_order_acquire);
    (*work_)(index, threads_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace aibox::kernels
