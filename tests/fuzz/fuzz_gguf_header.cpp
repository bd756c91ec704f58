// GGUF headers of imported model files: once as the whole file, once as the beginning of a
// larger one.
#include <cstdint>
#include <string_view>

#include "common/modelfile/modelfile.hpp"

namespace {

void check(const aibox::modelfile::Result<aibox::modelfile::GgufInfo>& result) {
  if (const auto* error = std::get_if<aibox::modelfile::Error>(&result);
      error != nullptr && error->message.empty()) {
    __builtin_trap();  // a refusal always says what is wrong
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check(aibox::modelfile::parseGguf(bytes, size));
  check(aibox::modelfile::parseGguf(bytes, std::uint64_t{size} + (1u << 20)));
  return 0;
}
