// safetensors header reader: an 8-byte little-endian length N, then N bytes of JSON naming each
// tensor's dtype, shape and [begin, end) byte range in the data that follows.
#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "common/modelfile/internal.hpp"
#include "common/modelfile/modelfile.hpp"

namespace aibox::modelfile {
namespace {

using detail::printable;
using detail::sizeText;

struct Dtype {
  std::string_view name;
  std::uint64_t bytes;
};

constexpr std::array kDtypes = {
    Dtype{"BOOL", 1},    Dtype{"U8", 1},      Dtype{"I8", 1},  Dtype{"F8_E5M2", 1},
    Dtype{"F8_E4M3", 1}, Dtype{"F8_E8M0", 1}, Dtype{"I16", 2}, Dtype{"U16", 2},
    Dtype{"F16", 2},     Dtype{"BF16", 2},    Dtype{"I32", 4}, Dtype{"U32", 4},
    Dtype{"F32", 4},     Dtype{"I64", 8},     Dtype{"U64", 8}, Dtype{"F64", 8},
};

std::optional<std::uint64_t> dtypeBytes(std::string_view name) {
  const auto* found = std::find_if(kDtypes.begin(), kDtypes.end(),
                                   [name](const Dtype& dtype) { return dtype.name == name; });
  return found == kDtypes.end() ? std::nullopt : std::optional(found->bytes);
}

std::optional<std::uint64_t> uintOf(const boost::json::value& value) {
  if (value.is_uint64()) {
    return value.as_uint64();
  }
  if (value.is_int64() && value.as_int64() >= 0) {
    return static_cast<std::uint64_t>(value.as_int64());
  }
  return std::nullopt;
}

// The little-endian length in the first 8 of `bytes`.
std::uint64_t headerLength(std::string_view bytes) {
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    length |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(bytes[i])) << (8 * i);
  }
  return length;
}

Error corrupt(std::string message) {
  return Error{"safetensors header is corrupt: " + std::move(message) +
               ": the file cannot be used; download it again"};
}

Result<SafetensorsTensor> readTensor(std::string_view name, const boost::json::value& entry,
                                     std::uint64_t dataSize) {
  const std::string where = "tensor " + printable(name);
  const auto* object = entry.if_object();
  if (object == nullptr) {
    return corrupt(where + " is not an object");
  }
  SafetensorsTensor tensor;
  tensor.name = name;
  const auto* dtype = object->if_contains("dtype");
  if (dtype == nullptr || !dtype->is_string()) {
    return corrupt(where + " has no dtype");
  }
  tensor.dtype = dtype->as_string();
  auto elementBytes = dtypeBytes(tensor.dtype);
  if (!elementBytes) {
    return corrupt(where + " has the unknown dtype " + printable(tensor.dtype));
  }
  const auto* shape = object->if_contains("shape");
  if (shape == nullptr || !shape->is_array()) {
    return corrupt(where + " has no shape");
  }
  std::uint64_t bytes = *elementBytes;
  bool tooLarge = false;
  for (const auto& dim : shape->as_array()) {
    auto size = uintOf(dim);
    if (!size) {
      return corrupt(where + " has a shape that is not a list of sizes");
    }
    tensor.shape.push_back(*size);
    auto product = detail::multiply(bytes, *size);
    tooLarge = tooLarge || !product;
    bytes = product.value_or(0);
  }
  const auto* offsets = object->if_contains("data_offsets");
  const auto* pair = offsets == nullptr ? nullptr : offsets->if_array();
  auto begin = pair != nullptr && pair->size() == 2 ? uintOf((*pair)[0]) : std::nullopt;
  auto end = pair != nullptr && pair->size() == 2 ? uintOf((*pair)[1]) : std::nullopt;
  if (!begin || !end || *begin > *end) {
    return corrupt(where + " has no valid data_offsets [begin, end]");
  }
  tensor.begin = *begin;
  tensor.end = *end;
  if (tooLarge || bytes != tensor.end - tensor.begin) {
    return corrupt(where + " holds " + std::to_string(tensor.end - tensor.begin) +
                   " bytes, not what its dtype and shape need");
  }
  if (tensor.end > dataSize) {
    return Error{"safetensors file truncated: " + where + " needs " + sizeText(tensor.end) +
                 " of data but the file holds only " + sizeText(dataSize) +
                 ": the file is incomplete; copy it again"};
  }
  return tensor;
}

}  // namespace

Result<SafetensorsInfo> parseSafetensors(std::string_view headerBytes, std::uint64_t fileSize) {
  if (fileSize < 8 || headerBytes.size() < 8) {
    return Error{"safetensors file truncated: it has only " + sizeText(fileSize) +
                 ", less than the 8-byte header length: the file is incomplete; copy it again"};
  }
  SafetensorsInfo info;
  info.headerBytes = headerLength(headerBytes);
  if (info.headerBytes > kSafetensorsMaxHeaderBytes) {
    return corrupt("the header claims " + sizeText(info.headerBytes) + ", more than the " +
                   sizeText(kSafetensorsMaxHeaderBytes) + " accepted");
  }
  if (info.headerBytes > fileSize - 8) {
    return Error{"safetensors file truncated: its header of " + sizeText(info.headerBytes) +
                 " ends past the end of the " + sizeText(fileSize) +
                 " file: the file is incomplete; copy it again"};
  }
  if (headerBytes.size() - 8 < info.headerBytes) {
    return Error{"safetensors header continues past the " + sizeText(headerBytes.size()) +
                 " given: read all of its " + sizeText(8 + info.headerBytes)};
  }
  boost::system::error_code ec;
  boost::json::value json = boost::json::parse(headerBytes.substr(8, info.headerBytes), ec);
  if (ec) {
    return corrupt("the header is not valid JSON (" + ec.message() + ")");
  }
  const auto* object = json.if_object();
  if (object == nullptr) {
    return corrupt("the header is not a JSON object");
  }
  const std::uint64_t dataSize = fileSize - 8 - info.headerBytes;
  for (const auto& entry : *object) {
    if (entry.key() == "__metadata__") {
      const auto* metadata = entry.value().if_object();
      if (metadata == nullptr) {
        return corrupt("__metadata__ is not an object");
      }
      for (const auto& item : *metadata) {
        if (!item.value().is_string()) {
          return corrupt("__metadata__ " + printable(item.key()) + " is not a string");
        }
        info.metadata.emplace(item.key(), item.value().as_string());
      }
      continue;
    }
    auto tensor = readTensor(entry.key(), entry.value(), dataSize);
    if (auto* error = std::get_if<Error>(&tensor)) {
      return std::move(*error);
    }
    info.tensors.push_back(std::move(std::get<SafetensorsTensor>(tensor)));
  }
  std::sort(info.tensors.begin(), info.tensors.end(),
            [](const auto& a, const auto& b) { return a.begin < b.begin; });
  std::uint64_t previousEnd = 0;
  for (const auto& tensor : info.tensors) {
    if (tensor.begin < previousEnd) {
      return corrupt("tensor " + printable(tensor.name) + " overlaps the tensor before it");
    }
    previousEnd = tensor.end;
    // Both bounded by the file size, as the tensors do not overlap.
    info.parameterCount += (tensor.end - tensor.begin) / *dtypeBytes(tensor.dtype);
    info.dataBytes += tensor.end - tensor.begin;
  }
  return info;
}

Result<SafetensorsInfo> readSafetensors(const std::filesystem::path& path) {
  auto size = detail::regularFileSize(path);
  if (auto* error = std::get_if<Error>(&size)) {
    return std::move(*error);
  }
  std::uint64_t fileSize = std::get<std::uint64_t>(size);
  auto withName = [&path](Result<SafetensorsInfo> result) -> Result<SafetensorsInfo> {
    if (auto* error = std::get_if<Error>(&result)) {
      error->message = path.filename().string() + ": " + error->message;
    }
    return result;
  };
  auto prefix = detail::readRange(path, 0, std::min<std::uint64_t>(fileSize, 8));
  if (auto* error = std::get_if<Error>(&prefix)) {
    return std::move(*error);
  }
  std::string bytes = std::move(std::get<std::string>(prefix));
  if (bytes.size() == 8) {
    std::uint64_t length = headerLength(bytes);
    if (length <= kSafetensorsMaxHeaderBytes && length <= fileSize - 8) {
      auto header = detail::readRange(path, 8, length);
      if (auto* error = std::get_if<Error>(&header)) {
        return std::move(*error);
      }
      bytes += std::get<std::string>(header);
    }
  }
  return withName(parseSafetensors(bytes, fileSize));
}

}  // namespace aibox::modelfile
