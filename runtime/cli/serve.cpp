#include <boost/program_options.hpp>
#include <iostream>

#include "runtime/cli/commands.hpp"
#include "runtime/server/server.hpp"

namespace aibox::runtime {

namespace po = boost::program_options;

int serveCommand(const std::vector<std::string>& args) {
  po::options_description options(
      "Usage: aibox-runtime serve --model FILE [--listen ADDR:PORT] [OPTIONS]\n\n"
      "Serves one model with an OpenAI-compatible API: POST /v1/chat/completions,\n"
      "POST /v1/completions, GET /v1/models, POST /tokenize, POST /detokenize,\n"
      "GET /health (no token needed) and GET /metrics (Prometheus). Requests are batched\n"
      "together at every step (continuous batching). SIGTERM drains and exits 0.\n\nOptions");
  server::ServeOptions o;
  std::string reasoning;
  std::string kvType;
  unsigned drainSeconds = 30;
  // clang-format off
  options.add_options()
    ("help,h", "show this help")
    ("model,m", po::value(&o.model)->required(), "the GGUF model file")
    ("listen,l", po::value(&o.listen)->default_value(o.listen), "address and port to listen on (plain HTTP: keep it on loopback)")
    ("parallel,p", po::value(&o.parallel)->default_value(o.parallel), "requests generated together; more wait in a queue")
    ("context,c", po::value(&o.context)->default_value(0), "context size in tokens per request (0: the model's, at most 4096)")
    ("threads,t", po::value(&o.threads)->default_value(0), "compute threads (0: one per core)")
    ("queue", po::value(&o.queue)->default_value(o.queue), "requests that may wait for a slot; beyond that 503 with Retry-After")
    ("step-tokens", po::value(&o.stepTokens)->default_value(o.stepTokens), "tokens per forward pass: one per running request, prompt chunks fill the rest")
    ("kv-memory", po::value(&o.kvMemoryMiB)->default_value(0), "MiB for the paged KV cache, shared by all requests and the prefix cache (0: --parallel x --context tokens)")
    ("kv-type", po::value(&kvType)->default_value("f32"), "f32 or f16 keys and values (f16: half the memory)")
    ("served-name", po::value(&o.servedName), "the model's name in the API (default: the file name without .gguf)")
    ("api-token-file", po::value(&o.apiTokenFile), "require 'Authorization: Bearer TOKEN' with the token in this file on every route but /health")
    ("reasoning", po::value(&reasoning), "split: DeepSeek-R1 <think> text goes to reasoning_content (default for the deepseek-r1 template); inline: leave it in content")
    ("chat-template", po::value(&o.chatTemplate), "force a built-in chat template (chatml, llama3, deepseek-r1, llama2)")
    ("drain", po::value(&drainSeconds)->default_value(drainSeconds), "seconds SIGTERM lets running requests finish");
  // clang-format on
  auto parsed = parseArguments(args, options);
  if (!parsed) {
    return kOk;
  }
  if (!reasoning.empty()) {
    if (reasoning != "split" && reasoning != "inline") {
      std::cerr << "aibox-runtime serve: --reasoning must be split or inline\n";
      return kUsageError;
    }
    o.reasoningSplit = reasoning == "split";
  }
  if (o.parallel == 0 || o.queue == 0 || o.stepTokens == 0) {
    std::cerr << "aibox-runtime serve: --parallel, --queue and --step-tokens must be at least 1\n";
    return kUsageError;
  }
  if (kvType != "f32" && kvType != "f16") {
    std::cerr << "aibox-runtime serve: --kv-type must be f32 or f16\n";
    return kUsageError;
  }
  o.kvHalf = kvType == "f16";
  o.drain = std::chrono::seconds(drainSeconds);
  return server::serve(o);
}

}  // namespace aibox::runtime
