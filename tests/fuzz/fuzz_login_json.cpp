// The body of POST /api/v1/auth/login.
#include <cstdint>
#include <string_view>

#include "agent/api/api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto result =
      aibox::agent::api::parseLogin(std::string_view(reinterpret_cast<const char*>(data), size));
  if (auto* problem = std::get_if<aibox::json::Problem>(&result);
      problem != nullptr && problem->message.empty()) {
    __builtin_trap();  // a refusal always says what is wrong
  }
  return 0;
}
