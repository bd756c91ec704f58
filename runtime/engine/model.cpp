#include "runtime/engine/model.hpp"

#include <algorithm>
#include <cstring>

namespace aibox::engine {
namespace {

constexpr std::string_view kArchitectures[] = {"llama", "qwen2"};

Error unsupported(const std::string& what) {
  return Error{what + ": this engine runs the architectures " + supportedArchitectures() +
               " with tensors of type " + kernels::supportedTypeNames()};
}

class Loader {
 public:
  Loader(const GgufFile& file, const std::string& arch) : file_(file), arch_(arch) {}

  std::optional<Error> error;

  std::uint32_t count(std::string_view key, std::optional<std::uint32_t> fallback = std::nullopt) {
    auto value = file_.uint(arch_ + "." + std::string(key));
    if (!value && fallback) {
      return *fallback;
    }
    if (!value || *value == 0 || *value > (1u << 24)) {
      fail("GGUF metadata " + arch_ + "." + std::string(key) +
           (value ? " is out of range" : " is missing"));
      return 0;
    }
    return static_cast<std::uint32_t>(*value);
  }

  float real(std::string_view key, float fallback) {
    auto value = file_.number(arch_ + "." + std::string(key));
    return value ? static_cast<float>(*value) : fallback;
  }

  // A tensor of GGUF shape [cols, rows] (rows = 1 for a vector). Vectors must be F32.
  Weight weight(const std::string& name, std::size_t cols, std::size_t rows, bool required = true) {
    const auto* tensor = file_.tensor(name);
    if (tensor == nullptr) {
      if (required) {
        fail("the model has no tensor " + name + ": the file is incomplete or not a " + arch_ +
             " model");
      }
      return {};
    }
    auto info = kernels::typeInfo(tensor->type);
    if (!info) {
      std::string typeName(modelfile::ggmlTypeName(tensor->type));
      if (!error) {
        error = unsupported("tensor " + name + " has type " +
                            (typeName.empty() ? std::to_string(tensor->type) : typeName));
      }
      return {};
    }
    bool vector = rows == 1;
    std::vector<std::uint64_t> want =
        vector ? std::vector<std::uint64_t>{cols} : std::vector<std::uint64_t>{cols, rows};
    if (tensor->shape != want) {
      std::string got;
      for (auto dim : tensor->shape) {
        got += (got.empty() ? "" : " x ") + std::to_string(dim);
      }
      fail("tensor " + name + " has shape " + got + ", the metadata implies " +
           std::to_string(cols) + (vector ? "" : " x " + std::to_string(rows)));
      return {};
    }
    if (vector && info->type != kernels::Type::F32) {
      fail("tensor " + name + " is " + std::string(info->name) + "; norms and biases must be F32");
      return {};
    }
    // The kernels read whole 16- and 32-bit values; a GGUF alignment of 1 could break that.
    if (reinterpret_cast<std::uintptr_t>(file_.data(*tensor)) % 4 != 0) {
      fail("tensor " + name +
           " is not aligned to 4 bytes in the file (general.alignment): "
           "convert the model again with a standard GGUF writer");
      return {};
    }
    return Weight{info->type, file_.data(*tensor), rows, cols};
  }

  void fail(std::string message) {
    if (!error) {
      error = Error{std::move(message)};
    }
  }

 private:
  const GgufFile& file_;
  std::string arch_;
};

Result<text::Vocabulary> readVocabulary(const GgufFile& file) {
  text::Vocabulary vocabulary;
  vocabulary.model = file.string("tokenizer.ggml.model").value_or("");
  vocabulary.pre = file.string("tokenizer.ggml.pre").value_or("");
  auto tokens = file.strings("tokenizer.ggml.tokens");
  auto scores = file.floats("tokenizer.ggml.scores");
  auto types = file.ints("tokenizer.ggml.token_type");
  auto merges = file.strings("tokenizer.ggml.merges");
  for (const Error* error : {std::get_if<Error>(&tokens), std::get_if<Error>(&scores),
                             std::get_if<Error>(&types), std::get_if<Error>(&merges)}) {
    if (error != nullptr) {
      return *error;
    }
  }
  vocabulary.tokens = std::move(std::get<0>(tokens));
  vocabulary.scores = std::move(std::get<0>(scores));
  vocabulary.merges = std::move(std::get<0>(merges));
  for (auto type : std::get<0>(types)) {
    vocabulary.types.push_back(static_cast<text::TokenType>(type));
  }
  auto id = [&file](const char* key) {
    auto value = file.uint(key);
    return value && *value <= INT32_MAX ? static_cast<Token>(*value) : Token{-1};
  };
  vocabulary.bos = id("tokenizer.ggml.bos_token_id");
  vocabulary.eos = id("tokenizer.ggml.eos_token_id");
  vocabulary.eot = id("tokenizer.ggml.eot_token_id");
  vocabulary.unk = id("tokenizer.ggml.unknown_token_id");
  vocabulary.pad = id("tokenizer.ggml.padding_token_id");
  vocabulary.addBos =
      file.boolean("tokenizer.ggml.add_bos_token").value_or(vocabulary.model == "llama");
  vocabulary.addEos = file.boolean("tokenizer.ggml.add_eos_token").value_or(false);
  vocabulary.addSpacePrefix = file.boolean("tokenizer.ggml.add_space_prefix").value_or(true);
  return vocabulary;
}

}  // namespace

std::string_view poolingName(Pooling pooling) {
  switch (pooling) {
    case Pooling::Mean:
      return "mean";
    case Pooling::Cls:
      return "cls";
    case Pooling::Last:
      return "last";
    case Pooling::None:
      break;
  }
  return "none";
}

std::string supportedArchitectures() {
  std::string names;
  for (auto arch : kArchitectures) {
    names += (names.empty() ? "" : ", ") + std::string(arch);
  }
  return names;
}

Result<std::unique_ptr<Model>> Model::load(std::shared_ptr<const GgufFile> file) {
  const auto& info = file->info();
  std::string arch = info.architecture;
  if (std::find(std::begin(kArchitectures), std::end(kArchitectures), arch) ==
      std::end(kArchitectures)) {
    return unsupported("the model's architecture is " +
                       (arch.empty() ? std::string("not given") : "'" + arch + "'"));
  }
  std::unique_ptr<Model> model(new Model);
  ModelConfig& config = model->config_;
  config.architecture = arch;
  config.name = info.name;
  Loader loader(*file, arch);
  config.layers = loader.count("block_count");
  config.embedding = loader.count("embedding_length");
  config.heads = loader.count("attention.head_count");
  config.kvHeads = loader.count("attention.head_count_kv", config.heads);
  config.feedForward = loader.count("feed_forward_length");
  config.trainedContext = loader.count("context_length", 4096);
  if (loader.error) {
    return *loader.error;
  }
  config.headDim =
      loader.count("attention.key_length", config.heads ? config.embedding / config.heads : 0);
  std::uint32_t valueDim = loader.count("attention.value_length", config.headDim);
  config.ropeDims = loader.count("rope.dimension_count", config.headDim);
  if (loader.error) {
    return *loader.error;
  }
  // Bounds no real model comes near, which keep every size below in 64 bits.
  if (config.layers > 1024 || config.headDim == 0 ||
      std::uint64_t{config.heads} * config.headDim > (1u << 20)) {
    return Error{"the model's sizes (" + std::to_string(config.layers) + " layers, " +
                 std::to_string(config.heads) + " heads of " + std::to_string(config.headDim) +
                 ") are out of range: the file is not a model this engine can run"};
  }
  if (config.kvHeads > config.heads || config.heads % config.kvHeads != 0) {
    return Error{"the model has " + std::to_string(config.heads) + " attention heads and " +
                 std::to_string(config.kvHeads) +
                 " key/value heads; the first must be a multiple of the second"};
  }
  if (valueDim != config.headDim || config.headDim % 2 != 0 || config.ropeDims > config.headDim ||
      config.ropeDims % 2 != 0) {
    return Error{"the model's head sizes (key " + std::to_string(config.headDim) + ", value " +
                 std::to_string(valueDim) + ", rotary " + std::to_string(config.ropeDims) +
                 ") are not a layout this engine supports"};
  }
  bool qwen = arch == "qwen2";
  config.rmsEpsilon = loader.real("attention.layer_norm_rms_epsilon", qwen ? 1e-6f : 1e-5f);
  config.ropeBase = loader.real("rope.freq_base", qwen ? 1e6f : 10000.0f);
  config.ropeStyle = qwen ? RopeStyle::Neox : RopeStyle::Interleaved;
  if (auto pooling = file->uint(arch + ".pooling_type")) {
    if (*pooling > 3) {
      return Error{"the model's " + arch + ".pooling_type is " + std::to_string(*pooling) +
                   ": this engine pools embeddings by mean (1), cls (2) or last (3)"};
    }
    constexpr Pooling kPoolings[] = {Pooling::None, Pooling::Mean, Pooling::Cls, Pooling::Last};
    config.pooling = kPoolings[*pooling];
  }
  if (!(config.rmsEpsilon > 0) || !(config.ropeBase > 1)) {
    return Error{"the model's RMS norm epsilon or RoPE frequency base is out of range"};
  }

  auto vocabulary = readVocabulary(*file);
  if (auto* error = std::get_if<Error>(&vocabulary)) {
    return *error;
  }
  auto tokenizer = text::Tokenizer::create(std::move(std::get<text::Vocabulary>(vocabulary)));
  if (auto* error = std::get_if<Error>(&tokenizer)) {
    return Error{"the model's tokenizer cannot be used: " + error->message};
  }
  model->tokenizer_ =
      std::make_unique<text::Tokenizer>(std::move(std::get<text::Tokenizer>(tokenizer)));
  const auto* embedding = file->tensor("token_embd.weight");
  if (embedding == nullptr || embedding->shape.size() != 2) {
    return Error{"the model has no usable tensor token_embd.weight: the file is incomplete"};
  }
  config.vocabulary =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(embedding->shape[1], UINT32_MAX));
  if (model->tokenizer_->size() > config.vocabulary) {
    return Error{"the tokenizer has " + std::to_string(model->tokenizer_->size()) +
                 " tokens but the embedding table only " + std::to_string(config.vocabulary)};
  }

  std::size_t e = config.embedding;
  std::size_t qWidth = std::size_t{config.heads} * config.headDim;
  std::size_t kvWidth = std::size_t{config.kvHeads} * config.headDim;
  ModelWeights& w = model->weights_;
  w.tokenEmbedding = loader.weight("token_embd.weight", e, config.vocabulary);
  w.outputNorm = loader.weight("output_norm.weight", e, 1);
  w.output = loader.weight("output.weight", e, config.vocabulary, false);
  config.tiedOutput = !w.output && !loader.error;
  if (config.tiedOutput) {
    w.output = w.tokenEmbedding;
  }
  w.ropeFactors = loader.weight("rope_freqs.weight", config.ropeDims / 2, 1, false);
  config.attentionBias = file->tensor("blk.0.attn_q.bias") != nullptr;
  for (std::uint32_t i = 0; i < config.layers && !loader.error; ++i) {
    std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights layer;
    layer.attentionNorm = loader.weight(p + "attn_norm.weight", e, 1);
    layer.q = loader.weight(p + "attn_q.weight", e, qWidth);
    layer.k = loader.weight(p + "attn_k.weight", e, kvWidth);
    layer.v = loader.weight(p + "attn_v.weight", e, kvWidth);
    layer.output = loader.weight(p + "attn_output.weight", qWidth, e);
    if (config.attentionBias) {
      layer.qBias = loader.weight(p + "attn_q.bias", qWidth, 1);
      layer.kBias = loader.weight(p + "attn_k.bias", kvWidth, 1);
      layer.vBias = loader.weight(p + "attn_v.bias", kvWidth, 1);
    }
    layer.ffnNorm = loader.weight(p + "ffn_norm.weight", e, 1);
    layer.gate = loader.weight(p + "ffn_gate.weight", e, config.feedForward);
    layer.up = loader.weight(p + "ffn_up.weight", e, config.feedForward);
    layer.down = loader.weight(p + "ffn_down.weight", config.feedForward, e);
    w.layers.push_back(layer);
  }
  if (loader.error) {
    return *loader.error;
  }
  model->file_ = std::move(file);
  return model;
}

std::string Model::chatTemplate() const {
  return file_->string("tokenizer.chat_template").value_or("");
}

std::uint64_t Model::weightBytes() const {
  auto bytes = [](const Weight& w) {
    return w ? kernels::rowBytes(w.type, w.cols) * w.rows : std::size_t{0};
  };
  std::uint64_t total = bytes(weights_.output) + bytes(weights_.outputNorm);
  for (const auto& layer : weights_.layers) {
    for (const Weight* w :
         {&layer.attentionNorm, &layer.q, &layer.k, &layer.v, &layer.output, &layer.qBias,
          &layer.kBias, &layer.vBias, &layer.ffnNorm, &layer.gate, &layer.up, &layer.down}) {
      total += bytes(*w);
    }
  }
  return total;
}

std::size_t KvPool::blockBytes(const ModelConfig& config, KvType type) {
  std::size_t element = type == KvType::F16 ? 2 : 4;
  return 2 * std::size_t{config.layers} * kBlockPositions * config.kvHeads * config.headDim *
         element;
}

KvPool::KvPool(const ModelConfig& config, std::uint32_t blocks, KvType type)
    : blocks_(blocks),
      layers_(config.layers),
      type_(type),
      layerBytes_(blockBytes(config, type) / 2 / std::max<std::uint32_t>(config.layers, 1)),
      keys_(new std::byte[std::size_t{blocks} * layers_ * layerBytes_]),
      values_(new std::byte[std::size_t{blocks} * layers_ * layerBytes_]) {}

KvCache::KvCache(const ModelConfig& config, std::uint32_t context, KvType type) {
  auto blocks = (context + KvPool::kBlockPositions - 1) / KvPool::kBlockPositions;
  own_ = std::make_unique<KvPool>(config, blocks, type);
  pool_ = own_.get();
  for (std::uint32_t b = 0; b < blocks; ++b) {
    blocks_.push_back(b);
  }
}

void KvCache::truncate(std::uint32_t count) {
  used_ = std::min(used_, count);
}

Forward::Forward(const Model& model, Backend& backend) : model_(model), backend_(backend) {}

Result<std::vector<std::vector<float>>> Forward::run(std::span<const SequenceInput> batch) {
  const ModelConfig& config = model_.config();
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& sequence = batch[i];
    if (sequence.cache == nullptr || sequence.tokens.empty()) {
      return Error{"every sequence of a batch needs a cache and at least one token"};
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (batch[j].cache == sequence.cache) {
        return Error{"two sequences of a batch share one KV cache; give each its own"};
      }
    }
    std::size_t needed = std::size_t{sequence.cache->used()} + sequence.tokens.size();
    if (needed > sequence.cache->context()) {
      return Error{"the prompt and output need " + std::to_string(needed) +
                   " tokens but the context holds " + std::to_string(sequence.cache->context()) +
                   ": shorten the prompt or raise the context size"};
    }
    for (Token token : sequence.tokens) {
      if (token < 0 || static_cast<std::uint32_t>(token) >= config.vocabulary) {
        return Error{"token id " + std::to_string(token) + " is outside the vocabulary of " +
                     std::to_string(config.vocabulary)};
      }
    }
    tokens += sequence.tokens.size();
  }
  std::vector<Token> ids;
  positions_.clear();
  for (const auto& sequence : batch) {
    ids.insert(ids.end(), sequence.tokens.begin(), sequence.tokens.end());
    for (std::size_t i = 0; i < sequence.tokens.size(); ++i) {
      positions_.push_back(static_cast<std::uint32_t>(sequence.cache->used() + i));
    }
  }
  std::size_t e = config.embedding;
  std::size_t qWidth = std::size_t{config.heads} * config.headDim;
  std::size_t kvWidth = std::size_t{config.kvHeads} * config.headDim;
  hidden_.resize(tokens * e);
  normed_.resize(tokens * e);
  q_.resize(tokens * qWidth);
  k_.resize(tokens * kvWidth);
  v_.resize(tokens * kvWidth);
  attention_.resize(tokens * qWidth);
  projected_.resize(tokens * e);
  gate_.resize(tokens * config.feedForward);
  up_.resize(tokens * config.feedForward);

  const ModelWeights& w = model_.weights();
  backend_.embed(w.tokenEmbedding, ids, hidden_.data());
  for (std::uint32_t i = 0; i < config.layers; ++i) {
    layer(i, batch, tokens);
  }

  std::size_t start = 0;
  for (const auto& sequence : batch) {
    if (sequence.hidden != nullptr) {
      backend_.rmsNorm(hidden_.data() + start * e, static_cast<const float*>(w.outputNorm.data),
                       sequence.tokens.size(), e, config.rmsEpsilon, sequence.hidden);
    }
    start += sequence.tokens.size();
  }

  std::vector<std::vector<float>> logits;
  std::size_t offset = 0;
  std::vector<float> last;
  for (const auto& sequence : batch) {
    offset += sequence.tokens.size();
    sequence.cache->used_ += static_cast<std::uint32_t>(sequence.tokens.size());
    if (sequence.wantLogits) {
      last.insert(last.end(), hidden_.begin() + static_cast<std::ptrdiff_t>((offset - 1) * e),
                  hidden_.begin() + static_cast<std::ptrdiff_t>(offset * e));
    }
  }
  std::size_t rows = last.size() / e;
  if (rows == 0) {
    return logits;
  }
  std::vector<float> normedLast(last.size());
  backend_.rmsNorm(last.data(), static_cast<const float*>(w.outputNorm.data), rows, e,
                   config.rmsEpsilon, normedLast.data());
  std::vector<float> all(rows * config.vocabulary);
  backend_.matmul(w.output, normedLast.data(), rows, all.data());
  for (std::size_t r = 0; r < rows; ++r) {
    logits.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(r * config.vocabulary),
                        all.begin() + static_cast<std::ptrdiff_t>((r + 1) * config.vocabulary));
  }
  return logits;
}

void Forward::layer(std::uint32_t index, std::span<const SequenceInput> batch, std::size_t tokens) {
  const ModelConfig& config = model_.config();
  const LayerWeights& w = model_.weights().layers[index];
  std::size_t e = config.embedding;
  std::size_t qWidth = std::size_t{config.heads} * config.headDim;
  std::size_t kvWidth = std::size_t{config.kvHeads} * config.headDim;
  auto vector = [](const Weight& weight) { return static_cast<const float*>(weight.data); };

  backend_.rmsNorm(hidden_.data(), vector(w.attentionNorm), tokens, e, config.rmsEpsilon,
                   normed_.data());
  backend_.matmul(w.q, normed_.data(), tokens, q_.data());
  backend_.matmul(w.k, normed_.data(), tokens, k_.data());
  backend_.matmul(w.v, normed_.data(), tokens, v_.data());
  if (config.attentionBias) {
    backend_.addRow(q_.data(), vector(w.qBias), tokens, qWidth);
    backend_.addRow(k_.data(), vector(w.kBias), tokens, kvWidth);
    backend_.addRow(v_.data(), vector(w.vBias), tokens, kvWidth);
  }
  const float* factors =
      model_.weights().ropeFactors ? vector(model_.weights().ropeFactors) : nullptr;
  bool neox = config.ropeStyle == RopeStyle::Neox;
  auto count = static_cast<std::uint32_t>(tokens);
  backend_.rope({q_.data(), positions_.data(), count, config.heads, config.headDim, config.ropeDims,
                 config.ropeBase, neox, factors});
  backend_.rope({k_.data(), positions_.data(), count, config.kvHeads, config.headDim,
                 config.ropeDims, config.ropeBase, neox, factors});

  std::size_t first = 0;
  constexpr auto kBlock = KvPool::kBlockPositions;
  for (const auto& sequence : batch) {
    KvCache& cache = *sequence.cache;
    KvPool& pool = *cache.pool_;
    bool half = pool.type() == KvType::F16;
    auto n = static_cast<std::uint32_t>(sequence.tokens.size());
    for (std::uint32_t t = 0; t < n; ++t) {
      std::uint32_t position = cache.used() + t;
      std::uint32_t block = cache.blocks_[position / kBlock];
      std::size_t row = position % kBlock * kvWidth;
      const float* key = k_.data() + (first + t) * kvWidth;
      const float* value = v_.data() + (first + t) * kvWidth;
      if (half) {
        auto* keys = static_cast<std::uint16_t*>(pool.keys(block, index)) + row;
        auto* values = static_cast<std::uint16_t*>(pool.values(block, index)) + row;
        for (std::size_t i = 0; i < kvWidth; ++i) {
          keys[i] = kernels::floatToHalf(key[i]);
          values[i] = kernels::floatToHalf(value[i]);
        }
      } else {
        std::memcpy(static_cast<float*>(pool.keys(block, index)) + row, key,
                    kvWidth * sizeof(float));
        std::memcpy(static_cast<float*>(pool.values(block, index)) + row, value,
                    kvWidth * sizeof(float));
      }
    }
    std::uint32_t positions = cache.used() + n;
    keyBlocks_.clear();
    valueBlocks_.clear();
    for (std::uint32_t b = 0; b * kBlock < positions; ++b) {
      keyBlocks_.push_back(pool.keys(cache.blocks_[b], index));
      valueBlocks_.push_back(pool.values(cache.blocks_[b], index));
    }
    backend_.attention({q_.data() + first * qWidth, keyBlocks_.data(), valueBlocks_.data(),
                        half ? kernels::Type::F16 : kernels::Type::F32, kBlock,
                        attention_.data() + first * qWidth, n, positions, config.heads,
                        config.kvHeads, config.headDim});
    first += n;
  }
  backend_.matmul(w.output, attention_.data(), tokens, projected_.data());
  backend_.add(hidden_.data(), projected_.data(), tokens * e);

  backend_.rmsNorm(hidden_.data(), vector(w.ffnNorm), tokens, e, config.rmsEpsilon, normed_.data());
  backend_.matmul(w.gate, normed_.data(), tokens, gate_.data());
  backend_.matmul(w.up, normed_.data(), tokens, up_.data());
  backend_.swiglu(gate_.data(), up_.data(), tokens * config.feedForward);
  backend_.matmul(w.down, gate_.data(), tokens, projected_.data());
  backend_.add(hidden_.data(), projected_.data(), tokens * e);
}

}  // namespace aibox::engine
