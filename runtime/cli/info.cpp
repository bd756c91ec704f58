#include <boost/json/object.hpp>
#include <boost/program_options.hpp>
#include <iostream>
#include <map>

#include "common/json/json.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/engine/model.hpp"
#include "runtime/text/chat.hpp"

namespace aibox::runtime {

namespace po = boost::program_options;

int infoCommand(const std::vector<std::string>& args) {
  std::string path;
  po::options_description options(
      "Usage: aibox-runtime info [--json] FILE.gguf\n\n"
      "Loads a model as generate would and shows what the engine sees in it.\n\nOptions");
  options.add_options()("help,h", "show this help")("json", "machine-readable output");
  auto vm = parseArguments(args, options, "model", &path);
  if (!vm) {
    return kOk;
  }
  auto loaded = loadModel(path);
  if (!loaded) {
    return kFailed;
  }
  const engine::Model& model = *loaded;
  const auto& c = model.config();
  std::map<std::string, std::size_t> types;
  for (const auto& tensor : model.file().info().tensors) {
    ++types[std::string(modelfile::ggmlTypeName(tensor.type))];
  }
  auto detected = text::detectChatTemplate(model.chatTemplate());
  std::string chatTemplate = detected ? std::string(text::chatTemplateName(*detected))
                             : model.chatTemplate().empty() ? "none"
                                                            : "unrecognised";
  const auto& vocabulary = model.tokenizer().vocabulary();

  boost::json::object out{
      {"name", c.name},
      {"architecture", c.architecture},
      {"quantization", model.file().info().quantization},
      {"parameters", model.file().info().parameterCount},
      {"layers", c.layers},
      {"embedding", c.embedding},
      {"feed_forward", c.feedForward},
      {"heads", c.heads},
      {"kv_heads", c.kvHeads},
      {"head_dim", c.headDim},
      {"vocabulary", c.vocabulary},
      {"trained_context", c.trainedContext},
      {"rope_base", c.ropeBase},
      {"tied_output", c.tiedOutput},
      {"weight_bytes_per_token", model.weightBytes()},
      {"tokenizer", vocabulary.model + (vocabulary.pre.empty() ? "" : " (" + vocabulary.pre + ")")},
      {"chat_template", chatTemplate},
  };
  boost::json::object typeCounts;
  for (const auto& [name, count] : types) {
    typeCounts[name] = count;
  }
  out["tensor_types"] = typeCounts;
  if (vm->count("json") != 0) {
    std::cout << json::serialize(out) << '\n';
    return kOk;
  }
  for (const auto& [key, value] : out) {
    std::cout << key << ": "
              << (value.is_string() ? std::string(value.as_string()) : json::serialize(value))
              << '\n';
  }
  return kOk;
}

}  // namespace aibox::runtime
