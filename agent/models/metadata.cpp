// What the store records of a model, from the reader of its format (common/modelfile).
#include <stdexcept>

#include "agent/models/models.hpp"
#include "common/modelfile/modelfile.hpp"

namespace aibox::agent::models {
namespace {

template <class T>
T orThrow(modelfile::Result<T> result) {
  if (auto* error = std::get_if<modelfile::Error>(&result)) {
    throw std::runtime_error(error->message);
  }
  return std::get<T>(std::move(result));
}

boost::json::value optional(const std::optional<std::uint64_t>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

Metadata fromGguf(const std::filesystem::path& file) {
  auto info = orThrow(modelfile::readGguf(file));
  auto memory = orThrow(modelfile::estimateMemory(info));
  Metadata m;
  m.format = "gguf";
  m.architecture = info.architecture;
  m.parameters = info.parameterCount;
  m.quantization = info.quantization;
  m.contextLength = memory.contextLength;
  m.weightsBytes = memory.weightsBytes;
  m.kvCacheBytes = memory.kvCacheBytes;
  m.details = {{"gguf_version", info.version},
               {"name", info.name},
               {"block_count", optional(info.blockCount)},
               {"embedding_length", optional(info.embeddingLength)},
               {"head_count", optional(info.headCount)},
               {"head_count_kv", optional(info.headCountKv)},
               {"feed_forward_length", optional(info.feedForwardLength)},
               {"file_type", info.fileType ? boost::json::value(*info.fileType) : nullptr},
               {"tensors", info.tensors.size()}};
  return m;
}

Metadata fromSafetensors(const std::vector<ModelFile>& files, const std::filesystem::path& dir) {
  auto config = orThrow(modelfile::readHfConfig(dir / "config.json"));
  auto memory = orThrow(modelfile::estimateSafetensorsMemory(dir));
  Metadata m;
  m.format = "safetensors";
  m.architecture = config.modelType.empty() ? config.architecture : config.modelType;
  for (const auto& f : files) {
    if (f.path.ends_with(".safetensors")) {
      m.parameters += orThrow(modelfile::readSafetensors(dir / f.path)).parameterCount;
    }
  }
  m.quantization = config.torchDtype;
  m.contextLength = memory.contextLength;
  m.weightsBytes = memory.weightsBytes;
  m.kvCacheBytes = memory.kvCacheBytes;
  m.details = {{"architectures", config.architecture},
               {"num_hidden_layers", optional(config.numHiddenLayers)},
               {"hidden_size", optional(config.hiddenSize)},
               {"num_attention_heads", optional(config.numAttentionHeads)},
               {"num_key_value_heads", optional(config.numKeyValueHeads)},
               {"vocab_size", optional(config.vocabSize)}};
  return m;
}

}  // namespace

Metadata readMetadata(const std::vector<ModelFile>& files, const std::filesystem::path& dir) {
  bool safetensors = false;
  bool config = false;
  const ModelFile* gguf = nullptr;
  for (const auto& f : files) {
    safetensors = safetensors || f.path.ends_with(".safetensors");
    config = config || f.path == "config.json";
    if (f.path.ends_with(".gguf")) {
      gguf = gguf == nullptr ? &f : gguf;
    }
  }
  if (safetensors && config) {
    return fromSafetensors(files, dir);
  }
  if (files.size() == 1) {
    return fromGguf(dir / files.front().path);  // a GGUF, whatever its file name says
  }
  if (safetensors) {
    throw std::runtime_error(
        "the directory has *.safetensors files but no config.json: copy "
        "the whole Hugging Face model directory");
  }
  throw std::runtime_error(
      gguf != nullptr ? "a GGUF model is one file: import the .gguf file itself"
                      : "not a model: import a .gguf file, or a directory with config.json and "
                        "*.safetensors files");
}

}  // namespace aibox::agent::models
