// Runs a libFuzzer target without libFuzzer (GCC builds, CTest): every file of the corpus
// given on the command line, then deterministic mutations of them. Real coverage-guided
// fuzzing uses the "fuzz" preset (clang, -fsanitize=fuzzer).
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void runOne(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

std::string mutate(std::string input, std::mt19937& random) {
  std::uniform_int_distribution<int> byte(0, 255);
  int edits = 1 + static_cast<int>(random() % 8);
  for (int i = 0; i < edits; ++i) {
    std::size_t at = input.empty() ? 0 : random() % input.size();
    switch (random() % 4) {
      case 0:
        if (!input.empty()) {
          input[at] = static_cast<char>(byte(random));
        }
        break;
      case 1:
        input.insert(input.begin() + static_cast<std::ptrdiff_t>(at),
                     static_cast<char>(byte(random)));
        break;
      case 2:
        if (!input.empty()) {
          input.erase(at, 1 + random() % 4);
        }
        break;
      default:
        input += input.substr(at, random() % 16);
        break;
    }
  }
  return input;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> seeds;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path path(argv[i]);
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        files.push_back(entry.path());
      }
    } else {
      files.push_back(path);
    }
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  seeds.emplace_back();
  const char* runsText = std::getenv("AIBOX_FUZZ_RUNS");  // NOLINT(concurrency-mt-unsafe)
  long runs = runsText != nullptr ? std::strtol(runsText, nullptr, 10) : 5000;
  std::mt19937 random(20261122);
  for (const auto& seed : seeds) {
    runOne(seed);
  }
  for (long i = 0; i < runs; ++i) {
    runOne(mutate(seeds[static_cast<std::size_t>(i) % seeds.size()], random));
  }
  std::cout << seeds.size() << " seeds and " << runs << " mutations ran\n";
  return 0;
}
