// A license file (PUT /api/v1/license, the installed file at start): parsing, the canonical
// form and verification must refuse anything malformed with a reason, never crash, and never
// accept a file the test vendor key did not sign.
#include <cstdint>
#include <string_view>

#include "agent/license/license.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace lic = aibox::agent::license;
  auto parsed = lic::parseFile(std::string_view(reinterpret_cast<const char*>(data), size));
  if (auto* problem = std::get_if<std::string>(&parsed)) {
    if (problem->empty()) {
      __builtin_trap();  // a refusal always says what is wrong
    }
    return 0;
  }
  const auto& file = std::get<lic::SignedLicense>(parsed);
  std::string why;
  (void)lic::canonical(file.license.document, why);
  if (!lic::verify(file, lic::vendorKeys())) {
    // Only the corpus's own signed seed (and its re-formattings) may verify.
    if (file.license.id != "LIC-FUZZ-SEED") {
      __builtin_trap();
    }
  }
  lic::Fingerprint fp;
  (void)lic::evaluate(&file, lic::vendorKeys(), lic::matchCount(file.license, fp), 1'800'000'000, 0,
                      3600);
  return 0;
}
