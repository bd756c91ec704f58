// The license document: its canonical form, the file around it and the Ed25519 signature.
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <memory>

#include "agent/license/license.hpp"
#include "aibox_license_keys.hpp"
#include "common/json/json.hpp"
#include "common/time/time.hpp"

namespace aibox::agent::license {
namespace {

// Boost.JSON writes strings as RFC 8785 does: only '"', '\\' and control characters escaped,
// \b \f \n \r \t short, the rest as \u00xx in lower case; UTF-8 as it is.
void canonicalString(std::string_view s, std::string& out) {
  out += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

bool canonicalInto(const boost::json::value& v, std::string& out, std::string& problem) {
  switch (v.kind()) {
    case boost::json::kind::null:
      out += "null";
      return true;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return true;
    case boost::json::kind::int64:
      out += std::to_string(v.get_int64());
      return true;
    case boost::json::kind::uint64:
      out += std::to_string(v.get_uint64());
      return true;
    case boost::json::kind::double_:
      problem = "a license holds integers only; found the number " + json::serialize(v);
      return false;
    case boost::json::kind::string:
      canonicalString(v.get_string(), out);
      return true;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) {
          out += ',';
        }
        first = false;
        if (!canonicalInto(item, out, problem)) {
          return false;
        }
      }
      out += ']';
      return true;
    }
    case boost::json::kind::object: {
      std::vector<const boost::json::key_value_pair*> members;
      for (const auto& member : v.get_object()) {
        if (std::any_of(member.key().begin(), member.key().end(),
                        [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
          problem = "a license's keys are ASCII; found \"" + std::string(member.key()) + "\"";
          return false;
        }
        members.push_back(&member);
      }
      // For ASCII keys, RFC 8785's order (UTF-16 code units) is byte order.
      std::sort(members.begin(), members.end(),
                [](const auto* a, const auto* b) { return a->key() < b->key(); });
      out += '{';
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (i > 0) {
          out += ',';
        }
        canonicalString(members[i]->key(), out);
        out += ':';
        if (!canonicalInto(members[i]->value(), out, problem)) {
          return false;
        }
      }
      out += '}';
      return true;
    }
  }
  return false;
}

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Key readPublicKey(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) {
    return nullptr;
  }
  Key key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return nullptr;
  }
  return key;
}

std::string lowerHex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

bool isLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A time field: ISO 8601 UTC ("2027-01-31T00:00:00Z").
std::optional<std::int64_t> timeField(const boost::json::object& o, std::string_view key,
                                      std::string& problem) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    problem = "field '" + std::string(key) + "' must be a time such as \"2027-01-31T00:00:00Z\"";
    return std::nullopt;
  }
  auto t = time::parseTime(v->get_string());
  if (!t) {
    problem = "field '" + std::string(key) + "' must be a time such as \"2027-01-31T00:00:00Z\"";
  }
  return t;
}

std::optional<std::int64_t> limitField(const boost::json::object& o, std::string_view key,
                                       std::string& problem) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    return std::nullopt;
  }
  if (!v->is_int64() || v->get_int64() < 0) {
    problem = "field 'entitlements." + std::string(key) + "' must be a count (0 or more) or null";
    return std::nullopt;
  }
  return v->get_int64();
}

}  // namespace

std::optional<std::string> canonical(const boost::json::value& value, std::string& problem) {
  std::string out;
  if (!canonicalInto(value, out, problem)) {
    return std::nullopt;
  }
  return out;
}

std::variant<License, std::string> parseDocument(const boost::json::object& document) {
  License l;
  l.document = document;
  json::Reader reader(document);
  auto version = reader.integer("version");
  auto id = reader.string("id");
  auto issuer = reader.string("issuer");
  auto customer = reader.string("customer");
  if (!reader.ok()) {
    return reader.problem()->message;
  }
  if (*version != 1) {
    return "this license has format version " + std::to_string(*version) +
           "; this agent reads version 1: update the agent first";
  }
  l.id = *id;
  l.issuer = *issuer;
  l.customer = *customer;
  std::string problem;
  auto issued = timeField(document, "issued_at", problem);
  auto notBefore = timeField(document, "not_before", problem);
  auto notAfter = timeField(document, "not_after", problem);
  if (!problem.empty()) {
    return problem;
  }
  l.issuedAt = *issued;
  l.notBefore = *notBefore;
  l.notAfter = *notAfter;
  if (l.notAfter <= l.notBefore) {
    return "field 'not_after' must come after 'not_before'";
  }
  auto grace = reader.integer("grace_days");
  if (!reader.ok() || *grace < 0 || *grace > 365) {
    return "field 'grace_days' must be 0 to 365";
  }
  l.graceSeconds = *grace * 86400;

  const auto* binding = document.if_contains("binding");
  if (binding == nullptr || !binding->is_object()) {
    return "field 'binding' must be an object with 'components' and 'min_match'";
  }
  json::Reader b(binding->get_object());
  auto components = b.stringList("components");
  auto minMatch = b.integer("min_match");
  if (!b.ok()) {
    return "binding: " + b.problem()->message;
  }
  if (components->empty() || *minMatch < 1 ||
      *minMatch > static_cast<std::int64_t>(components->size())) {
    return "field 'binding.min_match' must be 1 to the number of components (" +
           std::to_string(components->size()) + ")";
  }
  l.components = std::move(*components);
  l.minMatch = *minMatch;

  const auto* entitlements = document.if_contains("entitlements");
  if (entitlements == nullptr || !entitlements->is_object()) {
    return "field 'entitlements' must be an object";
  }
  const auto& e = entitlements->get_object();
  l.entitlements.maxGpus = limitField(e, "max_gpus", problem);
  l.entitlements.maxInstances = limitField(e, "max_instances", problem);
  l.entitlements.maxModels = limitField(e, "max_models", problem);
  l.entitlements.maxConcurrency = limitField(e, "max_concurrency", problem);
  if (!problem.empty()) {
    return problem;
  }
  json::Reader er(e);
  auto modules = er.stringList("modules", false);
  auto trial = er.boolean("trial", false);
  if (!er.ok()) {
    return "entitlements: " + er.problem()->message;
  }
  if (modules) {
    l.entitlements.modules = std::move(*modules);
  }
  l.entitlements.trial = trial.value_or(false);
  return l;
}

std::variant<SignedLicense, std::string> parseFile(std::string_view text) {
  if (text.size() > 64 * 1024) {
    return "a license file is at most 64 KiB; this is not one";
  }
  auto parsed = json::parseObject(text);
  if (auto* p = std::get_if<json::Problem>(&parsed)) {
    return "not a license file (it is not JSON: " + p->message + ")";
  }
  const auto& top = std::get<boost::json::object>(parsed);
  json::Reader reader(top);
  const auto* document = top.if_contains("license");
  const auto* signature = top.if_contains("signature");
  if (document == nullptr || !document->is_object() || signature == nullptr ||
      !signature->is_object()) {
    return "not a license file: it needs the objects 'license' and 'signature'";
  }
  for (const auto& member : top) {
    if (member.key() != "license" && member.key() != "signature") {
      return "not a license file: unknown field '" + std::string(member.key()) + "'";
    }
  }
  json::Reader s(signature->get_object());
  auto algorithm = s.string("algorithm");
  auto keyId = s.string("key_id");
  auto value = s.string("value");
  s.rejectUnknown();
  if (!s.ok()) {
    return "signature: " + s.problem()->message;
  }
  if (*algorithm != "ed25519") {
    return "signature: algorithm must be \"ed25519\"";
  }
  if (value->size() != 128 || !isLowerHex(*value)) {
    return "signature: value must be 128 lower-case hex digits";
  }
  auto license = parseDocument(document->get_object());
  if (auto* problem = std::get_if<std::string>(&license)) {
    return "license: " + *problem;
  }
  return SignedLicense{std::get<License>(std::move(license)), *keyId, *value};
}

std::span<const PublicKey> vendorKeys() {
  static const std::vector<PublicKey> keys = [] {
    std::vector<PublicKey> out;
    for (std::string_view pem : build::kLicenseKeyPems) {
      if (auto id = keyId(pem)) {
        out.push_back({*id, std::string(pem)});
      }
    }
    return out;
  }();
  return keys;
}

bool trustsTestKey() {
  return build::kLicenseTrustsTestKey;
}

std::optional<std::string> keyId(std::string_view publicPem) {
  auto key = readPublicKey(publicPem);
  if (!key) {
    return std::nullopt;
  }
  std::array<unsigned char, 32> raw{};
  std::size_t length = raw.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), raw.data(), &length) != 1) {
    return std::nullopt;
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned digestLength = 0;
  if (EVP_Digest(raw.data(), length, digest.data(), &digestLength, EVP_sha256(), nullptr) != 1) {
    return std::nullopt;
  }
  return lowerHex(digest.data(), 8);
}

std::optional<std::string> verify(const SignedLicense& file, std::span<const PublicKey> keys) {
  auto key = std::find_if(keys.begin(), keys.end(),
                          [&file](const PublicKey& k) { return k.id == file.keyId; });
  if (key == keys.end()) {
    return "the license is signed with key " + file.keyId +
           ", which this agent does not trust (not a license from the vendor)";
  }
  std::string problem;
  auto message = canonical(file.license.document, problem);
  if (!message) {
    return problem;
  }
  auto pkey = readPublicKey(key->pem);
  std::array<unsigned char, 64> signature{};
  for (std::size_t i = 0; i < signature.size(); ++i) {
    signature[i] =
        static_cast<unsigned char>(std::stoi(file.signatureHex.substr(i * 2, 2), nullptr, 16));
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!pkey || !ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                       reinterpret_cast<const unsigned char*>(message->data()),
                       message->size()) != 1) {
    return "the signature does not match the license: the file was altered or is not from the "
           "vendor";
  }
  return std::nullopt;
}

}  // namespace aibox::agent::license
