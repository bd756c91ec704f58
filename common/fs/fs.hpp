#pragma once
// Files that a crash or power cut never leaves half-written.

#include <sys/types.h>

#include <filesystem>
#include <string_view>

namespace aibox::fs {

// Writes `data` to a temp file beside `path` created with `mode`, fsyncs it, renames it over
// `path` and fsyncs the directory. Throws std::system_error naming the path.
void writeFileAtomic(const std::filesystem::path& path, std::string_view data, mode_t mode);

// Creates `dir` and its parents; sets `mode` on `dir` itself.
void makeDirectories(const std::filesystem::path& dir, mode_t mode);

}  // namespace aibox::fs
