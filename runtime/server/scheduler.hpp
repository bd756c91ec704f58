#pragma once
// Iteration-level continuous batching over one model. A thread runs steps: each step is one
// forward pass over every running sequence (one new token each) plus chunks of the prompts
// being read, within a token budget, so a long prompt never holds up the tokens of the others.
// Requests join and leave between steps; at most `parallel` run at once, the rest wait in
// FIFO order, and a full wait queue refuses new ones.
//
// The KV cache is paged: one pool of blocks of 16 positions (blocks.hpp), taken by sequences
// as they grow and given back when they end. A request is admitted when the blocks it can
// come to need (its prompt and max_tokens, at most the context) are there for it, so a running
// sequence never runs out. Full blocks are published under the hash of the tokens up to their
// end and kept after their request ends: a request whose prompt starts with the same tokens
// (a conversation's next turn, one system prompt) shares them and skips that part.
//
// Batching does not change results: a sequence's logits depend only on its own tokens, and
// each request samples with its own seeded sampler.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine/model.hpp"
#include "runtime/engine/sampler.hpp"
#include "runtime/server/blocks.hpp"
#include "runtime/server/json_schema.hpp"

namespace aibox::server {

using engine::Token;

struct TokenChoice {
  Token token = 0;
  float logprob = 0;
};

// What one generated token brought: the text now safe to show (may be empty while a UTF-8
// character or a possible stop string is held back) and, when asked, its log-probability and
// the most likely alternatives.
struct Piece {
  std::string text;
  std::optional<TokenChoice> chosen;
  std::vector<TokenChoice> top;
};

struct Finish {
  std::string reason;  // "stop", "length", "cancelled" or "error"
  std::string error;   // for "error"
  std::size_t promptTokens = 0;
  std::size_t cachedTokens = 0;  // prompt tokens taken from the prefix cache
  std::size_t completionTokens = 0;
  double queueSeconds = 0;       // from submit() to admission (to the end when never admitted)
  std::vector<float> embedding;  // an embedding job's pooled vector, L2-normalised
};

struct Job {
  std::vector<Token> prompt;
  engine::SamplingParams sampling;
  std::uint32_t maxTokens = 0;  // 0: until the context is full
  std::vector<std::string> stops;
  std::map<Token, float> logitBias;
  int topLogprobs = -1;    // -1: no log-probabilities; 0..20: the chosen one and this many more
  bool ignoreEos = false;  // never end on an end-of-generation token (benchmarks)
  // Constrained decoding: only tokens that keep the output a prefix of a value of the schema.
  std::shared_ptr<const JsonSchema> schema;
  const TokenFilter* filter = nullptr;  // the model's, needed with a schema
  // Not None: an embedding job. The whole prompt is computed (no prefix-cache reuse, since the
  // pooling needs every token's hidden state), pooled into Finish::embedding, and nothing is
  // generated.
  engine::Pooling pooling = engine::Pooling::None;
  // Called on the scheduler's thread, in order: pieces, then exactly one finish.
  std::function<void(Piece)> onPiece;
  std::function<void(const Finish&)> onFinish;
};

// A submitted job; cancel() from any thread ends it at the next step with "cancelled".
class Ticket {
 public:
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  std::uint32_t parallel = 4;      // sequences running at once
  std::uint32_t context = 4096;    // positions per sequence
  std::uint32_t stepTokens = 256;  // tokens per forward pass (decode tokens first)
  std::uint32_t queue = 64;        // waiting requests beyond which submit() refuses
  std::uint32_t kvBlocks = 0;      // blocks of the KV pool; 0: parallel x context's worth
  engine::KvType kvType = engine::KvType::F32;
};

struct SchedulerStats {
  std::size_t running = 0;
  std::size_t waiting = 0;
  std::size_t kvBlocks = 0;         // blocks of the pool
  std::size_t kvBlocksInUse = 0;    // referenced by running sequences
  std::size_t kvBlocksCached = 0;   // holding a published prefix (in use or kept)
  std::uint64_t prefixQueries = 0;  // prompt tokens looked up in the prefix cache
  std::uint64_t prefixHits = 0;     // of those, found
  std::uint64_t promptTokens = 0;   // prompt tokens computed
  std::uint64_t generationTokens = 0;
  std::uint64_t steps = 0;
};

class Scheduler {
 public:
  Scheduler(const engine::Model& model, engine::Backend& backend, SchedulerOptions options);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();  // cancels what is left and joins the thread

  // Queues a job; null when the wait queue is full or the scheduler stops accepting. The job
  // must fit: prompt.size() + 1 <= context (checked by the caller, which can say both numbers).
  // The pool must hold at least one context (kvBlocks; else std::invalid_argument at start).
  std::shared_ptr<Ticket> submit(Job job);

  // Stops accepting; what is queued or running goes on.
  void stopAccepting();
  // True once nothing is queued or running.
  bool idle() const;
  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Sequence;

  void loop();
  void admit(std::unique_lock<std::mutex>& lock);
  bool grow(Sequence& sequence, std::size_t tokens);
  void publish(Sequence& sequence);
  void step();
  void advance(Sequence& sequence, std::span<const float> logits);
  // An embedding job: adds this step's `count` hidden states to its pooled vector.
  void pool(Sequence& sequence, std::size_t count) const;
  void finish(Sequence& sequence, std::string reason, std::string error = {});

  const engine::Model& model_;
  SchedulerOptions options_;
  engine::Forward forward_;
  std::unique_ptr<engine::KvPool> pool_;
  BlockManager blocks_;
  std::uint32_t reserved_ = 0;  // blocks running sequences may still allocate

  mutable std::mutex mutex_;  // guards waiting_, accepting_, stopping_, stats_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  bool accepting_ = true;
  bool stopping_ = false;
  SchedulerStats stats_;

  std::vector<Token> endTokens_;                    // the vocabulary's end-of-generation tokens
  std::vector<std::unique_ptr<Sequence>> running_;  // the scheduler thread's own
  std::thread thread_;                              // last: started once the rest is set
};

}  // namespace aibox::server
