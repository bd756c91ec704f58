#include "runtime/server/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace aibox::server {

struct Scheduler::Sequence {
  Job job;
  std::shared_ptr<Ticket> ticket;
  std::optional<engine::KvCache> cache;  // over the shared pool, once admitted
  std::vector<Token> tokens;             // what the cache holds, position by position
  std::vector<std::uint64_t> hashes;     // of its published (or shared) full blocks
  std::uint32_t reserve = 0;             // blocks it may still allocate
  std::size_t fed = 0;                   // prompt tokens in the cache (shared or computed)
  std::size_t cached = 0;                // of those, shared from the prefix cache
  std::size_t generated = 0;
  std::optional<engine::Sampler> sampler;
  std::optional<engine::StopMatcher> stops;
  engine::Utf8Joiner joiner;
  std::optional<JsonMatcher> matcher;  // with a schema
  std::vector<Token> history;          // prompt and output, for the penalties
  std::vector<float> hidden;           // embedding job: this step's hidden states
  std::vector<float> pooled;           // embedding job: the pooled vector so far
  Token next = -1;                     // sampled, not yet in the cache
  bool done = false;
  std::chrono::steady_clock::time_point submitted = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> admitted;

  bool prefilling() const { return fed < job.prompt.size(); }
};

namespace {

std::uint32_t blocksFor(std::size_t positions) {
  return static_cast<std::uint32_t>((positions + BlockManager::kPositions - 1) /
                                    BlockManager::kPositions);
}

SchedulerOptions normalised(SchedulerOptions options) {
  options.parallel = std::max<std::uint32_t>(options.parallel, 1);
  options.stepTokens = std::max(options.stepTokens, options.parallel);
  if (options.kvBlocks == 0) {
    options.kvBlocks = options.parallel * blocksFor(options.context);
  }
  if (options.kvBlocks < blocksFor(options.context)) {
    throw std::invalid_argument(
        "the KV cache holds " + std::to_string(options.kvBlocks * BlockManager::kPositions) +
        " tokens, less than one context of " + std::to_string(options.context) +
        ": give it more memory or lower the context");
  }
  return options;
}

}  // namespace

Scheduler::Scheduler(const engine::Model& model, engine::Backend& backend, SchedulerOptions options)
    : model_(model),
      options_(normalised(options)),
      forward_(model, backend),
      pool_(std::make_unique<engine::KvPool>(model.config(), options_.kvBlocks, options_.kvType)),
      blocks_(options_.kvBlocks) {
  stats_.kvBlocks = options_.kvBlocks;
  const auto& tokenizer = model.tokenizer();
  for (std::size_t t = 0; t < tokenizer.size(); ++t) {
    if (tokenizer.isEndOfGeneration(static_cast<Token>(t))) {
      endTokens_.push_back(static_cast<Token>(t));
    }
  }
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    accepting_ = false;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<Ticket> Scheduler::submit(Job job) {
  auto sequence = std::make_unique<Sequence>();
  sequence->job = std::move(job);
  sequence->ticket = std::make_shared<Ticket>();
  auto ticket = sequence->ticket;
  {
    std::lock_guard lock(mutex_);
    if (!accepting_ || waiting_.size() >= options_.queue) {
      return nullptr;
    }
    waiting_.push_back(std::move(sequence));
    stats_.waiting = waiting_.size();
  }
  wake_.notify_all();
  return ticket;
}

void Scheduler::stopAccepting() {
  std::lock_guard lock(mutex_);
  accepting_ = false;
}

bool Scheduler::idle() const {
  std::lock_guard lock(mutex_);
  return stats_.running == 0 && waiting_.empty();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Scheduler::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !waiting_.empty() || !running_.empty(); });
    if (stopping_) {
      break;
    }
    admit(lock);
    lock.unlock();
    step();
    lock.lock();
  }
  lock.unlock();
  for (auto& sequence : running_) {
    finish(*sequence, "cancelled");
  }
  running_.clear();
  for (auto& sequence : waiting_) {
    finish(*sequence, "cancelled");
  }
}

// Moves waiting jobs into the running set, first come first served, while there is room: a
// job is admitted when the blocks it may come to need are not promised to others. It starts
// after the longest run of whole blocks of its prompt found in the prefix cache; at least the
// prompt's last token is computed, for its logits.
void Scheduler::admit(std::unique_lock<std::mutex>& lock) {
  (void)lock;
  while (!waiting_.empty() && running_.size() < options_.parallel) {
    auto& sequence = *waiting_.front();
    const auto& prompt = sequence.job.prompt;
    const bool embedding = sequence.job.pooling != engine::Pooling::None;
    std::size_t lifetime = embedding ? prompt.size() : options_.context;
    if (sequence.job.maxTokens > 0 && !embedding) {
      lifetime = std::min(lifetime, prompt.size() + sequence.job.maxTokens);
    }
    std::vector<std::uint32_t> shared;
    if (!embedding) {
      shared = blocks_.match(
          std::span<const Token>(prompt).first(prompt.empty() ? 0 : prompt.size() - 1),
          sequence.hashes);
    }
    auto need = blocksFor(lifetime) - static_cast<std::uint32_t>(shared.size());
    if (blocks_.available() < reserved_ + need) {
      for (auto block : shared) {
        blocks_.release(block);
      }
      break;  // it waits for running sequences to end
    }
    reserved_ += need;
    sequence.reserve = need;
    std::size_t reused = shared.size() * BlockManager::kPositions;
    sequence.cache.emplace(*pool_);
    sequence.cache->blocks() = std::move(shared);
    sequence.cache->setUsed(static_cast<std::uint32_t>(reused));
    sequence.tokens.assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(reused));
    sequence.admitted = std::chrono::steady_clock::now();
    sequence.fed = reused;
    sequence.cached = reused;
    sequence.sampler.emplace(sequence.job.sampling);
    sequence.stops.emplace(sequence.job.stops);
    if (sequence.job.schema && sequence.job.filter != nullptr) {
      sequence.matcher.emplace(sequence.job.schema);
    }
    sequence.history = prompt;
    stats_.prefixQueries += prompt.size();
    stats_.prefixHits += reused;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  stats_.waiting = waiting_.size();
  stats_.running = running_.size();
  stats_.kvBlocksInUse = blocks_.inUse();
}

// Gives the sequence the blocks for `tokens` more positions, from its reservation.
bool Scheduler::grow(Sequence& sequence, std::size_t tokens) {
  auto& table = sequence.cache->blocks();
  while (table.size() < blocksFor(sequence.cache->used() + tokens)) {
    auto block = sequence.reserve > 0 ? blocks_.allocate() : std::nullopt;
    if (!block) {
      return false;
    }
    --sequence.reserve;
    --reserved_;
    table.push_back(*block);
  }
  return true;
}

// Publishes the blocks the last pass filled, so later prompts can share them.
void Scheduler::publish(Sequence& sequence) {
  const auto& table = sequence.cache->blocks();
  while ((sequence.hashes.size() + 1) * BlockManager::kPositions <= sequence.tokens.size()) {
    auto index = sequence.hashes.size();
    auto parent = index == 0 ? 0 : sequence.hashes.back();
    sequence.hashes.push_back(
        blocks_.publish(table[index], parent,
                        std::span<const Token>(sequence.tokens)
                            .subspan(index * BlockManager::kPositions, BlockManager::kPositions)));
  }
}

void Scheduler::step() {
  // Cancelled jobs leave before the pass; their published blocks stay cached.
  for (auto& sequence : running_) {
    if (sequence->ticket->cancelled()) {
      finish(*sequence, "cancelled");
    }
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });

  // Decode tokens first (one per sequence), then prompt chunks in arrival order.
  std::vector<engine::SequenceInput> batch;
  std::vector<Sequence*> owners;
  std::size_t budget = options_.stepTokens;
  for (auto& sequence : running_) {
    if (!sequence->prefilling()) {
      if (!grow(*sequence, 1)) {
        finish(*sequence, "error", "the KV cache ran out of blocks");
        continue;
      }
      batch.push_back({&*sequence->cache, std::span<const Token>(&sequence->next, 1), true});
      owners.push_back(sequence.get());
      --budget;
    }
  }
  for (auto& sequence : running_) {
    if (sequence->prefilling() && budget > 0) {
      const auto& prompt = sequence->job.prompt;
      std::size_t count = std::min(budget, prompt.size() - sequence->fed);
      if (!grow(*sequence, count)) {
        finish(*sequence, "error", "the KV cache ran out of blocks");
        continue;
      }
      bool last = sequence->fed + count == prompt.size();
      float* hidden = nullptr;
      if (sequence->job.pooling != engine::Pooling::None) {
        sequence->hidden.resize(count * model_.config().embedding);
        hidden = sequence->hidden.data();
        last = false;  // no logits: nothing is generated
      }
      batch.push_back({&*sequence->cache,
                       std::span<const Token>(prompt).subspan(sequence->fed, count), last, hidden});
      owners.push_back(sequence.get());
      budget -= count;
    }
  }
  if (batch.empty()) {
    return;
  }
  auto result = forward_.run(batch);
  std::uint64_t promptTokens = 0;
  std::uint64_t generated = 0;
  if (auto* error = std::get_if<engine::Error>(&result)) {
    for (auto* owner : owners) {
      finish(*owner, "error", error->message);
    }
  } else {
    auto& logits = std::get<0>(result);
    std::size_t at = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& sequence = *owners[i];
      sequence.tokens.insert(sequence.tokens.end(), batch[i].tokens.begin(), batch[i].tokens.end());
      publish(sequence);
      if (batch[i].hidden != nullptr) {
        pool(sequence, batch[i].tokens.size());
      }
      if (sequence.prefilling()) {
        sequence.fed += batch[i].tokens.size();
        promptTokens += batch[i].tokens.size();
        if (batch[i].hidden != nullptr && !sequence.prefilling()) {
          finish(sequence, "stop");
        }
      } else {
        ++generated;
      }
      if (batch[i].wantLogits) {
        advance(sequence, logits[at++]);
      }
    }
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });
  std::lock_guard lock(mutex_);
  stats_.steps += 1;
  stats_.promptTokens += promptTokens;
  stats_.generationTokens += generated;
  stats_.running = running_.size();
  stats_.kvBlocksInUse = blocks_.inUse();
  stats_.kvBlocksCached = blocks_.cached();
}

namespace {

// log-softmax of the chosen token and of the `top` most likely ones.
void addLogprobs(std::span<const float> logits, Token chosen, int top, Piece& piece) {
  float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) {
    sum += std::exp(static_cast<double>(l - max));
  }
  auto logprob = [&](Token t) {
    return static_cast<float>(static_cast<double>(logits[static_cast<std::size_t>(t)] - max) -
                              std::log(sum));
  };
  piece.chosen = TokenChoice{chosen, logprob(chosen)};
  if (top <= 0) {
    return;
  }
  std::vector<Token> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto count = std::min<std::size_t>(static_cast<std::size_t>(top), ids.size());
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(count), ids.end(),
                    [&](Token a, Token b) {
                      auto la = logits[static_cast<std::size_t>(a)];
                      auto lb = logits[static_cast<std::size_t>(b)];
                      return la > lb || (la == lb && a < b);
                    });
  for (std::size_t i = 0; i < count; ++i) {
    piece.top.push_back({ids[i], logprob(ids[i])});
  }
}

}  // namespace

// Samples the next token from `logits` and tells the job what it brought.
void Scheduler::advance(Sequence& sequence, std::span<const float> rawLogits) {
  const auto& job = sequence.job;
  const auto& tokenizer = model_.tokenizer();
  std::vector<float> biased;
  std::span<const float> logits = rawLogits;
  if (!job.logitBias.empty()) {
    biased.assign(rawLogits.begin(), rawLogits.end());
    for (const auto& [token, bias] : job.logitBias) {
      if (token >= 0 && static_cast<std::size_t>(token) < biased.size()) {
        biased[static_cast<std::size_t>(token)] += bias;
      }
    }
    logits = biased;
  }
  if (job.ignoreEos) {
    if (biased.empty()) {
      biased.assign(rawLogits.begin(), rawLogits.end());
      logits = biased;
    }
    for (Token end : endTokens_) {
      biased[static_cast<std::size_t>(end)] = -INFINITY;
    }
  }
  if (sequence.matcher) {
    if (biased.empty()) {
      biased.assign(rawLogits.begin(), rawLogits.end());
      logits = biased;
    }
    if (!job.filter->mask(*sequence.matcher, biased)) {
      finish(sequence, "error", "no token of the vocabulary can continue the JSON output");
      return;
    }
  }
  Token next = sequence.sampler->sample(logits, sequence.history);
  if (tokenizer.isEndOfGeneration(next)) {
    auto rest = sequence.stops->push(sequence.joiner.flush()) + sequence.stops->flush();
    if (!rest.empty()) {
      job.onPiece(Piece{std::move(rest), std::nullopt, {}});
    }
    finish(sequence, "stop");
    return;
  }
  sequence.history.push_back(next);
  ++sequence.generated;
  Piece piece;
  piece.text = sequence.stops->push(sequence.joiner.push(tokenizer.piece(next)));
  if (job.topLogprobs >= 0) {
    addLogprobs(logits, next, job.topLogprobs, piece);
  }
  if (sequence.matcher) {
    sequence.matcher->feed(tokenizer.piece(next));
  }
  // A finished JSON value ends the output, as an end token would.
  bool stopped = sequence.stops->stopped() || (sequence.matcher && sequence.matcher->finished());
  bool full = sequence.tokens.size() + 1 >= options_.context;
  bool limit = job.maxTokens > 0 && sequence.generated >= job.maxTokens;
  if (!stopped && (full || limit)) {
    piece.text += sequence.stops->push(sequence.joiner.flush());
    piece.text += sequence.stops->flush();
  }
  job.onPiece(std::move(piece));
  if (stopped) {
    finish(sequence, "stop");
  } else if (full || limit) {
    finish(sequence, "length");
  } else {
    sequence.next = next;
  }
}

void Scheduler::pool(Sequence& sequence, std::size_t count) const {
  const std::size_t e = model_.config().embedding;
  const auto& prompt = sequence.job.prompt;
  sequence.pooled.resize(e, 0.0f);
  auto row = [&](std::size_t r) {
    return std::span<const float>(sequence.hidden).subspan(r * e, e);
  };
  switch (sequence.job.pooling) {
    case engine::Pooling::Mean:
      for (std::size_t r = 0; r < count; ++r) {
        for (std::size_t i = 0; i < e; ++i) {
          sequence.pooled[i] += row(r)[i] / static_cast<float>(prompt.size());
        }
      }
      break;
    case engine::Pooling::Cls:
      if (sequence.fed == 0) {
        std::copy_n(row(0).begin(), e, sequence.pooled.begin());
      }
      break;
    case engine::Pooling::Last:
      if (sequence.fed + count == prompt.size()) {
        std::copy_n(row(count - 1).begin(), e, sequence.pooled.begin());
      }
      break;
    case engine::Pooling::None:
      break;
  }
}

void Scheduler::finish(Sequence& sequence, std::string reason, std::string error) {
  if (sequence.done) {
    return;
  }
  sequence.done = true;
  if (sequence.cache) {
    for (auto block : sequence.cache->blocks()) {
      blocks_.release(block);
    }
    sequence.cache->blocks().clear();
    reserved_ -= sequence.reserve;
    sequence.reserve = 0;
  }
  Finish finish;
  finish.reason = std::move(reason);
  finish.error = std::move(error);
  finish.promptTokens = sequence.job.prompt.size();
  finish.cachedTokens = sequence.cached;
  finish.completionTokens = sequence.generated;
  if (sequence.job.pooling != engine::Pooling::None && finish.reason == "stop") {
    double norm = 0;
    for (float v : sequence.pooled) {
      norm += static_cast<double>(v) * v;
    }
    norm = std::sqrt(norm);
    for (float& v : sequence.pooled) {
      v = norm > 0 ? static_cast<float>(v / norm) : 0.0f;
    }
    finish.embedding = std::move(sequence.pooled);
  }
  finish.queueSeconds =
      std::chrono::duration<double>(sequence.admitted.value_or(std::chrono::steady_clock::now()) -
                                    sequence.submitted)
          .count();
  if (sequence.job.onFinish) {
    sequence.job.onFinish(finish);
  }
}

}  // namespace aibox::server
