#include "provisioning/license/issue.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <memory>
#include <stdexcept>

#include "agent/license/license.hpp"
#include "common/json/json.hpp"
#include "common/time/time.hpp"

namespace aibox::provisioning::license {
namespace {

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void prettyInto(const boost::json::value& v, std::string& out, int depth) {
  std::string pad(static_cast<std::size_t>(depth + 1) * 2, ' ');
  std::string close(static_cast<std::size_t>(depth) * 2, ' ');
  if (v.is_object() && !v.get_object().empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& m : v.get_object()) {
      out += first ? "" : ",\n";
      first = false;
      out += pad + json::serialize(boost::json::string(m.key())) + ": ";
      prettyInto(m.value(), out, depth + 1);
    }
    out += "\n" + close + "}";
  } else if (v.is_array() && !v.get_array().empty()) {
    out += "[\n";
    bool first = true;
    for (const auto& item : v.get_array()) {
      out += first ? "" : ",\n";
      first = false;
      out += pad;
      prettyInto(item, out, depth + 1);
    }
    out += "\n" + close + "]";
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

KeyPair generateKey() {
  Key key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free);
  Bio priv(BIO_new(BIO_s_mem()), &BIO_free);
  Bio pub(BIO_new(BIO_s_mem()), &BIO_free);
  if (!key || !priv || !pub ||
      PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
    throw std::runtime_error("OpenSSL cannot make an Ed25519 key");
  }
  return {bioText(priv.get()), bioText(pub.get())};
}

std::variant<boost::json::object, std::string> buildDocument(const Request& request,
                                                             std::int64_t now) {
  json::Reader r(request.fields);
  auto id = r.string("id");
  auto customer = r.string("customer");
  auto issuer = r.string("issuer", false);
  auto days = r.integer("days", false);
  auto notBefore = r.string("not_before", false);
  auto notAfter = r.string("not_after", false);
  auto grace = r.integer("grace_days", false);
  auto minMatch = r.integer("min_match", false);
  auto trial = r.boolean("trial", false);
  const auto* entitlements = request.fields.if_contains("entitlements");
  if (!r.ok()) {
    return r.problem()->message;
  }
  for (const auto& m : request.fields) {
    static constexpr std::array<std::string_view, 10> kKnown{
        "id",        "customer",   "issuer",    "days",  "not_before",
        "not_after", "grace_days", "min_match", "trial", "entitlements"};
    if (std::find(kKnown.begin(), kKnown.end(), std::string_view(m.key())) == kKnown.end()) {
      return "'" + std::string(m.key()) + "' is not a field of a license request";
    }
  }
  if (id->empty() || customer->empty()) {
    return std::string("'id' and 'customer' must not be empty");
  }
  std::int64_t from = now;
  if (notBefore) {
    auto t = time::parseTime(*notBefore);
    if (!t) {
      return std::string("'not_before' must be a time such as \"2027-01-31T00:00:00Z\"");
    }
    from = *t;
  }
  std::int64_t until = 0;
  if (days && !notAfter) {
    if (*days < 1 || *days > 36500) {
      return std::string("'days' must be 1 to 36500");
    }
    until = from + *days * 86400;
  } else if (notAfter && !days) {
    auto t = time::parseTime(*notAfter);
    if (!t) {
      return std::string("'not_after' must be a time such as \"2027-01-31T00:00:00Z\"");
    }
    until = *t;
  } else {
    return std::string("give one of 'days' and 'not_after'");
  }
  if (request.components.empty()) {
    return std::string("the box's fingerprint is needed (--fingerprint FILE)");
  }
  auto n = static_cast<std::int64_t>(request.components.size());
  // One replaced part keeps a box of three or more parts licensed.
  std::int64_t k = minMatch.value_or(n >= 3 ? n - 1 : n);
  boost::json::array components;
  for (const auto& c : request.components) {
    components.emplace_back(c);
  }
  boost::json::object ent = entitlements != nullptr && entitlements->is_object()
                                ? entitlements->get_object()
                                : boost::json::object{};
  if (entitlements != nullptr && !entitlements->is_object()) {
    return std::string("'entitlements' must be an object");
  }
  if (trial) {
    ent["trial"] = *trial;
  }
  boost::json::object document{{"version", 1},
                               {"id", *id},
                               {"issuer", issuer.value_or("aibox")},
                               {"customer", *customer},
                               {"issued_at", time::isoTime(now)},
                               {"not_before", time::isoTime(from)},
                               {"not_after", time::isoTime(until)},
                               {"grace_days", grace.value_or(14)},
                               {"binding", {{"min_match", k}, {"components", components}}},
                               {"entitlements", ent}};
  // The agent's own reader decides what a valid document is.
  auto check = agent::license::parseDocument(document);
  if (auto* problem = std::get_if<std::string>(&check)) {
    return *problem;
  }
  std::string problem;
  if (!agent::license::canonical(document, problem)) {
    return problem;
  }
  return document;
}

std::variant<std::string, std::string> signFile(const boost::json::object& document,
                                                const std::string& privatePem) {
  Bio bio(BIO_new_mem_buf(privatePem.data(), static_cast<int>(privatePem.size())), &BIO_free);
  Key key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr,
          &EVP_PKEY_free);
  if (!key || EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                  "the signing key is not an Ed25519 private key "
                                                  "in PEM (make one with 'aibox-license keygen')");
  }
  Bio pub(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PUBKEY(pub.get(), key.get());
  auto keyId = agent::license::keyId(bioText(pub.get()));
  std::string problem;
  auto message = agent::license::canonical(document, problem);
  if (!message || !keyId) {
    return std::variant<std::string, std::string>(std::in_place_index<1>, problem);
  }
  std::array<unsigned char, 64> signature{};
  std::size_t length = signature.size();
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), signature.data(), &length,
                     reinterpret_cast<const unsigned char*>(message->data()),
                     message->size()) != 1) {
    return std::variant<std::string, std::string>(std::in_place_index<1>, "signing failed");
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (std::size_t i = 0; i < length; ++i) {
    hex += kDigits[signature[i] >> 4];
    hex += kDigits[signature[i] & 0xf];
  }
  boost::json::object file{
      {"license", document},
      {"signature", {{"algorithm", "ed25519"}, {"key_id", *keyId}, {"value", hex}}}};
  return std::variant<std::string, std::string>(std::in_place_index<0>, pretty(file) + "\n");
}

std::string pretty(const boost::json::value& value) {
  std::string out;
  prettyInto(value, out, 0);
  return out;
}

}  // namespace aibox::provisioning::license
