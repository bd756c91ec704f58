// Hugging Face config.json: the architecture and the sizes that decide a model's memory needs.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "common/json/json.hpp"
#include "common/modelfile/internal.hpp"
#include "common/modelfile/modelfile.hpp"

namespace aibox::modelfile {
namespace {

constexpr std::uint64_t kMaxConfigBytes = 16u << 20;

// Reads the sizes of the language model from `top`, or from `text` (a multimodal model's
// text_config) where `top` lacks one.
class SizeReader {
 public:
  SizeReader(const boost::json::object& top, const boost::json::object* text)
      : top_(top), text_(text) {}

  std::optional<std::uint64_t> size(std::string_view key) {
    const boost::json::object& from =
        text_ != nullptr && !present(top_, key) && present(*text_, key) ? *text_ : top_;
    json::Reader reader(from);
    auto value = reader.integer(key, false);
    if (!reader.ok()) {
      fail(reader.problem()->message);
      return std::nullopt;
    }
    if (value && *value < 0) {
      fail("field '" + std::string(key) + "' must not be negative");
      return std::nullopt;
    }
    return value ? std::optional(static_cast<std::uint64_t>(*value)) : std::nullopt;
  }

  void fail(std::string message) {
    if (!problem_) {
      problem_ = std::move(message);
    }
  }
  const std::optional<std::string>& problem() const { return problem_; }

 private:
  static bool present(const boost::json::object& object, std::string_view key) {
    const auto* value = object.if_contains(key);
    return value != nullptr && !value->is_null();
  }

  const boost::json::object& top_;
  const boost::json::object* text_;
  std::optional<std::string> problem_;
};

}  // namespace

Result<HfConfig> parseHfConfig(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) {
    return Error{"config.json is not valid JSON (" + ec.message() +
                 "): copy the model's config.json again"};
  }
  const auto* object = value.if_object();
  if (object == nullptr) {
    return Error{"config.json is not a JSON object: copy the model's config.json again"};
  }
  HfConfig config;
  json::Reader reader(*object);
  auto architectures = reader.stringList("architectures", false);
  auto modelType = reader.string("model_type", false);
  auto dtype = reader.string("torch_dtype", false);
  if (!dtype) {
    dtype = reader.string("dtype", false);  // the key's name since transformers 4.56
  }
  if (!reader.ok()) {
    return Error{"config.json: " + reader.problem()->message};
  }
  if (architectures && !architectures->empty()) {
    config.architecture = architectures->front();
  }
  config.modelType = modelType.value_or("");
  config.torchDtype = dtype.value_or("");

  const auto* textConfig = object->if_contains("text_config");
  SizeReader sizes(*object, textConfig != nullptr ? textConfig->if_object() : nullptr);
  config.numHiddenLayers = sizes.size("num_hidden_layers");
  config.hiddenSize = sizes.size("hidden_size");
  config.numAttentionHeads = sizes.size("num_attention_heads");
  config.numKeyValueHeads = sizes.size("num_key_value_heads");
  config.headDim = sizes.size("head_dim");
  config.maxPositionEmbeddings = sizes.size("max_position_embeddings");
  config.vocabSize = sizes.size("vocab_size");
  if (sizes.problem()) {
    return Error{"config.json: " + *sizes.problem()};
  }
  if (!config.numKeyValueHeads) {
    config.numKeyValueHeads = config.numAttentionHeads;
  }
  return config;
}

Result<HfConfig> readHfConfig(const std::filesystem::path& path) {
  auto size = detail::regularFileSize(path);
  if (auto* error = std::get_if<Error>(&size)) {
    return std::move(*error);
  }
  std::uint64_t fileSize = std::get<std::uint64_t>(size);
  if (fileSize > kMaxConfigBytes) {
    return Error{path.string() + " is " + detail::sizeText(fileSize) + ", more than the " +
                 detail::sizeText(kMaxConfigBytes) + " a config.json may have"};
  }
  auto text = detail::readRange(path, 0, fileSize);
  if (auto* error = std::get_if<Error>(&text)) {
    return std::move(*error);
  }
  return parseHfConfig(std::get<std::string>(text));
}

}  // namespace aibox::modelfile
