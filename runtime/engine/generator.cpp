#include "runtime/engine/generator.hpp"

#include <algorithm>

namespace aibox::engine {
namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

double GenerateStats::promptTokensPerSecond() const {
  return promptSeconds > 0 ? static_cast<double>(promptTokens) / promptSeconds : 0;
}

double GenerateStats::generateTokensPerSecond() const {
  return generateSeconds > 0 ? static_cast<double>(generatedTokens) / generateSeconds : 0;
}

Result<GenerateStats> generate(Forward& forward, const text::Tokenizer& tokenizer, KvCache& cache,
                               const std::vector<Token>& prompt, const GenerateOptions& options,
                               const std::function<bool(std::string_view)>& onText) {
  if (auto problem = validate(options.sampling); !problem.empty()) {
    return Error{problem};
  }
  if (prompt.empty()) {
    return Error{"the prompt is empty: give some text"};
  }
  if (options.batch == 0) {
    return Error{"the batch size must be at least 1"};
  }
  std::size_t needed = prompt.size() + (options.maxTokens > 0 ? 1 : 0);
  if (needed > cache.context()) {
    return Error{"the prompt has " + std::to_string(prompt.size()) +
                 " tokens but the context holds " + std::to_string(cache.context()) +
                 ": shorten the prompt or raise the context size"};
  }
  cache.clear();
  GenerateStats stats;
  stats.promptTokens = prompt.size();
  auto start = std::chrono::steady_clock::now();
  std::vector<float> logits;
  for (std::size_t at = 0; at < prompt.size(); at += options.batch) {
    std::size_t count = std::min<std::size_t>(options.batch, prompt.size() - at);
    SequenceInput input{&cache, std::span<const Token>(prompt).subspan(at, count),
                        at + count == prompt.size()};
    auto result = forward.run(std::span<const SequenceInput>(&input, 1));
    if (auto* error = std::get_if<Error>(&result)) {
      return *error;
    }
    if (input.wantLogits) {
      logits = std::move(std::get<0>(result).front());
    }
  }
  stats.promptSeconds = secondsSince(start);

  start = std::chrono::steady_clock::now();
  Sampler sampler(options.sampling);
  StopMatcher stops(options.stops);
  Utf8Joiner joiner;
  std::vector<Token> history = prompt;
  stats.finishReason = "length";
  auto emit = [&onText](const std::string& text) { return text.empty() || onText(text); };
  while (stats.generatedTokens < options.maxTokens) {
    Token next = sampler.sample(logits, history);
    if (tokenizer.isEndOfGeneration(next)) {
      stats.finishReason = "stop";
      break;
    }
    history.push_back(next);
    ++stats.generatedTokens;
    std::string shown = stops.push(joiner.push(tokenizer.piece(next)));
    if (!emit(shown) || stops.stopped()) {
      stats.finishReason = "stop";
      break;
    }
    if (stats.generatedTokens == options.maxTokens || cache.used() >= cache.context()) {
      break;
    }
    SequenceInput input{&cache, std::span<const Token>(&history.back(), 1), true};
    auto result = forward.run(std::span<const SequenceInput>(&input, 1));
    if (auto* error = std::get_if<Error>(&result)) {
      return *error;
    }
    logits = std::move(std::get<0>(result).front());
  }
  if (!stops.stopped()) {
    emit(stops.push(joiner.flush()) + stops.flush());
  }
  stats.generateSeconds = secondsSince(start);
  return stats;
}

}  // namespace aibox::engine
