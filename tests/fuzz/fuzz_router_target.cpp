// Request targets against the agent's route patterns.
#include <cstdint>
#include <string_view>

#include "common/http/http.hpp"

using namespace aibox;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const http::Router router = [] {
    http::Router r;
    auto ok = [](const http::Call&) { return http::Response{http::Status::ok, 11}; };
    r.add(http::Verb::get, "/api/v1/users/{name}", "user:admin", ok);
    r.add(http::Verb::delete_, "/api/v1/users/{name}", "user:admin", ok);
    r.add(http::Verb::get, "/api/v1/models/{id}/files/{file}", "model:read", ok);
    r.add(http::Verb::get, "/healthz", http::kPublic, ok);
    return r;
  }();
  std::string_view target(reinterpret_cast<const char*>(data), size);
  auto match = router.match(http::Verb::get, target);
  for (const auto& [name, value] : match.params) {
    if (value.empty() || value.find('/') != std::string::npos || value == "..") {
      __builtin_trap();  // a parameter is always one real path segment
    }
  }
  return 0;
}
