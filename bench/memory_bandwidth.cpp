// aibox-bench-membw: memory read bandwidth, the bound on token generation (every weight is
// read once per token). Reads a buffer much larger than the caches with N threads, each its
// own slice, and prints the best of several passes in bytes per second.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  unsigned threads = argc > 1 ? static_cast<unsigned>(std::stoul(argv[1])) : 1;
  std::size_t bytes = (argc > 2 ? std::stoull(argv[2]) : 1024) << 20;
  std::vector<std::uint64_t> buffer(bytes / sizeof(std::uint64_t));
  for (std::size_t i = 0; i < buffer.size(); ++i) {
    buffer[i] = i;
  }
  std::vector<std::uint64_t> sums(threads);
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        std::size_t begin = buffer.size() * t / threads;
        std::size_t end = buffer.size() * (t + 1) / threads;
        std::uint64_t a = 0, b = 0, c = 0, d = 0;
        for (std::size_t i = begin; i + 4 <= end; i += 4) {
          a += buffer[i];
          b += buffer[i + 1];
          c += buffer[i + 2];
          d += buffer[i + 3];
        }
        sums[t] = a + b + c + d;
      });
    }
    for (auto& worker : workers) {
      worker.join();
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(bytes) / seconds);
  }
  std::uint64_t total = 0;
  for (auto sum : sums) {
    total += sum;
  }
  // The checksum keeps the reads from being optimised away.
  std::cout << static_cast<std::uint64_t>(best) << (total == 42 ? " " : "") << '\n';
  return 0;
}
