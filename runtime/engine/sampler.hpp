#pragma once
// Choosing the next token from the logits, and where generation stops.

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace aibox::engine {

using Token = std::int32_t;

struct SamplingParams {
  float temperature = 0.8f;  // <= 0: greedy (the highest logit, lowest id on ties)
  int topK = 40;             // <= 0: off
  float topP = 0.95f;        // >= 1: off
  float minP = 0.05f;        // <= 0: off; drops tokens below minP x the best probability
  // Penalties over the last penaltyLastN tokens of the history (prompt and output):
  // repetition divides a positive logit (multiplies a negative one) by repeatPenalty;
  // presence subtracts presencePenalty once per distinct token; frequency subtracts
  // frequencyPenalty x count (as the OpenAI API defines them).
  float repeatPenalty = 1.0f;  // 1: off
  float presencePenalty = 0.0f;
  float frequencyPenalty = 0.0f;
  int penaltyLastN = 64;
  std::uint64_t seed = 0;  // same seed, same logits, same choices
};

// Checks ranges; the message names the parameter and its valid range.
std::string validate(const SamplingParams& params);  // empty when valid

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks a token from `logits` (one per vocabulary entry) given the tokens so far. The order
  // is: penalties, then greedy if temperature <= 0, else top-k, temperature, softmax, top-p,
  // min-p, and a draw from the seeded generator.
  Token sample(std::span<const float> logits, std::span<const Token> history);

 private:
  void applyPenalties(std::span<const Token> history);
  Token best() const;
  void keepNucleus(double threshold, bool sortedBest);
  Token draw();

  SamplingParams params_;
  std::mt19937_64 random_;
  std::vector<std::pair<float, Token>> candidates_;  // reused between calls
  std::vector<Token> recent_;                        // the penalty window, reused
};

// Holds back generated text that could be the start of a stop string, so a stop string is
// never shown, even when it arrives split across tokens.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds text; returns the part that is safe to show now. Once a stop string is complete,
  // stopped() is true and the text from the stop string on is dropped.
  std::string push(std::string_view text);
  // At the end of generation (no stop hit): the text still held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

// Joins token pieces into valid UTF-8: a character split across tokens is held until it is
// complete; invalid bytes become U+FFFD.
class Utf8Joiner {
 public:
  std::string push(std::string_view bytes);
  std::string flush();

 private:
  std::string pending_;
};

}  // namespace aibox::engine
