#include "runtime/engine/sampler.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace aibox::engine {

namespace {

using Candidate = std::pair<float, Token>;  // a logit (later a weight) and its token

// The order of preference: higher value first, then the lower id. A total order, so the set
// that top-k keeps and the order that top-p walks are the same on every standard library.
bool better(const Candidate& a, const Candidate& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// Written so that NaN is outside every range.
bool inside(float value, float low, float high) {
  return value >= low && value <= high;
}

// Weights are in [0, 1], the best token's being 1. The bit pattern of a non-negative float
// grows with its value, so its top bits sort weights into buckets an eighth of an octave wide.
constexpr int kBucketShift = 20;
constexpr std::size_t kBuckets = 512;  // 64 octaves; lighter tokens all share the last bucket

std::size_t bucketOf(float weight) {
  const auto one = std::bit_cast<std::uint32_t>(1.0f);
  const auto bits = std::bit_cast<std::uint32_t>(weight);
  return bits >= one ? 0 : std::min<std::size_t>((one - bits) >> kBucketShift, kBuckets - 1);
}

std::string rangeError(std::string_view name, std::string_view range, float value) {
  char text[32];
  const auto written = std::to_chars(std::begin(text), std::end(text), value).ptr;
  return std::string(name) + " must be " + std::string(range) + " (got " +
         std::string(std::begin(text), written) + ")";
}

std::string rangeError(std::string_view name, std::string_view range, int value) {
  return std::string(name) + " must be " + std::string(range) + " (got " + std::to_string(value) +
         ")";
}

}  // namespace

std::string validate(const SamplingParams& params) {
  if (!inside(params.temperature, 0.0f, 5.0f)) {
    return rangeError("temperature", "between 0 and 5 (0: greedy)", params.temperature);
  }
  if (params.topK < 0) {
    return rangeError("topK", "0 (off) or more", params.topK);
  }
  if (!(params.topP > 0.0f && params.topP <= 1.0f)) {
    return rangeError("topP", "above 0 and at most 1 (1: off)", params.topP);
  }
  if (!inside(params.minP, 0.0f, 1.0f)) {
    return rangeError("minP", "between 0 (off) and 1", params.minP);
  }
  if (!(params.repeatPenalty > 0.0f && params.repeatPenalty <= 10.0f)) {
    return rangeError("repeatPenalty", "above 0 and at most 10 (1: off)", params.repeatPenalty);
  }
  if (!inside(params.presencePenalty, -2.0f, 2.0f)) {
    return rangeError("presencePenalty", "between -2 and 2 (0: off)", params.presencePenalty);
  }
  if (!inside(params.frequencyPenalty, -2.0f, 2.0f)) {
    return rangeError("frequencyPenalty", "between -2 and 2 (0: off)", params.frequencyPenalty);
  }
  if (params.penaltyLastN < 0) {
    return rangeError("penaltyLastN", "0 (off) or more", params.penaltyLastN);
  }
  return {};
}

Sampler::Sampler(const SamplingParams& params) : params_(params), random_(params.seed) {
  // A sampler built from unchecked parameters is a bug in the caller: input from users goes
  // through validate() first and is refused there with the same message.
  if (auto error = validate(params_); !error.empty()) {
    throw std::invalid_argument("sampling parameters: " + error);
  }
}

Token Sampler::sample(std::span<const float> logits, std::span<const Token> history) {
  if (logits.empty()) {
    throw std::invalid_argument("Sampler::sample: no logits (empty vocabulary)");
  }
  candidates_.resize(logits.size());
  for (std::size_t id = 0; id < logits.size(); ++id) {
    // A NaN logit (a broken model) would poison every comparison; it is never chosen instead.
    const float logit =
        std::isnan(logits[id]) ? -std::numeric_limits<float>::infinity() : logits[id];
    candidates_[id] = {logit, static_cast<Token>(id)};
  }
  applyPenalties(history);

  if (params_.temperature <= 0.0f) {
    return best();
  }
  bool sortedBest = false;  // whether candidates_ is in the order of better()
  const auto topK = static_cast<std::size_t>(params_.topK);
  if (topK > 0 && topK < candidates_.size()) {
    // A heap of the best k seen so far: one comparison for most of a large vocabulary.
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(topK),
                      candidates_.end(), better);
    candidates_.resize(topK);
    sortedBest = true;
  }
  const float maxLogit =
      sortedBest ? candidates_.front().first
                 : std::max_element(candidates_.begin(), candidates_.end(),
                                    [](const auto& a, const auto& b) { return a.first < b.first; })
                       ->first;
  if (std::isinf(maxLogit)) {
    // +inf: the model insists on a token; -inf everywhere: nothing is allowed. Both leave no
    // distribution to draw from (inf - inf is NaN), so take the first of the best.
    return best();
  }
  double totalWeight = 0.0;
  for (auto& [value, id] : candidates_) {
    value = std::exp((value - maxLogit) / params_.temperature);  // the best weighs exactly 1
    totalWeight += value;
  }
  if (params_.minP > 0.0f) {
    // Min-p runs before top-p here although the documented order is the other way round: both
    // keep a head of the tokens by probability, so the result is the same, and min-p is a
    // linear pass that leaves fewer tokens to sort. erase_if keeps their order (portable).
    const float minWeight = params_.minP;
    std::erase_if(candidates_, [minWeight](const Candidate& c) { return c.first < minWeight; });
  }
  if (params_.topP < 1.0f) {
    keepNucleus(params_.topP * totalWeight, sortedBest);
  }
  return draw();
}

void Sampler::applyPenalties(std::span<const Token> history) {
  const bool enabled = params_.repeatPenalty != 1.0f || params_.presencePenalty != 0.0f ||
                       params_.frequencyPenalty != 0.0f;
  if (!enabled || params_.penaltyLastN <= 0 || history.empty()) {
    return;
  }
  const auto window = std::min(history.size(), static_cast<std::size_t>(params_.penaltyLastN));
  recent_.assign(history.end() - static_cast<std::ptrdiff_t>(window), history.end());
  std::sort(recent_.begin(), recent_.end());
  const auto vocabulary = static_cast<Token>(candidates_.size());
  for (auto run = recent_.begin(); run != recent_.end();) {
    const Token token = *run;
    const auto runEnd = std::upper_bound(run, recent_.end(), token);
    const auto count = static_cast<float>(runEnd - run);
    run = runEnd;
    if (token < 0 || token >= vocabulary) {
      continue;  // not a token of this vocabulary (a special or foreign id): nothing to penalise
    }
    float& logit = candidates_[static_cast<std::size_t>(token)].first;
    logit = logit > 0.0f ? logit / params_.repeatPenalty : logit * params_.repeatPenalty;
    logit -= params_.presencePenalty + params_.frequencyPenalty * count;
  }
}

Token Sampler::best() const {
  return std::min_element(candidates_.begin(), candidates_.end(), better)->second;
}

void Sampler::keepNucleus(double threshold, bool sortedBest) {
  if (!sortedBest) {
    // Sorting all of a 150k vocabulary would cost more than the rest of sampling. One pass
    // totals the weight per bucket, which bounds the nucleus; only the tokens up to that
    // bucket are sorted.
    std::array<double, kBuckets> bucketWeight{};
    for (const auto& candidate : candidates_) {
      bucketWeight[bucketOf(candidate.first)] += candidate.first;
    }
    std::size_t lastBucket = 0;
    double cumulative = bucketWeight[0];
    while (cumulative < threshold && lastBucket + 1 < kBuckets) {
      cumulative += bucketWeight[++lastBucket];
    }
    const auto head = std::partition(
        candidates_.begin(), candidates_.end(),
        [lastBucket](const Candidate& c) { return bucketOf(c.first) <= lastBucket; });
    candidates_.erase(head, candidates_.end());
    std::sort(candidates_.begin(), candidates_.end(), better);
  }
  // Should rounding (the same weights, added in another order) leave the sum of the head just
  // short of the threshold, the whole head is kept.
  double cumulative = 0.0;
  std::size_t kept = 0;
  while (kept < candidates_.size()) {
    cumulative += candidates_[kept++].first;
    if (cumulative >= threshold) {
      break;
    }
  }
  candidates_.resize(kept);
}

Token Sampler::draw() {
  double total = 0.0;
  for (const auto& candidate : candidates_) {
    total += candidate.first;
  }
  // The top 53 bits as a double in [0, 1): unlike the std distributions, the same on every
  // standard library.
  const double unit = static_cast<double>(random_() >> 11) * 0x1.0p-53;
  const double target = unit * total;
  double cumulative = 0.0;
  Token lastWeighted = candidates_.front().second;
  for (const auto& [weight, id] : candidates_) {
    if (weight <= 0.0f) {
      continue;
    }
    cumulative += weight;
    lastWeighted = id;
    if (target < cumulative) {
      return id;
    }
  }
  return lastWeighted;  // rounding left the target at the very end
}

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& stop) { return stop.empty(); });
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) {
    return {};
  }
  pending_ += text;
  // The stop that completes first wins (the one ending earliest, then the longest), so the
  // result does not depend on how the text was split into pushes.
  std::size_t stopStart = std::string::npos;
  std::size_t stopEnd = std::string::npos;
  for (const auto& stop : stops_) {
    const auto at = pending_.find(stop);
    if (at == std::string::npos) {
      continue;
    }
    const auto end = at + stop.size();
    if (end < stopEnd || (end == stopEnd && at < stopStart)) {
      stopStart = at;
      stopEnd = end;
    }
  }
  if (stopStart != std::string::npos) {
    stopped_ = true;
    std::string shown = pending_.substr(0, stopStart);
    pending_.clear();
    return shown;
  }
  // Hold back the longest tail that some stop string starts with; the rest is safe.
  std::size_t held = 0;
  for (const auto& stop : stops_) {
    const auto longest = std::min(stop.size() - 1, pending_.size());
    for (std::size_t length = longest; length > held; --length) {
      if (pending_.ends_with(std::string_view(stop).substr(0, length))) {
        held = length;
        break;
      }
    }
  }
  std::string shown = pending_.substr(0, pending_.size() - held);
  pending_.erase(0, pending_.size() - held);
  return shown;
}

std::string StopMatcher::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the sequence a lead byte starts, and the range of its second byte (which rules
// out overlong forms, surrogates and code points past U+10FFFF); 0 for a byte that cannot lead.
struct Lead {
  std::size_t length = 0;
  unsigned secondLow = 0x80;
  unsigned secondHigh = 0xBF;
};

Lead leadOf(unsigned char byte) {
  if (byte < 0x80) {
    return {1};
  }
  if (byte >= 0xC2 && byte <= 0xDF) {
    return {2};
  }
  if (byte >= 0xE0 && byte <= 0xEF) {
    return {3, byte == 0xE0 ? 0xA0U : 0x80U, byte == 0xED ? 0x9FU : 0xBFU};
  }
  if (byte >= 0xF0 && byte <= 0xF4) {
    return {4, byte == 0xF0 ? 0x90U : 0x80U, byte == 0xF4 ? 0x8FU : 0xBFU};
  }
  return {};
}

}  // namespace

std::string Utf8Joiner::push(std::string_view bytes) {
  pending_ += bytes;
  std::string out;
  out.reserve(pending_.size());
  std::size_t at = 0;
  while (at < pending_.size()) {
    const auto lead = leadOf(static_cast<unsigned char>(pending_[at]));
    if (lead.length == 0) {
      out += kReplacement;
      ++at;
      continue;
    }
    // Count the bytes that still fit the sequence; a bad one ends it (one U+FFFD for the
    // bytes before it, as Unicode recommends) and is looked at again as a possible lead.
    std::size_t valid = 1;
    while (valid < lead.length && at + valid < pending_.size()) {
      const auto byte = static_cast<unsigned char>(pending_[at + valid]);
      const unsigned low = valid == 1 ? lead.secondLow : 0x80;
      const unsigned high = valid == 1 ? lead.secondHigh : 0xBF;
      if (byte < low || byte > high) {
        break;
      }
      ++valid;
    }
    if (valid == lead.length) {
      out.append(pending_, at, valid);
    } else if (at + valid == pending_.size()) {
      break;  // a character still arriving: keep it for the next push
    } else {
      out += kReplacement;
    }
    at += valid;
  }
  pending_.erase(0, at);
  return out;
}

std::string Utf8Joiner::flush() {
  std::string out = pending_.empty() ? std::string() : std::string(kReplacement);
  pending_.clear();
  return out;
}

}  // namespace aibox::engine
