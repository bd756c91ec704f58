#include "runtime/engine/sampler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

namespace aibox::engine {
namespace {

// Every filter off: a plain draw from the softmax at the given temperature.
SamplingParams unfiltered(float temperature = 1.0f, std::uint64_t seed = 7) {
  return {.temperature = temperature, .topK = 0, .topP = 1.0f, .minP = 0.0f, .seed = seed};
}

SamplingParams greedy() {
  return {.temperature = 0.0f};
}

// Logits whose softmax is exactly `probabilities` (up to float rounding).
std::vector<float> logitsOf(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  logits.reserve(probabilities.size());
  for (double p : probabilities) {
    logits.push_back(static_cast<float>(std::log(p)));
  }
  return logits;
}

std::vector<int> countDraws(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size());
  for (int i = 0; i < draws; ++i) {
    const Token token = sampler.sample(logits, {});
    EXPECT_GE(token, 0);
    EXPECT_LT(static_cast<std::size_t>(token), logits.size());
    ++counts[static_cast<std::size_t>(token)];
  }
  return counts;
}

std::vector<float> randomLogits(std::size_t size, std::uint64_t seed, double spread) {
  std::mt19937_64 random(seed);
  std::vector<float> logits(size);
  for (auto& logit : logits) {
    logit = static_cast<float>(static_cast<double>(random() >> 11) * 0x1.0p-53 * spread);
  }
  return logits;
}

TEST(Sampler, GreedyPicksTheHighestLogit) {
  Sampler sampler(greedy());
  EXPECT_EQ(sampler.sample(std::vector<float>{0.1f, 2.5f, -3.0f, 2.4f}, {}), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{-5.0f, -4.0f, -4.5f}, {}), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{7.0f}, {}), 0);
}

TEST(Sampler, GreedyBreaksTiesByTheLowestId) {
  Sampler sampler(greedy());
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 3.0f, 0.0f, 3.0f, 3.0f}, {}), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{2.0f, 2.0f}, {}), 0);
}

TEST(Sampler, TopKOfOneIsGreedyAtAnyTemperature) {
  const auto logits = randomLogits(5000, 3, 4.0);
  Sampler greedySampler(greedy());
  const Token expected = greedySampler.sample(logits, {});
  for (float temperature : {0.1f, 1.0f, 5.0f}) {
    Sampler sampler({.temperature = temperature, .topK = 1, .seed = 11});
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(sampler.sample(logits, {}), expected) << "temperature " << temperature;
    }
  }
  std::vector<float> tied = {1.0f, 4.0f, 4.0f, 0.0f};
  Sampler tiedSampler({.temperature = 2.0f, .topK = 1, .seed = 5});
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(tiedSampler.sample(tied, {}), 1);
  }
}

TEST(Sampler, TopKKeepsOnlyTheBestK) {
  // Ids 2 and 5 are best; 1 and 7 tie for third place and the lower id wins.
  const std::vector<float> logits = {0.0f, 1.0f, 3.0f, 0.5f, 0.2f, 2.0f, 0.1f, 1.0f};
  Sampler sampler({.temperature = 5.0f, .topK = 3, .topP = 1.0f, .minP = 0.0f, .seed = 1});
  const auto counts = countDraws(sampler, logits, 1000);
  for (std::size_t id = 0; id < logits.size(); ++id) {
    const bool kept = id == 1 || id == 2 || id == 5;
    EXPECT_EQ(counts[id] > 0, kept) << "token " << id << " drawn " << counts[id] << " times";
  }
}

TEST(Sampler, SameSeedSameChoices) {
  const auto logits = randomLogits(1000, 9, 3.0);
  const SamplingParams params = {.temperature = 1.0f, .topK = 100, .topP = 0.9f, .seed = 42};
  Sampler first(params);
  Sampler second(params);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(first.sample(logits, {}), second.sample(logits, {})) << "draw " << i;
  }
}

TEST(Sampler, DifferentSeedsDiffer) {
  const auto logits = randomLogits(1000, 9, 3.0);
  Sampler first(unfiltered(1.0f, 1));
  Sampler second(unfiltered(1.0f, 2));
  int different = 0;
  for (int i = 0; i < 500; ++i) {
    different += first.sample(logits, {}) != second.sample(logits, {}) ? 1 : 0;
  }
  EXPECT_GT(different, 400);
}

TEST(Sampler, DrawIsTheTopBitsOfTheGenerator) {
  // Two equal tokens: the draw is below one half exactly when the generator's top bit is 0.
  // std::mt19937_64 is the same everywhere, so this pins the choices on every standard library.
  Sampler sampler(unfiltered(1.0f, 1234));
  std::mt19937_64 reference(1234);
  const std::vector<float> logits = {0.5f, 0.5f};
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(sampler.sample(logits, {}), static_cast<Token>(reference() >> 63)) << "draw " << i;
  }
}

TEST(Sampler, FollowsTheSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, 3.0f, -1.0f};
  for (float temperature : {1.0f, 0.5f}) {
    std::vector<double> expected;
    expected.reserve(logits.size());
    for (float logit : logits) {
      expected.push_back(std::exp(logit / temperature));
    }
    const double sum = std::accumulate(expected.begin(), expected.end(), 0.0);
    Sampler sampler(unfiltered(temperature, 2024));
    const int draws = 20000;
    const auto counts = countDraws(sampler, logits, draws);
    double chiSquare = 0.0;
    for (std::size_t id = 0; id < logits.size(); ++id) {
      const double wanted = draws * expected[id] / sum;
      chiSquare += (counts[id] - wanted) * (counts[id] - wanted) / wanted;
    }
    // 4 degrees of freedom: 18.47 is exceeded by chance once in a thousand.
    EXPECT_LT(chiSquare, 18.47) << "temperature " << temperature;
  }
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  const auto logits = logitsOf({0.5, 0.3, 0.15, 0.05});
  Sampler sampler({.temperature = 1.0f, .topK = 0, .topP = 0.7f, .minP = 0.0f, .seed = 3});
  const auto counts = countDraws(sampler, logits, 1000);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
}

TEST(Sampler, TopPKeepsAtLeastOneToken) {
  const auto logits = logitsOf({0.2, 0.5, 0.3});
  Sampler sampler({.temperature = 1.0f, .topK = 0, .topP = 0.01f, .minP = 0.0f, .seed = 3});
  const auto counts = countDraws(sampler, logits, 1000);
  EXPECT_EQ(counts, (std::vector<int>{0, 1000, 0}));
}

TEST(Sampler, TopPOnALargeVocabularyMatchesAFullSort) {
  // Flat logits make a nucleus of most of the vocabulary in a few weight buckets; spread ones
  // a nucleus of a tenth of it over many buckets.
  for (double spread : {0.5, 8.0}) {
    SCOPED_TRACE(spread);
    const auto logits = randomLogits(1000, 17, spread);
    const float topP = 0.6f;
    std::vector<std::pair<double, Token>> ranked;
    double sum = 0.0;
    for (std::size_t id = 0; id < logits.size(); ++id) {
      ranked.emplace_back(std::exp(logits[id]), static_cast<Token>(id));
      sum += ranked.back().first;
    }
    std::sort(ranked.begin(), ranked.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<bool> inNucleus(logits.size());
    double cumulative = 0.0;
    std::size_t nucleus = 0;
    for (const auto& [weight, id] : ranked) {
      inNucleus[static_cast<std::size_t>(id)] = true;
      ++nucleus;
      cumulative += weight;
      if (cumulative >= topP * sum) {
        break;
      }
    }
    ASSERT_GT(nucleus, 50u);
    Sampler sampler({.temperature = 1.0f, .topK = 0, .topP = topP, .minP = 0.0f, .seed = 8});
    const auto counts = countDraws(sampler, logits, 500);
    std::size_t drawnInNucleus = 0;
    for (std::size_t id = 0; id < logits.size(); ++id) {
      if (!inNucleus[id]) {
        ASSERT_EQ(counts[id], 0) << "token " << id << " is outside the nucleus";
      } else {
        drawnInNucleus += counts[id] > 0 ? 1 : 0;
      }
    }
    EXPECT_GT(drawnInNucleus, nucleus / 3);  // the nucleus was not cut short either
  }
}

TEST(Sampler, MinPDropsTokensBelowAShareOfTheBest) {
  const auto logits = logitsOf({0.5, 0.3, 0.15, 0.05});
  Sampler sampler({.temperature = 1.0f, .topK = 0, .topP = 1.0f, .minP = 0.2f, .seed = 4});
  auto counts = countDraws(sampler, logits, 1000);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_EQ(counts[3], 0);  // 0.05 < 0.2 x 0.5

  Sampler stricter({.temperature = 1.0f, .topK = 0, .topP = 1.0f, .minP = 0.5f, .seed = 4});
  counts = countDraws(stricter, logits, 1000);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_EQ(counts[2], 0);  // 0.15 < 0.5 x 0.5
  EXPECT_EQ(counts[3], 0);
}

TEST(Sampler, MinPAndTopPTogetherKeepTheSmallerSet) {
  const auto logits = logitsOf({0.4, 0.3, 0.2, 0.1});
  // Top-p 0.95 alone keeps all four; min-p 0.3 alone keeps 0, 1 and 2. Together: 0, 1, 2.
  Sampler sampler({.temperature = 1.0f, .topK = 0, .topP = 0.95f, .minP = 0.3f, .seed = 6});
  auto counts = countDraws(sampler, logits, 1000);
  EXPECT_GT(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
  // Top-p 0.6 alone keeps 0 and 1 (measured against all four, before min-p).
  Sampler narrower({.temperature = 1.0f, .topK = 0, .topP = 0.6f, .minP = 0.3f, .seed = 6});
  counts = countDraws(narrower, logits, 1000);
  EXPECT_GT(counts[1], 0);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
}

// Penalties, seen through greedy choices in a 3-token vocabulary: each case sits the
// penalised token just above or just below a rival, so only the exact adjustment passes.
Token greedyWith(SamplingParams params, std::vector<float> logits, std::vector<Token> history) {
  params.temperature = 0.0f;
  Sampler sampler(params);
  return sampler.sample(logits, history);
}

TEST(SamplerPenalties, RepetitionDividesAPositiveLogit) {
  const SamplingParams params = {.repeatPenalty = 1.1f};  // 2.0 becomes 1.818
  EXPECT_EQ(greedyWith(params, {2.0f, 1.82f, 0.0f}, {0}), 1);
  EXPECT_EQ(greedyWith(params, {2.0f, 1.81f, 0.0f}, {0}), 0);
  EXPECT_EQ(greedyWith(params, {2.0f, 1.82f, 0.0f}, {2}), 0);  // only the repeated token moves
}

TEST(SamplerPenalties, RepetitionMultipliesANegativeLogit) {
  const SamplingParams params = {.repeatPenalty = 1.1f};  // -1.0 becomes -1.1
  EXPECT_EQ(greedyWith(params, {-1.0f, -1.09f, -5.0f}, {0}), 1);
  EXPECT_EQ(greedyWith(params, {-1.0f, -1.11f, -5.0f}, {0}), 0);
}

TEST(SamplerPenalties, RepetitionCountsATokenOnce) {
  const SamplingParams params = {.repeatPenalty = 1.1f};
  EXPECT_EQ(greedyWith(params, {2.0f, 1.81f, 0.0f}, {0, 0, 0, 0}), 0);
}

TEST(SamplerPenalties, PresenceSubtractsOncePerDistinctToken) {
  const SamplingParams params = {.presencePenalty = 0.2f};  // 1.0 becomes 0.8, however often
  EXPECT_EQ(greedyWith(params, {1.0f, 0.79f, 0.0f}, {0, 0, 0}), 0);
  EXPECT_EQ(greedyWith(params, {1.0f, 0.81f, 0.0f}, {0, 0, 0}), 1);
}

TEST(SamplerPenalties, FrequencySubtractsPerOccurrence) {
  const SamplingParams params = {.frequencyPenalty = 0.1f};  // three times: 1.0 becomes 0.7
  EXPECT_EQ(greedyWith(params, {1.0f, 0.69f, 0.0f}, {0, 2, 0, 0}), 0);
  EXPECT_EQ(greedyWith(params, {1.0f, 0.71f, 0.0f}, {0, 2, 0, 0}), 1);
  // The other token in the history moved by one occurrence only: 0.65 - 0.1 < 0.6.
  EXPECT_EQ(greedyWith(params, {0.0f, 0.6f, 0.65f}, {0, 2, 0, 0}), 1);
}

TEST(SamplerPenalties, NegativePresenceAndFrequencyEncourage) {
  const SamplingParams params = {.presencePenalty = -0.5f, .frequencyPenalty = -0.25f};
  EXPECT_EQ(greedyWith(params, {0.95f, 0.0f, 0.9f}, {1, 1}), 1);  // 0 + 0.5 + 2 x 0.25 = 1.0
  EXPECT_EQ(greedyWith(params, {1.05f, 0.0f, 0.9f}, {1, 1}), 0);
}

TEST(SamplerPenalties, AllApplyTogetherInOrder) {
  // Repetition first, then presence and frequency: 3.0 / 1.5 - 0.5 - 2 x 0.25 = 1.0.
  const SamplingParams params = {
      .repeatPenalty = 1.5f, .presencePenalty = 0.5f, .frequencyPenalty = 0.25f};
  EXPECT_EQ(greedyWith(params, {3.0f, 1.01f, 0.0f}, {0, 0}), 1);
  EXPECT_EQ(greedyWith(params, {3.0f, 0.99f, 0.0f}, {0, 0}), 0);
}

TEST(SamplerPenalties, OnlyTheLastNTokensCount) {
  SamplingParams params = {.presencePenalty = 1.0f, .penaltyLastN = 3};
  EXPECT_EQ(greedyWith(params, {1.0f, 0.5f, 0.0f}, {0, 2, 2, 2}), 0);  // 0 is out of the window
  params.penaltyLastN = 4;
  EXPECT_EQ(greedyWith(params, {1.0f, 0.5f, 0.0f}, {0, 2, 2, 2}), 1);
  params.penaltyLastN = 0;
  EXPECT_EQ(greedyWith(params, {1.0f, 0.5f, 0.0f}, {0, 0}), 0);  // 0: off
}

TEST(SamplerPenalties, ApplyBeforeTopK) {
  Sampler sampler({.temperature = 1.0f, .topK = 1, .presencePenalty = 1.0f, .seed = 2});
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f};
  const std::vector<Token> history = {0};
  EXPECT_EQ(sampler.sample(logits, history), 1);
}

TEST(SamplerPenalties, IdsOutsideTheVocabularyAreIgnored) {
  const SamplingParams params = {.repeatPenalty = 2.0f, .presencePenalty = 1.0f};
  EXPECT_EQ(greedyWith(params, {1.0f, 0.5f, 0.0f}, {-1, 3, 150000}), 0);
}

TEST(Sampler, SurvivesInfiniteAndNaNLogits) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Sampler sampler(unfiltered());
  EXPECT_EQ(sampler.sample(std::vector<float>{0.0f, inf, 1.0f, inf}, {}), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{-inf, -inf, -inf}, {}), 0);
  EXPECT_EQ(sampler.sample(std::vector<float>{nan, -inf, 2.0f, -inf}, {}), 2);
  Sampler greedySampler(greedy());
  EXPECT_EQ(greedySampler.sample(std::vector<float>{nan, 0.0f}, {}), 1);
}

TEST(Sampler, RefusesEmptyLogitsAndInvalidParameters) {
  Sampler sampler(greedy());
  EXPECT_THROW(sampler.sample({}, {}), std::invalid_argument);
  EXPECT_THROW(Sampler({.topP = 0.0f}), std::invalid_argument);
}

TEST(Sampler, ReusesItsBufferAcrossVocabularySizes) {
  Sampler sampler({.temperature = 1.0f, .topK = 2, .seed = 1});
  EXPECT_EQ(sampler.sample(std::vector<float>{9.0f}, {}), 0);
  const auto big = randomLogits(150000, 5, 10.0);
  const Token token = sampler.sample(big, {});
  EXPECT_GE(token, 0);
  EXPECT_LT(token, 150000);
  EXPECT_LT(sampler.sample(std::vector<float>{0.0f, 1.0f, 0.5f}, {}), 3);
}

TEST(Validate, DefaultsAndBoundsAreValid) {
  EXPECT_EQ(validate({}), "");
  EXPECT_EQ(validate({.temperature = 0.0f}), "");
  EXPECT_EQ(validate({.temperature = 5.0f}), "");
  EXPECT_EQ(validate({.topK = 0}), "");
  EXPECT_EQ(validate({.topP = 1.0f}), "");
  EXPECT_EQ(validate({.minP = 0.0f}), "");
  EXPECT_EQ(validate({.minP = 1.0f}), "");
  EXPECT_EQ(validate({.repeatPenalty = 10.0f}), "");
  EXPECT_EQ(validate({.presencePenalty = -2.0f, .frequencyPenalty = 2.0f}), "");
  EXPECT_EQ(validate({.penaltyLastN = 0}), "");
}

TEST(Validate, NamesTheParameterAndItsRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(validate({.temperature = -0.5f}),
            "temperature must be between 0 and 5 (0: greedy) (got -0.5)");
  EXPECT_EQ(validate({.temperature = 7.5f}),
            "temperature must be between 0 and 5 (0: greedy) (got 7.5)");
  EXPECT_EQ(validate({.temperature = nan}),
            "temperature must be between 0 and 5 (0: greedy) (got nan)");
  EXPECT_EQ(validate({.topK = -1}), "topK must be 0 (off) or more (got -1)");
  EXPECT_EQ(validate({.topP = 0.0f}), "topP must be above 0 and at most 1 (1: off) (got 0)");
  EXPECT_EQ(validate({.topP = 1.5f}), "topP must be above 0 and at most 1 (1: off) (got 1.5)");
  EXPECT_EQ(validate({.minP = -0.1f}), "minP must be between 0 (off) and 1 (got -0.1)");
  EXPECT_EQ(validate({.repeatPenalty = 0.0f}),
            "repeatPenalty must be above 0 and at most 10 (1: off) (got 0)");
  EXPECT_EQ(validate({.repeatPenalty = 11.0f}),
            "repeatPenalty must be above 0 and at most 10 (1: off) (got 11)");
  EXPECT_EQ(validate({.presencePenalty = 2.5f}),
            "presencePenalty must be between -2 and 2 (0: off) (got 2.5)");
  EXPECT_EQ(validate({.frequencyPenalty = -3.0f}),
            "frequencyPenalty must be between -2 and 2 (0: off) (got -3)");
  EXPECT_EQ(validate({.penaltyLastN = -1}), "penaltyLastN must be 0 (off) or more (got -1)");
}

TEST(StopMatcher, PassesTextThroughWithoutStops) {
  StopMatcher matcher({});
  EXPECT_EQ(matcher.push("hello"), "hello");
  EXPECT_EQ(matcher.flush(), "");
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopMatcher, StopSplitAcrossPushes) {
  StopMatcher matcher({"</s>"});
  EXPECT_EQ(matcher.push("Hello <"), "Hello ");
  EXPECT_EQ(matcher.push("/"), "");
  EXPECT_EQ(matcher.push("s"), "");
  EXPECT_FALSE(matcher.stopped());
  EXPECT_EQ(matcher.push(">tail"), "");
  EXPECT_TRUE(matcher.stopped());
  EXPECT_EQ(matcher.push("more"), "");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, FalsePrefixIsReleased) {
  StopMatcher matcher({"</s>"});
  EXPECT_EQ(matcher.push("a </"), "a ");
  EXPECT_EQ(matcher.push("b>"), "</b>");
  EXPECT_EQ(matcher.push("x<"), "x");
  EXPECT_EQ(matcher.flush(), "<");
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopMatcher, StopInsideOnePushDropsTheRest) {
  StopMatcher matcher({"STOP"});
  EXPECT_EQ(matcher.push("abcSTOPdefSTOP"), "abc");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, StopAtTheStart) {
  StopMatcher matcher({"\n\n"});
  EXPECT_EQ(matcher.push("\n"), "");
  EXPECT_EQ(matcher.push("\n"), "");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, MultipleStops) {
  StopMatcher matcher({"END", "STOP"});
  EXPECT_EQ(matcher.push("xxST"), "xx");
  EXPECT_EQ(matcher.push("E"), "ST");  // "STE" starts no stop, but "E" may begin "END"
  EXPECT_EQ(matcher.push("N"), "");
  EXPECT_EQ(matcher.push("D!"), "");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, OverlappingCandidates) {
  // "abcd" is a candidate until the 'e'; "bce" completes inside it.
  StopMatcher matcher({"abcd", "bce"});
  EXPECT_EQ(matcher.push("ab"), "");
  EXPECT_EQ(matcher.push("c"), "");
  EXPECT_EQ(matcher.push("e"), "a");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, SelfOverlappingStop) {
  StopMatcher matcher({"aab"});
  EXPECT_EQ(matcher.push("a"), "");
  EXPECT_EQ(matcher.push("a"), "");
  EXPECT_EQ(matcher.push("a"), "a");
  EXPECT_EQ(matcher.push("b"), "");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, FirstCompletedStopWinsHoweverTheTextIsSplit) {
  StopMatcher whole({"abcd", "c"});
  EXPECT_EQ(whole.push("xabcd"), "xab");
  StopMatcher split({"abcd", "c"});
  EXPECT_EQ(split.push("xab"), "x");
  EXPECT_EQ(split.push("cd"), "ab");
  StopMatcher sameEnd({"cd", "bcd"});  // both complete on the 'd': the longer one counts
  EXPECT_EQ(sameEnd.push("abcd"), "a");
}

TEST(StopMatcher, ManyOneBytePushes) {
  StopMatcher matcher({"<|im_end|>"});
  std::string shown;
  for (char c : std::string("answer <|im_e<|im_end|> after")) {
    shown += matcher.push(std::string_view(&c, 1));
  }
  EXPECT_EQ(shown, "answer <|im_e");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, EmptyStopIsIgnored) {
  StopMatcher matcher({"", "x"});
  EXPECT_EQ(matcher.push("abc"), "abc");
  EXPECT_FALSE(matcher.stopped());
}

TEST(Utf8Joiner, AsciiPassesThrough) {
  Utf8Joiner joiner;
  EXPECT_EQ(joiner.push("plain text"), "plain text");
  EXPECT_EQ(joiner.flush(), "");
}

TEST(Utf8Joiner, JoinsSplitCharacters) {
  Utf8Joiner joiner;
  EXPECT_EQ(joiner.push("caf\xC3"), "caf");  // é, 2 bytes
  EXPECT_EQ(joiner.push("\xA9!"), "\xC3\xA9!");
  EXPECT_EQ(joiner.push("\xE2"), "");  // €, 3 bytes
  EXPECT_EQ(joiner.push("\x82"), "");
  EXPECT_EQ(joiner.push("\xAC"), "\xE2\x82\xAC");
  EXPECT_EQ(joiner.push("\xF0"), "");  // 😀, 4 bytes
  EXPECT_EQ(joiner.push("\x9F"), "");
  EXPECT_EQ(joiner.push("\x98"), "");
  EXPECT_EQ(joiner.push("\x80 ok"), "\xF0\x9F\x98\x80 ok");
  EXPECT_EQ(joiner.push("a\xF0\x9F"), "a");
  EXPECT_EQ(joiner.push("\x98\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(joiner.flush(), "");
}

TEST(Utf8Joiner, ReplacesInvalidBytes) {
  const std::string bad = "\xEF\xBF\xBD";
  Utf8Joiner joiner;
  EXPECT_EQ(joiner.push("a\x80!"), "a" + bad + "!");                  // a lone continuation byte
  EXPECT_EQ(joiner.push("\xFF"), bad);                                // never valid
  EXPECT_EQ(joiner.push("\xC0\xAF"), bad + bad);                      // overlong '/'
  EXPECT_EQ(joiner.push("\xE0\x80\xAF"), bad + bad + bad);            // overlong '/', 3 bytes
  EXPECT_EQ(joiner.push("\xF0\x80\x80\xAF"), bad + bad + bad + bad);  // and 4 bytes
  EXPECT_EQ(joiner.push("\xED\xA0\x80"), bad + bad + bad);            // a surrogate
  EXPECT_EQ(joiner.push("\xF4\x90\x80\x80"), bad + bad + bad + bad);  // past U+10FFFF
  EXPECT_EQ(joiner.push("\xC3"), "");
  EXPECT_EQ(joiner.push("A"), bad + "A");  // a character cut short by the next one
  EXPECT_EQ(joiner.push("\xE2\x82"), "");
  EXPECT_EQ(joiner.push("\xE2\x82\xAC"), bad + "\xE2\x82\xAC");
}

TEST(Utf8Joiner, FlushReplacesADanglingSequence) {
  Utf8Joiner joiner;
  EXPECT_EQ(joiner.push("x\xF0\x9F\x98"), "x");
  EXPECT_EQ(joiner.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(joiner.flush(), "");
  EXPECT_EQ(joiner.push("y"), "y");
}

}  // namespace
}  // namespace aibox::engine
