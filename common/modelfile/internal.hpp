#pragma once
// Helpers shared by the readers of this module; not part of its public header.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/modelfile/modelfile.hpp"

namespace aibox::modelfile::detail {

// "5678 bytes", or "4294967296 bytes (4.0 GiB)" where the unit helps.
std::string sizeText(std::uint64_t bytes);

// 'name' for a message: at most 64 characters, anything unprintable shown as '?', so a hostile
// file cannot flood a log line or smuggle control characters into it.
std::string printable(std::string_view name);

// a * b, or nullopt when it does not fit.
std::optional<std::uint64_t> multiply(std::uint64_t a, std::uint64_t b);
std::optional<std::uint64_t> add(std::uint64_t a, std::uint64_t b);

// The size of the regular file at `path`, or an error naming it.
Result<std::uint64_t> regularFileSize(const std::filesystem::path& path);

// Bytes [offset, offset + count) of the file; an error if it cannot read them all.
Result<std::string> readRange(const std::filesystem::path& path, std::uint64_t offset,
                              std::uint64_t count);

}  // namespace aibox::modelfile::detail
