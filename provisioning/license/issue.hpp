#pragma once
// The vendor's side of licensing: signing keys and issuing. Never linked into the agent.

#include <boost/json/object.hpp>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

namespace aibox::provisioning::license {

struct KeyPair {
  std::string privatePem;  // PKCS#8
  std::string publicPem;   // SubjectPublicKeyInfo
};
KeyPair generateKey();

// What the vendor asks for (docs/licensing.md, "Issuing"): id, customer, days or not_after,
// grace_days, entitlements, trial; the box's fingerprint comes separately.
struct Request {
  boost::json::object fields;
  std::vector<std::string> components;
};

// The license document for `request` at `now` (unix seconds), or what is wrong with it.
std::variant<boost::json::object, std::string> buildDocument(const Request& request,
                                                             std::int64_t now);
// Signs `document` with the private key and returns the license file's text, or a problem.
std::variant<std::string, std::string> signFile(const boost::json::object& document,
                                                const std::string& privatePem);
// Indented JSON, for files people read.
std::string pretty(const boost::json::value& value);

}  // namespace aibox::provisioning::license
