#pragma once
// HTTP(S) downloads for model imports: the body streams into a HashingWriter, so it is hashed
// while it is written, and a dropped connection resumes with a Range request from what the
// writer already has.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace aibox::agent::models {

class HashingWriter;

struct DownloadOptions {
  std::optional<std::filesystem::path> caBundle;  // PEM CA file; default: the system store
  std::string proxy;                              // "" = libcurl's default (env vars)
  int retries = 5;                                // attempts after a failure, with backoff
  std::chrono::milliseconds backoff{1000};        // doubled after each failure, capped at 30 s
  std::chrono::seconds lowSpeedTime{60};          // abort an attempt that moves < 1 KiB/s this long
};

// The size the server announces (HEAD, following redirects), for the free-space check; nullopt
// when it does not say. Throws std::runtime_error saying what to do when the URL cannot be
// reached (after the retries) or the server refuses it.
std::optional<std::uint64_t> remoteSize(const std::string& url, const DownloadOptions& options);

// Streams the body of `url` into `writer`, starting at writer.bytes(). After a dropped
// connection or a server error it waits (backoff) and resumes with a Range request; an attempt
// that moved bytes forward starts the count of retries afresh. A server that ignores the Range
// (200, not 206) is an error: the caller restarts from zero with a new writer. `done` is advanced
// by the bytes received and `total` set to the full size when the server says it. Throws
// std::runtime_error("cancelled") soon after `cancel` is set, std::runtime_error saying what to
// do when the download fails, and HashingWriter's std::system_error when a write fails.
void download(const std::string& url, HashingWriter& writer, const DownloadOptions& options,
              const std::atomic<bool>& cancel, std::atomic<std::uint64_t>& done,
              std::atomic<std::uint64_t>& total);

// The URL without its user:password@, for messages, logs and the database.
std::string redactUrl(const std::string& url);

}  // namespace aibox::agent::models
