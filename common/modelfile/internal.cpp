#include "common/modelfile/internal.hpp"

#include <array>
#include <charconv>
#include <fstream>
#include <system_error>

namespace aibox::modelfile::detail {

std::string sizeText(std::uint64_t bytes) {
  std::string text = std::to_string(bytes) + " bytes";
  if (bytes < std::uint64_t{10} * 1024) {
    return text;
  }
  constexpr std::array<std::string_view, 4> kUnits = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  std::array<char, 32> scaled{};
  auto [end, ec] = std::to_chars(scaled.data(), scaled.data() + scaled.size(), value,
                                 std::chars_format::fixed, 1);
  return text + " (" + std::string(scaled.data(), end) + " " + std::string(kUnits[unit]) + ")";
}

std::string printable(std::string_view name) {
  constexpr std::size_t kMaxShown = 64;
  std::string out = "'";
  for (char c : name.substr(0, kMaxShown)) {
    out += c >= 0x20 && c < 0x7f ? c : '?';
  }
  return out + (name.size() > kMaxShown ? "...'" : "'");
}

std::optional<std::uint64_t> multiply(std::uint64_t a, std::uint64_t b) {
  std::uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    return std::nullopt;
  }
  return product;
}

std::optional<std::uint64_t> add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return std::nullopt;
  }
  return sum;
}

Result<std::uint64_t> regularFileSize(const std::filesystem::path& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec) {
    return Error{"cannot open " + path.string() + ": " + ec.message()};
  }
  if (!std::filesystem::is_regular_file(status)) {
    return Error{path.string() + " is not a regular file"};
  }
  std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) {
    return Error{"cannot read the size of " + path.string() + ": " + ec.message()};
  }
  return size;
}

Result<std::string> readRange(const std::filesystem::path& path, std::uint64_t offset,
                              std::uint64_t count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error{"cannot open " + path.string()};
  }
  std::string bytes(count, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(count));
  if (static_cast<std::uint64_t>(in.gcount()) != count) {
    return Error{"cannot read " + std::to_string(count) + " bytes at byte " +
                 std::to_string(offset) + " of " + path.string() +
                 ": the file changed while it was read, or the disk failed"};
  }
  return bytes;
}

}  // namespace aibox::modelfile::detail
