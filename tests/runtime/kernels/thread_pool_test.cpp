#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels {
namespace {

// Each run counts the calls per thread index; every index must be called exactly once per run.
void expectEachThreadOncePerRun(ThreadPool& pool, int runs, std::chrono::microseconds pause) {
  std::vector<std::atomic<int>> calls(pool.size());
  std::atomic<int> wrongCount{0};
  for (int run = 0; run < runs; ++run) {
    pool.run([&calls, &wrongCount, &pool](unsigned thread, unsigned threads) {
      if (threads != pool.size() || thread >= threads) {
        wrongCount.fetch_add(1);
        return;
      }
      calls[thread].fetch_add(1);
    });
    for (unsigned t = 0; t < pool.size(); ++t) {
      ASSERT_EQ(calls[t].load(), run + 1) << "thread " << t << " in run " << run;
    }
    if (pause.count() > 0) {
      std::this_thread::sleep_for(pause);
    }
  }
  EXPECT_EQ(wrongCount.load(), 0);
}

TEST(ThreadPoolTest, EveryThreadRunsOncePerRun) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.size(), 4u);
  expectEachThreadOncePerRun(pool, 5000, std::chrono::microseconds(0));
}

// Pauses longer than the workers' spin: they fall asleep and must be woken for each run.
TEST(ThreadPoolTest, WakesSleepingWorkers) {
  ThreadPool pool(3);
  expectEachThreadOncePerRun(pool, 20, std::chrono::microseconds(2000));
}

TEST(ThreadPoolTest, SingleThreadRunsOnTheCaller) {
  ThreadPool pool(1);
  std::thread::id ran;
  pool.run([&ran](unsigned thread, unsigned threads) {
    EXPECT_EQ(thread, 0u);
    EXPECT_EQ(threads, 1u);
    ran = std::this_thread::get_id();
  });
  EXPECT_EQ(ran, std::this_thread::get_id());
  EXPECT_EQ(ThreadPool(0).size(), 1u);
}

TEST(ThreadPoolTest, CallerIsThreadZero) {
  ThreadPool pool(3);
  std::thread::id zero;
  pool.run([&zero](unsigned thread, unsigned /*threads*/) {
    if (thread == 0) {
      zero = std::this_thread::get_id();
    }
  });
  EXPECT_EQ(zero, std::this_thread::get_id());
}

// The work of a run is complete and visible when run() returns.
TEST(ThreadPoolTest, ResultsAreVisibleAfterRun) {
  ThreadPool pool(3);
  std::vector<int> out(3000);
  for (int round = 1; round <= 50; ++round) {
    pool.run([&out, round](unsigned thread, unsigned threads) {
      for (std::size_t i = thread; i < out.size(); i += threads) {
        out[i] = round;
      }
    });
    for (int value : out) {
      ASSERT_EQ(value, round);
    }
  }
}

TEST(ThreadPoolTest, ExceptionOnTheCallerWaitsForWorkersAndPropagates) {
  ThreadPool pool(3);
  std::atomic<int> workersDone{0};
  EXPECT_THROW(pool.run([&workersDone](unsigned thread, unsigned /*threads*/) {
    if (thread == 0) {
      throw std::runtime_error("thread 0 failed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    workersDone.fetch_add(1);
  }),
               std::runtime_error);
  EXPECT_EQ(workersDone.load(), 2);
  expectEachThreadOncePerRun(pool, 10, std::chrono::microseconds(0));
}

TEST(ThreadPoolTest, DestroysCleanlyWhileWorkersSpinOrSleep) {
  for (int i = 0; i < 20; ++i) {
    ThreadPool pool(3);
    pool.run([](unsigned /*thread*/, unsigned /*threads*/) {});
    if (i % 2 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

}  // namespace
}  // namespace aibox::kernels
