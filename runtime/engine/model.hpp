#pragma once
// Decoder-only transformer models of the llama family, as stored in GGUF: architectures
// "llama" (Llama 2/3, DeepSeek-R1-Distill-Llama) and "qwen2" (Qwen2/2.5, DeepSeek-R1-Distill-
// Qwen). The forward pass takes a batch of sequences, each with its own KV cache, so a server
// can run continuous batching: the linear layers run once over every token of the batch, the
// attention per sequence. The arithmetic goes through a Backend (backend.hpp), so another
// device can run the same model code.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/engine/backend.hpp"
#include "runtime/engine/gguf_file.hpp"
#include "runtime/text/tokenizer.hpp"

namespace aibox::engine {

using text::Token;

enum class RopeStyle {
  Interleaved,  // llama: rotate pairs (2i, 2i+1) (GGUF llama files have Q/K permuted for it)
  Neox,         // qwen2: rotate pairs (i, i + d/2)
};

// How an embedding model pools its tokens' final hidden states into one vector, from GGUF's
// <arch>.pooling_type (llama.cpp's numbers: 1 mean, 2 cls, 3 last). None: not an embedding model.
enum class Pooling { None, Mean, Cls, Last };

// "mean", "cls", "last" ("none" for None).
std::string_view poolingName(Pooling pooling);

struct ModelConfig {
  std::string architecture;
  std::string name;
  std::uint32_t layers = 0;
  std::uint32_t embedding = 0;  // model width
  std::uint32_t heads = 0;
  std::uint32_t kvHeads = 0;
  std::uint32_t headDim = 0;
  std::uint32_t feedForward = 0;
  std::uint32_t vocabulary = 0;
  std::uint32_t trainedContext = 0;
  float rmsEpsilon = 1e-5f;
  float ropeBase = 10000.0f;
  std::uint32_t ropeDims = 0;  // leading dims of each head that rotate (usually headDim)
  RopeStyle ropeStyle = RopeStyle::Interleaved;
  bool attentionBias = false;  // Q/K/V biases (qwen2)
  bool tiedOutput = false;     // the output layer reuses token_embd
  Pooling pooling = Pooling::None;
};

// The architectures and tensor types load() accepts, for messages and docs.
std::string supportedArchitectures();

struct LayerWeights {
  Weight attentionNorm, q, k, v, output;
  Weight qBias, kBias, vBias;  // empty unless attentionBias
  Weight ffnNorm, gate, up, down;
};

struct ModelWeights {
  Weight tokenEmbedding;
  Weight outputNorm;
  Weight output;       // token_embd when tied
  Weight ropeFactors;  // rope_freqs.weight (Llama 3.1+ long-context scaling), may be empty
  std::vector<LayerWeights> layers;
};

class Model {
 public:
  // Checks the architecture, hyper-parameters, every tensor's presence, type and shape, and
  // builds the tokenizer. Errors name what is wrong and list what is supported.
  static Result<std::unique_ptr<Model>> load(std::shared_ptr<const GgufFile> file);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const text::Tokenizer& tokenizer() const { return *tokenizer_; }
  const GgufFile& file() const { return *file_; }
  std::string chatTemplate() const;   // tokenizer.chat_template, empty when absent
  std::uint64_t weightBytes() const;  // bytes of weights one token reads (all but embeddings)

 private:
  Model() = default;
  std::shared_ptr<const GgufFile> file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
};

// How the KV cache stores keys and values: float, or half floats (half the memory, rounded to
// 11 significant bits).
enum class KvType { F32, F16 };

// Keys and values in fixed-size blocks of kBlockPositions positions, for every layer, from one
// allocation. Sequences take blocks as they grow (a paged KV cache); who owns which block is
// the caller's business (the server's block manager, or one KvCache that owns its pool).
class KvPool {
 public:
  static constexpr std::uint32_t kBlockPositions = 16;
  KvPool(const ModelConfig& config, std::uint32_t blocks, KvType type = KvType::F32);
  // Bytes of one block (keys and values of kBlockPositions positions in every layer).
  static std::size_t blockBytes(const ModelConfig& config, KvType type);

  std::uint32_t blocks() const { return blocks_; }
  KvType type() const { return type_; }
  // The keys (values) of `block` for `layer`: kBlockPositions rows of kv_heads x head_dim.
  void* keys(std::uint32_t block, std::uint32_t layer) { return at(keys_.get(), block, layer); }
  void* values(std::uint32_t block, std::uint32_t layer) { return at(values_.get(), block, layer); }

 private:
  void* at(std::byte* base, std::uint32_t block, std::uint32_t layer) const {
    return base + (std::size_t{block} * layers_ + layer) * layerBytes_;
  }
  std::uint32_t blocks_;
  std::uint32_t layers_;
  KvType type_;
  std::size_t layerBytes_;  // one layer of one block
  // Not zeroed: pages are committed as blocks are first written.
  std::unique_ptr<std::byte[]> keys_, values_;
};

// One sequence's keys and values: the pool blocks that hold its positions, in order.
class KvCache {
 public:
  // A cache with a pool of its own, big enough for `context` positions.
  KvCache(const ModelConfig& config, std::uint32_t context, KvType type = KvType::F32);
  // An empty cache over a shared pool; the caller appends blocks before positions need them.
  explicit KvCache(KvPool& pool) : pool_(&pool) {}

  // Positions the blocks hold.
  std::uint32_t context() const {
    return static_cast<std::uint32_t>(blocks_.size()) * KvPool::kBlockPositions;
  }
  std::uint32_t used() const { return used_; }
  void clear() { used_ = 0; }
  // Drops everything after the first `count` tokens (to reuse a shared prompt prefix).
  void truncate(std::uint32_t count);
  // Sets how many positions hold data (the caller filled them, e.g. shared prefix blocks).
  void setUsed(std::uint32_t count) { used_ = std::min(count, context()); }

  KvPool& pool() { return *pool_; }
  std::vector<std::uint32_t>& blocks() { return blocks_; }
  const std::vector<std::uint32_t>& blocks() const { return blocks_; }

 private:
  friend class Forward;
  std::unique_ptr<KvPool> own_;
  KvPool* pool_ = nullptr;
  std::vector<std::uint32_t> blocks_;
  std::uint32_t used_ = 0;
};

// One sequence's share of a batch: new tokens appended after what its cache holds.
struct SequenceInput {
  KvCache* cache = nullptr;
  std::span<const Token> tokens;
  bool wantLogits = true;  // logits for the last token of this sequence
  // When set: the final hidden states (after the output norm) of every token of this input,
  // tokens.size() x embedding floats, for embeddings.
  float* hidden = nullptr;
};

// Runs the model. Not thread-safe: one Forward per serving thread; it keeps scratch buffers.
class Forward {
 public:
  Forward(const Model& model, Backend& backend);

  // Appends each sequence's tokens to its cache. Returns the logits of the last token of each
  // sequence that wants them, in order, vocabulary entries each. Errors: a sequence that would
  // overflow its cache (both numbers in the message), a token id outside the vocabulary; on an
  // error no cache is changed.
  Result<std::vector<std::vector<float>>> run(std::span<const SequenceInput> batch);

 private:
  void layer(std::uint32_t index, std::span<const SequenceInput> batch, std::size_t tokens);

  const Model& model_;
  Backend& backend_;
  // Scratch, sized for the largest batch seen.
  std::vector<float> hidden_, normed_, q_, k_, v_, attention_, projected_, gate_, up_;
  std::vector<std::uint32_t> positions_;
  std::vector<const void*> keyBlocks_, valueBlocks_;
};

}  // namespace aibox::engine
