#pragma once
// Model metadata read from the files an admin imports: GGUF (llama.cpp), safetensors and the
// Hugging Face config.json beside them. Every reader takes untrusted bytes: it never throws,
// never reads tensor data, bounds every allocation by the bytes actually present, and answers
// a problem with an Error whose message says what is wrong and what to do about it.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace aibox::modelfile {

struct Error {
  std::string message;
};

template <typename T>
using Result = std::variant<T, Error>;

// ---- GGUF (versions 2 and 3) ----

// The GGUF metadata value types, numbered as in the file.
enum class GgufValueType : std::uint32_t {
  Uint8 = 0,
  Int8 = 1,
  Uint16 = 2,
  Int16 = 3,
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  Uint64 = 10,
  Int64 = 11,
  Float64 = 12,
};

// Unsigned integers widen to uint64, signed ones to int64, floats to double.
using GgufScalar = std::variant<std::uint64_t, std::int64_t, double, bool, std::string>;

// An array keeps its element type and count; its elements only when there are at most
// kGgufKeptArrayElements of them, so a 150k-token vocabulary costs nothing.
inline constexpr std::uint64_t kGgufKeptArrayElements = 64;
struct GgufArray {
  GgufValueType elementType = GgufValueType::Uint8;
  std::uint64_t count = 0;
  std::vector<GgufScalar> elements;  // empty when count > kGgufKeptArrayElements
  // Where the elements lie in the file (already checked), for readers that map the file and
  // want all of them (the runtime's vocabulary).
  std::uint64_t dataOffset = 0;
  std::uint64_t dataBytes = 0;
};

using GgufValue = std::variant<std::uint64_t, std::int64_t, double, bool, std::string, GgufArray>;

struct GgufTensor {
  std::string name;
  std::vector<std::uint64_t> shape;  // ggml order: shape[0] is the contiguous dimension
  std::uint32_t type = 0;            // ggml type id (ggmlTypeName names it)
  std::uint64_t offset = 0;          // from GgufInfo::dataOffset
  std::uint64_t bytes = 0;
};

struct GgufInfo {
  std::uint32_t version = 0;
  std::uint64_t alignment = 32;
  std::uint64_t dataOffset = 0;  // start of the tensor data in the file
  std::map<std::string, GgufValue, std::less<>> metadata;
  std::vector<GgufTensor> tensors;

  // Derived; absent when the file does not say.
  std::string architecture;                      // general.architecture: "llama", "qwen2", ...
  std::string name;                              // general.name
  std::optional<std::uint64_t> blockCount;       // <arch>.block_count
  std::optional<std::uint64_t> contextLength;    // <arch>.context_length
  std::optional<std::uint64_t> embeddingLength;  // <arch>.embedding_length
  std::optional<std::uint64_t> headCount;        // <arch>.attention.head_count
  std::optional<std::uint64_t> headCountKv;      // <arch>.attention.head_count_kv, else head_count
  std::optional<std::uint64_t> feedForwardLength;  // <arch>.feed_forward_length
  std::optional<std::uint32_t> fileType;           // general.file_type (llama_ftype)
  // fileTypeName(fileType), or without general.file_type the ggml type holding most bytes.
  std::string quantization;
  std::uint64_t parameterCount = 0;   // sum over tensors of the product of their dims
  std::uint64_t tensorDataBytes = 0;  // sum over tensors of their bytes
};

// The largest GGUF header (metadata and tensor infos) readGguf reads.
inline constexpr std::uint64_t kGgufMaxHeaderBytes = 64ull << 20;

// Parses a GGUF header from the first bytes of a file of `fileSize` bytes; tensor extents are
// checked against `fileSize`. `headerBytes` may hold the whole file or only its beginning.
Result<GgufInfo> parseGguf(std::string_view headerBytes, std::uint64_t fileSize);

// Reads only as much of the file as its header needs (at most kGgufMaxHeaderBytes).
Result<GgufInfo> readGguf(const std::filesystem::path& path);

// An unsigned integer metadata value (any integer type that is not negative).
std::optional<std::uint64_t> ggufUint(const GgufInfo& info, std::string_view key);

// "Q4_K", "F16", ...; empty for an id this reader does not know.
std::string_view ggmlTypeName(std::uint32_t type);
// general.file_type as llama.cpp names the mix: "Q4_K_M", "BF16", ...; empty when unknown.
std::string_view fileTypeName(std::uint32_t fileType);

// ---- safetensors ----

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // "F16", "BF16", "F32", "I8", ...
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;  // data_offsets, from the end of the header
  std::uint64_t end = 0;
};

struct SafetensorsInfo {
  std::uint64_t headerBytes = 0;  // the JSON header's length N (the data starts at 8 + N)
  std::map<std::string, std::string, std::less<>> metadata;  // "__metadata__"
  std::vector<SafetensorsTensor> tensors;                    // sorted by begin
  std::uint64_t parameterCount = 0;
  std::uint64_t dataBytes = 0;
};

inline constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100ull << 20;

Result<SafetensorsInfo> parseSafetensors(std::string_view headerBytes, std::uint64_t fileSize);
Result<SafetensorsInfo> readSafetensors(const std::filesystem::path& path);

// ---- Hugging Face config.json ----

struct HfConfig {
  std::string architecture;  // architectures[0], e.g. "Qwen2ForCausalLM"
  std::string modelType;     // model_type, e.g. "qwen2"
  std::optional<std::uint64_t> numHiddenLayers;
  std::optional<std::uint64_t> hiddenSize;
  std::optional<std::uint64_t> numAttentionHeads;
  std::optional<std::uint64_t> numKeyValueHeads;  // num_attention_heads when not given
  std::optional<std::uint64_t> headDim;           // head_dim, when the model sets it
  std::optional<std::uint64_t> maxPositionEmbeddings;
  std::optional<std::uint64_t> vocabSize;
  std::string torchDtype;  // "bfloat16", "float16", ...
};

// Multimodal configs keep the language model's fields under "text_config"; they are read from
// there when the top level lacks them.
Result<HfConfig> parseHfConfig(std::string_view json);
Result<HfConfig> readHfConfig(const std::filesystem::path& path);

// ---- memory needed to serve a model ----
//
// weightsBytes = the tensor data bytes (GGUF: every tensor; safetensors: every *.safetensors
//                file of the directory).
// kvCacheBytes = 2 (K and V) x layers x context x kvHeads x headDim x 2 bytes (f16 cache),
//                headDim = embedding / heads (GGUF <arch>.attention.key_length and
//                value_length, or config.json head_dim, override it where the model sets it).
// totalBytes   = weightsBytes + kvCacheBytes (compute buffers come on top, engine dependent).
// contextLength is the model's trained context unless the caller asks for another one.
struct MemoryEstimate {
  std::uint64_t weightsBytes = 0;
  std::uint64_t kvCacheBytes = 0;
  std::uint64_t totalBytes = 0;
  std::uint32_t contextLength = 0;
};

Result<MemoryEstimate> estimateMemory(const GgufInfo& info,
                                      std::optional<std::uint32_t> contextLength = std::nullopt);
// `dir` holds config.json and the *.safetensors files of one model.
Result<MemoryEstimate> estimateSafetensorsMemory(
    const std::filesystem::path& dir, std::optional<std::uint32_t> contextLength = std::nullopt);

}  // namespace aibox::modelfile
