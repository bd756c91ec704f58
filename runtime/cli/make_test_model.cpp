#include <boost/program_options.hpp>
#include <iostream>

#include "runtime/cli/commands.hpp"
#include "runtime/engine/test_model.hpp"

namespace aibox::runtime {

namespace po = boost::program_options;

int makeTestModelCommand(const std::vector<std::string>& args) {
  engine::TestModelSpec spec;
  std::string out;
  po::options_description options(
      "Usage: aibox-runtime make-test-model [OPTIONS] OUT.gguf\n\n"
      "Writes a valid GGUF v3 model with seeded random weights, a byte-level BPE vocabulary\n"
      "trained on a built-in corpus, and the family's chat template. It generates noise, but\n"
      "every part of the engine runs on it.\n\nOptions");
  // clang-format off
  options.add_options()
    ("help,h", "show this help")
    ("arch", po::value(&spec.architecture)->default_value(spec.architecture), "llama or qwen2")
    ("type", po::value(&spec.type)->default_value(spec.type), ("tensor type: " + engine::testModelTypes()).c_str())
    ("layers", po::value(&spec.layers)->default_value(spec.layers), "transformer blocks")
    ("dim", po::value(&spec.embedding)->default_value(spec.embedding), "model width")
    ("ff", po::value(&spec.feedForward)->default_value(spec.feedForward), "feed-forward width")
    ("heads", po::value(&spec.heads)->default_value(spec.heads), "attention heads")
    ("kv-heads", po::value(&spec.kvHeads)->default_value(spec.kvHeads), "key/value heads (grouped-query attention)")
    ("context", po::value(&spec.context)->default_value(spec.context), "trained context length written to the metadata")
    ("vocab", po::value(&spec.vocabulary)->default_value(spec.vocabulary), "BPE vocabulary size to train")
    ("tied", po::bool_switch(&spec.tiedOutput), "reuse the token embedding as the output layer")
    ("pooling", po::value(&spec.pooling), "mean, cls or last: an embedding model for /v1/embeddings")
    ("seed", po::value(&spec.seed)->default_value(spec.seed), "weights seed");
  // clang-format on
  if (!parseArguments(args, options, "out", &out)) {
    return kOk;
  }
  if (auto problem = engine::validate(spec); !problem.empty()) {
    std::cerr << "aibox-runtime make-test-model: " << problem << '\n';
    return kUsageError;
  }
  try {
    int shown = -1;
    engine::writeTestModel(spec, out, [&shown](std::size_t done, std::size_t total) {
      int percent = static_cast<int>(done * 100 / total);
      if (percent / 10 != shown / 10) {
        std::cerr << "writing tensors: " << percent << " %\n";
        shown = percent;
      }
    });
  } catch (const std::exception& e) {
    std::cerr << "aibox-runtime make-test-model: " << e.what() << '\n';
    return kFailed;
  }
  std::cerr << "wrote " << out << '\n';
  return kOk;
}

}  // namespace aibox::runtime
