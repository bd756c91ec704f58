// Memory a model needs when served: its weights plus an f16 KV cache at the chosen context.
#include <algorithm>
#include <system_error>

#include "common/modelfile/internal.hpp"
#include "common/modelfile/modelfile.hpp"

namespace aibox::modelfile {
namespace {

struct Attention {
  std::uint64_t layers = 0;
  std::uint64_t kvHeads = 0;
  std::uint64_t keyDim = 0;
  std::uint64_t valueDim = 0;
};

constexpr std::uint64_t kCacheElementBytes = 2;  // f16

Result<MemoryEstimate> estimate(std::uint64_t weightsBytes, const Attention& attention,
                                std::uint64_t contextLength) {
  if (contextLength > UINT32_MAX) {
    return Error{"context length " + std::to_string(contextLength) + " is out of range"};
  }
  // layers x context x kvHeads x (keyDim + valueDim) x 2 bytes
  std::optional<std::uint64_t> kv = detail::add(attention.keyDim, attention.valueDim);
  for (std::uint64_t factor :
       {attention.layers, contextLength, attention.kvHeads, kCacheElementBytes}) {
    kv = kv ? detail::multiply(*kv, factor) : std::nullopt;
  }
  auto total = kv ? detail::add(weightsBytes, *kv) : std::nullopt;
  if (!total) {
    return Error{"the model's sizes multiply past 2^64 bytes: its metadata is corrupt"};
  }
  return MemoryEstimate{.weightsBytes = weightsBytes,
                        .kvCacheBytes = *kv,
                        .totalBytes = *total,
                        .contextLength = static_cast<std::uint32_t>(contextLength)};
}

Error missing(std::string_view what) {
  return Error{"the model does not state its " + std::string(what) +
               ", so its KV cache cannot be estimated"};
}

}  // namespace

Result<MemoryEstimate> estimateMemory(const GgufInfo& info,
                                      std::optional<std::uint32_t> contextLength) {
  const std::string& arch = info.architecture;
  if (arch.empty()) {
    return missing("architecture (general.architecture)");
  }
  if (!info.blockCount) {
    return missing(arch + ".block_count");
  }
  if (!info.headCount || *info.headCount == 0) {
    return missing(arch + ".attention.head_count");
  }
  if (!contextLength && !info.contextLength) {
    return missing(arch + ".context_length");
  }
  Attention attention{.layers = *info.blockCount, .kvHeads = info.headCountKv.value_or(0)};
  auto keyLength = ggufUint(info, arch + ".attention.key_length");
  auto valueLength = ggufUint(info, arch + ".attention.value_length");
  if (!keyLength || !valueLength) {
    if (!info.embeddingLength) {
      return missing(arch + ".embedding_length");
    }
    std::uint64_t headDim = *info.embeddingLength / *info.headCount;
    keyLength = keyLength.value_or(headDim);
    valueLength = valueLength.value_or(headDim);
  }
  attention.keyDim = *keyLength;
  attention.valueDim = *valueLength;
  return estimate(info.tensorDataBytes, attention,
                  contextLength ? *contextLength : *info.contextLength);
}

Result<MemoryEstimate> estimateSafetensorsMemory(const std::filesystem::path& dir,
                                                 std::optional<std::uint32_t> contextLength) {
  auto read = readHfConfig(dir / "config.json");
  if (auto* error = std::get_if<Error>(&read)) {
    return std::move(*error);
  }
  const HfConfig& config = std::get<HfConfig>(read);
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".safetensors") {
      files.push_back(it->path());
    }
  }
  if (ec) {
    return Error{"cannot list " + dir.string() + ": " + ec.message()};
  }
  if (files.empty()) {
    return Error{dir.string() + " holds no *.safetensors files: copy the model's weights there"};
  }
  std::sort(files.begin(), files.end());
  std::uint64_t weightsBytes = 0;
  for (const auto& file : files) {
    auto tensors = readSafetensors(file);
    if (auto* error = std::get_if<Error>(&tensors)) {
      return std::move(*error);
    }
    // Each file's data is bounded by its size; the sum of many stays far below 2^64.
    weightsBytes += std::get<SafetensorsInfo>(tensors).dataBytes;
  }
  if (!config.numHiddenLayers) {
    return missing("num_hidden_layers (config.json)");
  }
  if (!config.numAttentionHeads || *config.numAttentionHeads == 0) {
    return missing("num_attention_heads (config.json)");
  }
  if (!contextLength && !config.maxPositionEmbeddings) {
    return missing("max_position_embeddings (config.json)");
  }
  if (!config.headDim && !config.hiddenSize) {
    return missing("hidden_size (config.json)");
  }
  std::uint64_t headDim =
      config.headDim.value_or(config.hiddenSize.value_or(0) / *config.numAttentionHeads);
  Attention attention{.layers = *config.numHiddenLayers,
                      .kvHeads = config.numKeyValueHeads.value_or(0),
                      .keyDim = headDim,
                      .valueDim = headDim};
  return estimate(weightsBytes, attention,
                  contextLength ? *contextLength : *config.maxPositionEmbeddings);
}

}  // namespace aibox::modelfile
