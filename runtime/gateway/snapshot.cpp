#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>

#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {
namespace {

constexpr std::string_view kKeyPrefix = "sk-aibox-";

std::string sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::optional<std::int64_t> optionalInt(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v != nullptr && v->is_int64() ? std::optional(v->as_int64()) : std::nullopt;
}

std::string text(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::vector<std::string> strings(const boost::json::object& o, std::string_view name) {
  std::vector<std::string> out;
  const auto* v = o.if_contains(name);
  if (v != nullptr && v->is_array()) {
    for (const auto& s : v->as_array()) {
      if (s.is_string()) {
        out.emplace_back(s.as_string());
      }
    }
  }
  return out;
}

}  // namespace

http::Response openaiError(http::Status status, std::string_view type, std::string_view code,
                           std::string_view message) {
  return http::json(
      status,
      {{"error",
        {{"message", message},
         {"type", type},
         {"param", nullptr},
         {"code", code.empty() ? boost::json::value(nullptr) : boost::json::value(code)}}}});
}

std::variant<Snapshot, std::string> parseSnapshot(std::string_view body) {
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec || !value.is_object()) {
    return std::string("the snapshot is not a JSON object");
  }
  const auto& root = value.as_object();
  const auto* keys = root.if_contains("keys");
  const auto* instances = root.if_contains("instances");
  if (keys == nullptr || !keys->is_array() || instances == nullptr || !instances->is_array()) {
    return std::string("the snapshot lacks its 'keys' or 'instances' list");
  }
  Snapshot s;
  for (const auto& k : keys->as_array()) {
    if (!k.is_object()) {
      return std::string("a key of the snapshot is not an object");
    }
    const auto& o = k.as_object();
    Key key{text(o, "id"),
            text(o, "name"),
            text(o, "secret_hash"),
            strings(o, "models"),
            optionalInt(o, "requests_per_minute"),
            optionalInt(o, "tokens_per_minute"),
            optionalInt(o, "max_concurrent"),
            std::nullopt};
    if (auto expires = optionalInt(o, "expires_at")) {
      key.expires = Clock::time_point(std::chrono::seconds(*expires));
    }
    if (key.id.empty() || key.secretHash.size() != 64) {
      return std::string("a key of the snapshot lacks its id or hash");
    }
    s.keys.emplace(key.id, std::move(key));
  }
  for (const auto& i : instances->as_array()) {
    if (!i.is_object()) {
      return std::string("an instance of the snapshot is not an object");
    }
    const auto& o = i.as_object();
    Instance instance{text(o, "id"),          text(o, "name"),
                      text(o, "model"),       strings(o, "names"),
                      text(o, "served_name"), static_cast<int>(optionalInt(o, "port").value_or(0)),
                      text(o, "token")};
    if (instance.id.empty() || instance.port <= 0 || instance.port > 65535) {
      return std::string("an instance of the snapshot lacks its id or port");
    }
    s.instances.push_back(std::move(instance));
  }
  s.maxConcurrency = optionalInt(root, "max_concurrency");
  s.generatedAt = text(root, "generated_at");
  return s;
}

std::variant<const Key*, KeyProblem> checkKey(const Snapshot& snapshot,
                                              std::string_view authorization,
                                              Clock::time_point now) {
  if (authorization.empty()) {
    return KeyProblem::missing;
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (!authorization.starts_with(kBearer)) {
    return KeyProblem::malformed;
  }
  auto value = authorization.substr(kBearer.size());
  // sk-aibox-<12 hex id>-<secret>
  if (!value.starts_with(kKeyPrefix) || value.size() < kKeyPrefix.size() + 14 ||
      value[kKeyPrefix.size() + 12] != '-') {
    return KeyProblem::malformed;
  }
  auto it = snapshot.keys.find(value.substr(kKeyPrefix.size(), 12));
  if (it == snapshot.keys.end()) {
    return KeyProblem::unknown;
  }
  auto hash = sha256Hex(value.substr(kKeyPrefix.size() + 13));
  if (CRYPTO_memcmp(hash.data(), it->second.secretHash.data(), hash.size()) != 0) {
    return KeyProblem::unknown;
  }
  if (it->second.expires && *it->second.expires <= now) {
    return KeyProblem::expired;
  }
  return &it->second;
}

std::vector<Instance> instancesFor(const Snapshot& snapshot, std::string_view model) {
  std::vector<Instance> out;
  for (const auto& i : snapshot.instances) {
    if (std::find(i.names.begin(), i.names.end(), model) != i.names.end()) {
      out.push_back(i);
    }
  }
  return out;
}

bool keyAllows(const Key& key, std::string_view asked, const std::vector<Instance>& instances) {
  if (key.models.empty()) {
    return true;
  }
  auto listed = [&key](std::string_view name) {
    return std::find(key.models.begin(), key.models.end(), name) != key.models.end();
  };
  if (listed(asked)) {
    return true;
  }
  return std::any_of(instances.begin(), instances.end(), [&listed](const Instance& i) {
    return std::any_of(i.names.begin(), i.names.end(), listed);
  });
}

}  // namespace aibox::gateway
