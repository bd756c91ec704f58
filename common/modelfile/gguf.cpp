// GGUF header reader, written from the format's specification (ggml docs/gguf.md): magic
// "GGUF", version, tensor and metadata counts, typed key/value metadata, tensor infos, then the
// tensor data at the next multiple of general.alignment. Little-endian throughout.
#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include "common/modelfile/internal.hpp"
#include "common/modelfile/modelfile.hpp"

namespace aibox::modelfile {
namespace {

using detail::printable;
using detail::sizeText;

struct GgmlType {
  std::uint32_t id;
  std::string_view name;
  std::uint32_t blockElements;  // values per block
  std::uint32_t blockBytes;     // bytes per block
};

// The ggml storage types (ids 4, 5 and 31-33, 36-38 were retired; Q8_1 is only an
// intermediate of dot products and never stored).
constexpr std::array kGgmlTypes = {
    GgmlType{0, "F32", 1, 4},         GgmlType{1, "F16", 1, 2},
    GgmlType{2, "Q4_0", 32, 18},      GgmlType{3, "Q4_1", 32, 20},
    GgmlType{6, "Q5_0", 32, 22},      GgmlType{7, "Q5_1", 32, 24},
    GgmlType{8, "Q8_0", 32, 34},      GgmlType{10, "Q2_K", 256, 84},
    GgmlType{11, "Q3_K", 256, 110},   GgmlType{12, "Q4_K", 256, 144},
    GgmlType{13, "Q5_K", 256, 176},   GgmlType{14, "Q6_K", 256, 210},
    GgmlType{15, "Q8_K", 256, 292},   GgmlType{16, "IQ2_XXS", 256, 66},
    GgmlType{17, "IQ2_XS", 256, 74},  GgmlType{18, "IQ3_XXS", 256, 98},
    GgmlType{19, "IQ1_S", 256, 50},   GgmlType{20, "IQ4_NL", 32, 18},
    GgmlType{21, "IQ3_S", 256, 110},  GgmlType{22, "IQ2_S", 256, 82},
    GgmlType{23, "IQ4_XS", 256, 136}, GgmlType{24, "I8", 1, 1},
    GgmlType{25, "I16", 1, 2},        GgmlType{26, "I32", 1, 4},
    GgmlType{27, "I64", 1, 8},        GgmlType{28, "F64", 1, 8},
    GgmlType{29, "IQ1_M", 256, 56},   GgmlType{30, "BF16", 1, 2},
    GgmlType{34, "TQ1_0", 256, 54},   GgmlType{35, "TQ2_0", 256, 66},
    GgmlType{39, "MXFP4", 32, 17},
};

const GgmlType* findGgmlType(std::uint32_t id) {
  const auto* found = std::find_if(kGgmlTypes.begin(), kGgmlTypes.end(),
                                   [id](const GgmlType& type) { return type.id == id; });
  return found == kGgmlTypes.end() ? nullptr : found;
}

// llama_ftype, indexed by value; empty names are retired values.
constexpr std::array<std::string_view, 39> kFileTypeNames = {
    "F32",    "F16",    "Q4_0",  "Q4_1",    "Q4_1_SOME_F16", "",       "",          "Q8_0",
    "Q5_0",   "Q5_1",   "Q2_K",  "Q3_K_S",  "Q3_K_M",        "Q3_K_L", "Q4_K_S",    "Q4_K_M",
    "Q5_K_S", "Q5_K_M", "Q6_K",  "IQ2_XXS", "IQ2_XS",        "Q2_K_S", "IQ3_XS",    "IQ3_XXS",
    "IQ1_S",  "IQ4_NL", "IQ3_S", "IQ3_M",   "IQ2_S",         "IQ2_M",  "IQ4_XS",    "IQ1_M",
    "BF16",   "",       "",      "",        "TQ1_0",         "TQ2_0",  "MXFP4_MOE",
};

constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr std::uint64_t kMaxTensors = 1u << 18;
constexpr std::uint64_t kMaxMetadata = 1u << 16;
constexpr std::uint64_t kMaxAlignment = 1u << 20;
// The least a tensor info takes: name length, n_dims, type, offset.
constexpr std::uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
// The least a metadata entry takes: key length, value type, a one-byte value.
constexpr std::uint64_t kMinMetadataBytes = 8 + 4 + 1;
constexpr std::uint64_t kFixedHeaderBytes = 4 + 4 + 8 + 8;

// The parse ran past the bytes it was given; `needed` bytes would let it go on.
struct NeedMore {
  std::uint64_t needed = 0;
  std::string reading;
};

using Outcome = std::variant<GgufInfo, Error, NeedMore>;

class Parser {
 public:
  Parser(std::string_view bytes, std::uint64_t fileSize) : bytes_(bytes), fileSize_(fileSize) {}

  Outcome run();

 private:
  bool take(std::uint64_t count, std::string_view& out);
  template <typename T>
  bool readInt(T& value);
  bool readString(std::string& out);
  bool readScalar(GgufValueType type, GgufScalar* out);
  bool readValue(GgufValueType type, GgufValue& out);
  bool readMetadata();
  bool readTensorInfo();
  bool fail(std::string message);
  bool finish();

  std::string_view bytes_;
  std::uint64_t fileSize_;
  std::uint64_t pos_ = 0;
  std::string reading_ = "the file header";
  std::variant<std::monostate, Error, NeedMore> stop_;
  GgufInfo info_;
  std::set<std::string, std::less<>> tensorNames_;
};

bool Parser::fail(std::string message) {
  stop_ =
      Error{"GGUF file is corrupt: " + std::move(message) + " (while reading " + reading_ +
            " at byte " + std::to_string(pos_) + "): the file cannot be used; download it again"};
  return false;
}

bool Parser::take(std::uint64_t count, std::string_view& out) {
  if (count > kGgufMaxHeaderBytes) {
    return fail("a field claims " + sizeText(count) + ", more than any GGUF header holds");
  }
  if (count > bytes_.size() - pos_) {
    stop_ = NeedMore{pos_ + count, reading_};
    return false;
  }
  out = bytes_.substr(pos_, count);
  pos_ += count;
  return true;
}

template <typename T>
bool Parser::readInt(T& value) {
  std::string_view raw;
  if (!take(sizeof(T), raw)) {
    return false;
  }
  std::make_unsigned_t<T> bits = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    bits |= static_cast<std::make_unsigned_t<T>>(static_cast<std::uint8_t>(raw[i])) << (8 * i);
  }
  value = static_cast<T>(bits);
  return true;
}

bool Parser::readString(std::string& out) {
  std::uint64_t length = 0;
  std::string_view raw;
  if (!readInt(length) || !take(length, raw)) {
    return false;
  }
  out.assign(raw);
  return true;
}

// Reads one non-array value; with `out` null it only steps over it.
bool Parser::readScalar(GgufValueType type, GgufScalar* out) {
  auto unsignedValue = [&](auto width) {
    decltype(width) value = 0;
    if (!readInt(value)) {
      return false;
    }
    if (out != nullptr) {
      *out = static_cast<std::uint64_t>(value);
    }
    return true;
  };
  auto signedValue = [&](auto width) {
    decltype(width) value = 0;
    if (!readInt(value)) {
      return false;
    }
    if (out != nullptr) {
      *out = static_cast<std::int64_t>(value);
    }
    return true;
  };
  switch (type) {
    case GgufValueType::Uint8:
      return unsignedValue(std::uint8_t{});
    case GgufValueType::Uint16:
      return unsignedValue(std::uint16_t{});
    case GgufValueType::Uint32:
      return unsignedValue(std::uint32_t{});
    case GgufValueType::Uint64:
      return unsignedValue(std::uint64_t{});
    case GgufValueType::Int8:
      return signedValue(std::int8_t{});
    case GgufValueType::Int16:
      return signedValue(std::int16_t{});
    case GgufValueType::Int32:
      return signedValue(std::int32_t{});
    case GgufValueType::Int64:
      return signedValue(std::int64_t{});
    case GgufValueType::Float32: {
      std::uint32_t bits = 0;
      if (!readInt(bits)) {
        return false;
      }
      float value = 0;
      std::memcpy(&value, &bits, sizeof value);
      if (out != nullptr) {
        *out = static_cast<double>(value);
      }
      return true;
    }
    case GgufValueType::Float64: {
      std::uint64_t bits = 0;
      if (!readInt(bits)) {
        return false;
      }
      double value = 0;
      std::memcpy(&value, &bits, sizeof value);
      if (out != nullptr) {
        *out = value;
      }
      return true;
    }
    case GgufValueType::Bool: {
      std::uint8_t value = 0;
      if (!readInt(value)) {
        return false;
      }
      if (value > 1) {
        return fail("a boolean holds " + std::to_string(value));
      }
      if (out != nullptr) {
        *out = value == 1;
      }
      return true;
    }
    case GgufValueType::String: {
      if (out == nullptr) {
        std::uint64_t length = 0;
        std::string_view raw;
        return readInt(length) && take(length, raw);
      }
      std::string value;
      if (!readString(value)) {
        return false;
      }
      *out = std::move(value);
      return true;
    }
    case GgufValueType::Array:
      break;
  }
  return fail("unknown value type " + std::to_string(static_cast<std::uint32_t>(type)));
}

std::uint64_t fixedSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::Uint8:
    case GgufValueType::Int8:
    case GgufValueType::Bool:
      return 1;
    case GgufValueType::Uint16:
    case GgufValueType::Int16:
      return 2;
    case GgufValueType::Uint32:
    case GgufValueType::Int32:
    case GgufValueType::Float32:
      return 4;
    case GgufValueType::Uint64:
    case GgufValueType::Int64:
    case GgufValueType::Float64:
      return 8;
    case GgufValueType::String:
    case GgufValueType::Array:
      break;
  }
  return 0;
}

bool Parser::readValue(GgufValueType type, GgufValue& out) {
  if (type != GgufValueType::Array) {
    GgufScalar scalar;
    if (!readScalar(type, &scalar)) {
      return false;
    }
    std::visit([&out](auto& value) { out = std::move(value); }, scalar);
    return true;
  }
  std::uint32_t elementType = 0;
  GgufArray array;
  if (!readInt(elementType) || !readInt(array.count)) {
    return false;
  }
  array.elementType = static_cast<GgufValueType>(elementType);
  if (array.elementType == GgufValueType::Array) {
    return fail("an array holds arrays, which this reader does not support");
  }
  if (elementType > static_cast<std::uint32_t>(GgufValueType::Float64)) {
    return fail("an array of unknown value type " + std::to_string(elementType));
  }
  // Every element takes at least one byte (a string its 8-byte length).
  std::uint64_t elementBytes =
      array.elementType == GgufValueType::String ? 8 : fixedSize(array.elementType);
  if (array.count > kGgufMaxHeaderBytes / elementBytes) {
    return fail("an array claims " + std::to_string(array.count) + " elements");
  }
  bool keep = array.count <= kGgufKeptArrayElements;
  array.dataOffset = pos_;
  if (!keep && array.elementType != GgufValueType::String) {
    std::string_view raw;
    if (!take(array.count * elementBytes, raw)) {
      return false;
    }
  } else {
    for (std::uint64_t i = 0; i < array.count; ++i) {
      GgufScalar element;
      if (!readScalar(array.elementType, keep ? &element : nullptr)) {
        return false;
      }
      if (keep) {
        array.elements.push_back(std::move(element));
      }
    }
  }
  array.dataBytes = pos_ - array.dataOffset;
  out = std::move(array);
  return true;
}

bool Parser::readMetadata() {
  std::string key;
  if (!readString(key)) {
    return false;
  }
  reading_ = "metadata " + printable(key);
  std::uint32_t type = 0;
  if (!readInt(type)) {
    return false;
  }
  if (type > static_cast<std::uint32_t>(GgufValueType::Float64)) {
    return fail("unknown value type " + std::to_string(type));
  }
  GgufValue value;
  if (!readValue(static_cast<GgufValueType>(type), value)) {
    return false;
  }
  if (!info_.metadata.emplace(key, std::move(value)).second) {
    return fail("the key appears twice");
  }
  return true;
}

bool Parser::readTensorInfo() {
  GgufTensor tensor;
  if (!readString(tensor.name)) {
    return false;
  }
  reading_ = "tensor info " + printable(tensor.name);
  if (!tensorNames_.insert(tensor.name).second) {
    return fail("the tensor name appears twice");
  }
  std::uint32_t dims = 0;
  if (!readInt(dims)) {
    return false;
  }
  if (dims > kMaxDims) {
    return fail(std::to_string(dims) + " dimensions, more than the " + std::to_string(kMaxDims) +
                " ggml supports");
  }
  std::uint64_t elements = 1;
  for (std::uint32_t i = 0; i < dims; ++i) {
    std::uint64_t dim = 0;
    if (!readInt(dim)) {
      return false;
    }
    auto product = detail::multiply(elements, dim);
    if (!product || *product > static_cast<std::uint64_t>(INT64_MAX)) {
      return fail("the dimensions multiply past 2^63 elements");
    }
    elements = *product;
    tensor.shape.push_back(dim);
  }
  if (!readInt(tensor.type) || !readInt(tensor.offset)) {
    return false;
  }
  const GgmlType* type = findGgmlType(tensor.type);
  if (type == nullptr) {
    stop_ = Error{"GGUF tensor " + printable(tensor.name) + " has the unknown tensor type " +
                  std::to_string(tensor.type) +
                  ", perhaps a quantisation newer than this reader: use a file quantised with "
                  "one of the common types (Q4_K_M, Q8_0, F16, ...)"};
    return false;
  }
  std::uint64_t rowElements = tensor.shape.empty() ? 1 : tensor.shape[0];
  if (rowElements % type->blockElements != 0) {
    return fail("a row of " + std::to_string(rowElements) + " values is not a whole number of " +
                std::string(type->name) + " blocks of " + std::to_string(type->blockElements));
  }
  auto bytes = detail::multiply(elements / type->blockElements, type->blockBytes);
  auto parameters = detail::add(info_.parameterCount, elements);
  auto dataBytes = bytes ? detail::add(info_.tensorDataBytes, *bytes) : std::nullopt;
  if (!parameters || !dataBytes) {
    return fail("the tensors together exceed 2^64 bytes");
  }
  tensor.bytes = *bytes;
  info_.parameterCount = *parameters;
  info_.tensorDataBytes = *dataBytes;
  info_.tensors.push_back(std::move(tensor));
  return true;
}

std::optional<std::uint64_t> uintOf(const GgufValue& value) {
  if (const auto* u = std::get_if<std::uint64_t>(&value)) {
    return *u;
  }
  if (const auto* i = std::get_if<std::int64_t>(&value); i != nullptr && *i >= 0) {
    return static_cast<std::uint64_t>(*i);
  }
  return std::nullopt;
}

std::string stringOf(const GgufInfo& info, std::string_view key) {
  auto found = info.metadata.find(key);
  if (found == info.metadata.end()) {
    return {};
  }
  const auto* text = std::get_if<std::string>(&found->second);
  return text == nullptr ? std::string() : *text;
}

void derive(GgufInfo& info) {
  info.architecture = stringOf(info, "general.architecture");
  info.name = stringOf(info, "general.name");
  if (!info.architecture.empty()) {
    const std::string& arch = info.architecture;
    info.blockCount = ggufUint(info, arch + ".block_count");
    info.contextLength = ggufUint(info, arch + ".context_length");
    info.embeddingLength = ggufUint(info, arch + ".embedding_length");
    info.headCount = ggufUint(info, arch + ".attention.head_count");
    info.headCountKv = ggufUint(info, arch + ".attention.head_count_kv");
    if (!info.headCountKv) {
      info.headCountKv = info.headCount;
    }
    info.feedForwardLength = ggufUint(info, arch + ".feed_forward_length");
  }
  if (auto fileType = ggufUint(info, "general.file_type"); fileType && *fileType <= UINT32_MAX) {
    info.fileType = static_cast<std::uint32_t>(*fileType);
    info.quantization = std::string(fileTypeName(*info.fileType));
    if (info.quantization.empty()) {
      info.quantization = "unknown file type " + std::to_string(*info.fileType);
    }
    return;
  }
  std::map<std::uint32_t, std::uint64_t> bytesByType;
  for (const auto& tensor : info.tensors) {
    bytesByType[tensor.type] += tensor.bytes;
  }
  auto largest = std::max_element(bytesByType.begin(), bytesByType.end(),
                                  [](const auto& a, const auto& b) { return a.second < b.second; });
  if (largest != bytesByType.end()) {
    info.quantization = std::string(ggmlTypeName(largest->first));
  }
}

bool Parser::finish() {
  GgufInfo& info = info_;
  reading_ = "the tensor data layout";
  if (auto found = info.metadata.find("general.alignment"); found != info.metadata.end()) {
    auto alignment = uintOf(found->second);
    if (!alignment || *alignment == 0 || *alignment > kMaxAlignment ||
        (*alignment & (*alignment - 1)) != 0) {
      return fail("general.alignment is not a power of two up to " + std::to_string(kMaxAlignment));
    }
    info.alignment = *alignment;
  }
  info.dataOffset = (pos_ + info.alignment - 1) / info.alignment * info.alignment;
  for (const auto& tensor : info.tensors) {
    if (tensor.offset % info.alignment != 0) {
      return fail("tensor " + printable(tensor.name) + " starts at offset " +
                  std::to_string(tensor.offset) + ", not a multiple of the alignment " +
                  std::to_string(info.alignment));
    }
    auto end = detail::add(info.dataOffset, tensor.offset);
    if (end) {
      end = detail::add(*end, tensor.bytes);
    }
    if (!end) {
      return fail("tensor " + printable(tensor.name) + " lies past 2^64 bytes");
    }
    if (*end > fileSize_) {
      stop_ = Error{"GGUF file truncated: tensor " + printable(tensor.name) + " needs a file of " +
                    sizeText(*end) + " but the file has only " + sizeText(fileSize_) +
                    ": the file is incomplete; copy it again"};
      return false;
    }
  }
  derive(info);
  return true;
}

Outcome Parser::run() {
  std::string_view magic;
  std::uint32_t version = 0;
  std::uint64_t tensorCount = 0;
  std::uint64_t metadataCount = 0;
  bool ok = take(4, magic);
  if (ok && magic != "GGUF") {
    ok = false;
    stop_ = Error{"not a GGUF file: it does not start with \"GGUF\""};
  }
  ok = ok && readInt(version);
  if (ok && version != 2 && version != 3) {
    ok = false;
    if (version == 1) {
      stop_ = Error{"GGUF version 1 is obsolete: convert the model again with a current llama.cpp"};
    } else if ((version & 0xffffu) == 0) {
      stop_ = Error{"big-endian GGUF files are not supported: use the little-endian file"};
    } else {
      stop_ = Error{"GGUF version " + std::to_string(version) +
                    " is not supported (versions 2 and 3 are): use a file made for llama.cpp"};
    }
  }
  ok = ok && readInt(tensorCount) && readInt(metadataCount);
  if (ok) {
    info_.version = version;
    if (tensorCount > kMaxTensors) {
      ok = fail("the header declares " + std::to_string(tensorCount) + " tensors, more than " +
                std::to_string(kMaxTensors));
    } else if (metadataCount > kMaxMetadata) {
      ok = fail("the header declares " + std::to_string(metadataCount) +
                " metadata entries, more than " + std::to_string(kMaxMetadata));
    } else if (tensorCount * kMinTensorInfoBytes + metadataCount * kMinMetadataBytes >
               (fileSize_ > kFixedHeaderBytes ? fileSize_ - kFixedHeaderBytes : 0)) {
      ok = false;
      stop_ = Error{"GGUF file truncated or corrupt: its header declares " +
                    std::to_string(tensorCount) + " tensors and " + std::to_string(metadataCount) +
                    " metadata entries, more than the file can describe: the file has only " +
                    sizeText(fileSize_) + "; copy it again"};
    }
  }
  for (std::uint64_t i = 0; ok && i < metadataCount; ++i) {
    reading_ = "metadata entry " + std::to_string(i + 1) + " of " + std::to_string(metadataCount);
    ok = readMetadata();
  }
  for (std::uint64_t i = 0; ok && i < tensorCount; ++i) {
    reading_ = "tensor info " + std::to_string(i + 1) + " of " + std::to_string(tensorCount);
    ok = readTensorInfo();
  }
  if (ok && finish()) {
    return std::move(info_);
  }
  if (auto* error = std::get_if<Error>(&stop_)) {
    return std::move(*error);
  }
  auto& more = std::get<NeedMore>(stop_);
  if (bytes_.size() >= fileSize_) {
    return Error{"GGUF file truncated: reading " + more.reading + " needs byte " +
                 std::to_string(more.needed) + " but the file has only " + sizeText(fileSize_) +
                 ": the file is incomplete; copy it again"};
  }
  return std::move(more);
}

}  // namespace

std::optional<std::uint64_t> ggufUint(const GgufInfo& info, std::string_view key) {
  auto found = info.metadata.find(key);
  return found == info.metadata.end() ? std::nullopt : uintOf(found->second);
}

std::string_view ggmlTypeName(std::uint32_t type) {
  const GgmlType* found = findGgmlType(type);
  return found == nullptr ? std::string_view() : found->name;
}

std::string_view fileTypeName(std::uint32_t fileType) {
  return fileType < kFileTypeNames.size() ? kFileTypeNames[fileType] : std::string_view();
}

Result<GgufInfo> parseGguf(std::string_view headerBytes, std::uint64_t fileSize) {
  // Bytes past the file's end cannot be part of it.
  if (headerBytes.size() > fileSize) {
    headerBytes = headerBytes.substr(0, fileSize);
  }
  Outcome outcome = Parser(headerBytes, fileSize).run();
  if (auto* more = std::get_if<NeedMore>(&outcome)) {
    return Error{"GGUF header continues past the " + sizeText(headerBytes.size()) +
                 " given (reading " + more->reading + " needs byte " +
                 std::to_string(more->needed) + "): read more of the file"};
  }
  if (auto* error = std::get_if<Error>(&outcome)) {
    return std::move(*error);
  }
  return std::move(std::get<GgufInfo>(outcome));
}

Result<GgufInfo> readGguf(const std::filesystem::path& path) {
  auto size = detail::regularFileSize(path);
  if (auto* error = std::get_if<Error>(&size)) {
    return std::move(*error);
  }
  std::uint64_t fileSize = std::get<std::uint64_t>(size);
  std::uint64_t limit = std::min(fileSize, kGgufMaxHeaderBytes);
  // Most headers (a 150k-token vocabulary included) fit in the first read.
  std::uint64_t want = std::min<std::uint64_t>(limit, 8u << 20);
  std::string bytes;
  while (true) {
    auto chunk = detail::readRange(path, bytes.size(), want - bytes.size());
    if (auto* error = std::get_if<Error>(&chunk)) {
      return std::move(*error);
    }
    bytes += std::get<std::string>(chunk);
    Outcome outcome = Parser(bytes, fileSize).run();
    if (auto* info = std::get_if<GgufInfo>(&outcome)) {
      return std::move(*info);
    }
    if (auto* error = std::get_if<Error>(&outcome)) {
      return Error{path.filename().string() + ": " + error->message};
    }
    if (bytes.size() >= limit) {
      return Error{path.filename().string() + ": GGUF header is larger than " +
                   sizeText(kGgufMaxHeaderBytes) + ", more than this reader accepts"};
    }
    want = std::min(limit, std::max(std::get<NeedMore>(outcome).needed, bytes.size() * 4));
  }
}

}  // namespace aibox::modelfile
