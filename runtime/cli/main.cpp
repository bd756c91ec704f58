// aibox-runtime: the built-in inference engine's command. See docs/engine.md.
//   generate         run a GGUF model on a prompt or a chat, streaming the text
//   serve            serve a GGUF model with an OpenAI-compatible HTTP API
//   make-test-model  write a small GGUF model with random weights (tests, benchmarks, demo)
//   info             what the engine sees in a GGUF file
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "aibox_build_info.hpp"
#include "runtime/cli/commands.hpp"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: aibox-runtime COMMAND [OPTIONS]\n"
    "\n"
    "The built-in CPU inference engine for GGUF models (llama and qwen2 families).\n"
    "\n"
    "Commands:\n"
    "  generate         run a model on --prompt or --chat and stream the text\n"
    "  serve            serve a model with an OpenAI-compatible HTTP API (continuous batching)\n"
    "  make-test-model  write a small GGUF model with seeded random weights\n"
    "  info             show the architecture, sizes, tensor types and chat template of a model\n"
    "\n"
    "Run 'aibox-runtime COMMAND --help' for a command's options.\n"
    "Exit codes: 0 ok, 1 failed, 2 usage error.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args.front() == "--help" || args.front() == "-h") {
    std::cout << kUsage;
    return args.empty() ? aibox::runtime::kUsageError : aibox::runtime::kOk;
  }
  if (args.front() == "--version") {
    std::cout << "aibox-runtime " << aibox::build::kVersion << " (build " << aibox::build::kBuildId
              << ")\n";
    return aibox::runtime::kOk;
  }
  std::string command = args.front();
  args.erase(args.begin());
  try {
    if (command == "generate") {
      return aibox::runtime::generateCommand(args);
    }
    if (command == "serve") {
      return aibox::runtime::serveCommand(args);
    }
    if (command == "make-test-model") {
      return aibox::runtime::makeTestModelCommand(args);
    }
    if (command == "info") {
      return aibox::runtime::infoCommand(args);
    }
  } catch (const po::error& e) {
    std::cerr << "aibox-runtime " << command << ": " << e.what() << " (see --help)\n";
    return aibox::runtime::kUsageError;
  } catch (const std::bad_alloc&) {
    std::cerr << "aibox-runtime " << command
              << ": not enough memory (for generate: lower --context or use a smaller model)\n";
    return aibox::runtime::kFailed;
  } catch (const std::exception& e) {
    std::cerr << "aibox-runtime " << command << ": " << e.what() << '\n';
    return aibox::runtime::kFailed;
  }
  std::cerr << "aibox-runtime: unknown command '" << command << "'\n\n" << kUsage;
  return aibox::runtime::kUsageError;
}
