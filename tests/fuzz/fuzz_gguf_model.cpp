// GGUF files opened by the inference engine: the mapped-file reader, the long metadata
// arrays (vocabulary, merges, scores), the model checks, the tokenizer built from them, and
// when all of that accepts the file, one forward pass over a tiny cache.
#include <cstdint>
#include <string_view>

#include "runtime/engine/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace aibox::engine;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto file = GgufFile::fromMemory(bytes);
  if (const auto* error = std::get_if<Error>(&file)) {
    if (error->message.empty()) {
      __builtin_trap();  // a refusal always says what is wrong
    }
    return 0;
  }
  auto model = Model::load(std::get<0>(file));
  if (const auto* error = std::get_if<Error>(&model)) {
    if (error->message.empty()) {
      __builtin_trap();
    }
    return 0;
  }
  const Model& loaded = *std::get<0>(model);
  auto tokens = loaded.tokenizer().encode("fuzz 你好 <|im_start|>", true, true);
  loaded.tokenizer().decode(tokens);
  if (tokens.empty() || tokens.size() > 8) {
    return 0;
  }
  static auto backend = makeCpuBackend(1);
  Forward forward(loaded, *backend);
  KvCache cache(loaded.config(), 8);
  SequenceInput input{&cache, tokens, true};
  auto logits = forward.run(std::span<const SequenceInput>(&input, 1));
  if (std::holds_alternative<Error>(logits)) {
    __builtin_trap();  // a loaded model runs on valid tokens
  }
  return 0;
}
