#pragma once
// One text generation: the prompt processed in batches, then tokens sampled one at a time,
// streamed as UTF-8 text until an end-of-generation token, a stop string or the token limit.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/engine/model.hpp"
#include "runtime/engine/sampler.hpp"

namespace aibox::engine {

struct GenerateOptions {
  SamplingParams sampling;
  std::uint32_t maxTokens = 256;
  std::vector<std::string> stops;
  std::uint32_t batch = 256;  // prompt tokens per forward pass
};

struct GenerateStats {
  std::size_t promptTokens = 0;
  std::size_t generatedTokens = 0;
  double promptSeconds = 0;
  double generateSeconds = 0;
  std::string finishReason;  // "stop" (end token or stop string) or "length"
  double promptTokensPerSecond() const;
  double generateTokensPerSecond() const;
};

// Runs `prompt` through `forward` with a fresh `cache` and calls `onText` with each piece of
// text as it becomes safe to show; onText returning false stops early ("stop"). Errors (a
// prompt longer than the context, bad options) leave nothing generated.
Result<GenerateStats> generate(Forward& forward, const text::Tokenizer& tokenizer, KvCache& cache,
                               const std::vector<Token>& prompt, const GenerateOptions& options,
                               const std::function<bool(std::string_view)>& onText);

}  // namespace aibox::engine
