// Cookie, Authorization and X-CSRF-Token headers as an attacker sends them.
// Input: "<method byte><Cookie>\n<Authorization>\n<X-CSRF-Token>".
#include <cstdint>
#include <string>

#include "agent/security/security.hpp"

using namespace aibox;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static agent::security::Security security = [] {
    agent::security::Policy policy;
    return agent::security::Security(policy);
  }();
  static const auto session = security.sessions.create(1, "alice", "operator", false, "10.0.0.1");
  static const auto token = security.tokens.create("ci", "viewer", "uid:0", std::nullopt);
  (void)session;
  (void)token;
  if (size == 0) {
    return 0;
  }
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string parts[3];
  std::size_t part = 0;
  for (char c : input) {
    if (c == '\n' && part < 2) {
      ++part;
    } else {
      parts[part] += c;
    }
  }
  http::Call call;
  call.request.method(data[0] % 2 == 0 ? http::Verb::get : http::Verb::post);
  call.request.target("/api/v1/system");
  call.address = "10.0.0.1";
  call.request.set(boost::beast::http::field::cookie, parts[0]);
  call.request.set(boost::beast::http::field::authorization, parts[1]);
  call.request.set("X-CSRF-Token", parts[2]);
  auto refusal = security.authenticate(call, data[0] % 3 == 0 ? http::kPublic : "system:read");
  if (refusal && refusal->body().empty()) {
    __builtin_trap();  // every refusal explains itself
  }
  return 0;
}
