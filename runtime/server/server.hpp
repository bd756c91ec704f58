#pragma once
// `aibox-runtime serve`: one model, one process, an OpenAI-compatible HTTP API on a loopback
// port (docs/engine.md, "Serving"). The listener is bound before the model loads, so /health
// answers at once (503 "loading" with progress, then 200 "ok"); READY=1 goes to the service
// manager when the model is ready. SIGTERM stops accepting, lets running requests finish for
// up to the drain time and exits 0.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace aibox::server {

struct ServeOptions {
  std::string model;  // GGUF file
  std::string listen = "127.0.0.1:8080";
  std::uint32_t parallel = 4;          // sequences decoded together
  std::uint32_t context = 0;           // per sequence; 0: the model's, at most 4096
  unsigned threads = 0;                // compute threads; 0: one per core
  std::uint32_t queue = 64;            // waiting requests beyond which new ones get 503
  std::uint32_t stepTokens = 256;      // tokens per forward pass (prompt chunks fill what is left)
  std::uint32_t kvMemoryMiB = 0;       // KV cache pool; 0: parallel x context's worth
  bool kvHalf = false;                 // f16 keys and values instead of f32
  std::string servedName;              // the model's name in the API; default: the file's stem
  std::string apiTokenFile;            // when set, its bearer token is required on all but /health
  std::optional<bool> reasoningSplit;  // default: split for the deepseek-r1 template
  std::string chatTemplate;            // force a built-in template
  std::chrono::milliseconds drain{30'000};
};

// Runs until SIGTERM or SIGINT; returns the exit code: 0 after a drain, 1 when the address
// cannot be bound or the model cannot be loaded (the reason is logged).
int serve(const ServeOptions& options);

}  // namespace aibox::server
