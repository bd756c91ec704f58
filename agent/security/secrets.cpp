#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>
#include <vector>

#include "agent/security/security.hpp"

namespace aibox::agent::security {
namespace {

constexpr int kScryptR = 8;
constexpr int kScryptP = 1;
constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;

std::vector<unsigned char> randomBytes(std::size_t n) {
  std::vector<unsigned char> out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
    throw std::runtime_error("the system random generator failed");
  }
  return out;
}

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

std::optional<std::vector<unsigned char>> unhex(std::string_view text) {
  if (text.size() % 2 != 0) {
    return std::nullopt;
  }
  std::vector<unsigned char> out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    unsigned value = 0;
    for (char c : text.substr(i, 2)) {
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        value |= static_cast<unsigned>(c - 'a' + 10);
      } else {
        return std::nullopt;
      }
    }
    out.push_back(static_cast<unsigned char>(value));
  }
  return out;
}

std::optional<std::vector<unsigned char>> scrypt(std::string_view password,
                                                 const std::vector<unsigned char>& salt, int log2n,
                                                 int r, int p, std::size_t length) {
  if (log2n < 10 || log2n > 22 || r < 1 || r > 32 || p < 1 || p > 16) {
    return std::nullopt;
  }
  std::uint64_t n = 1ULL << log2n;
  std::uint64_t maxmem = 128ULL * r * (n + static_cast<std::uint64_t>(p) + 2) + (1U << 20);
  std::vector<unsigned char> out(length);
  if (EVP_PBE_scrypt(password.data(), password.size(), salt.data(), salt.size(), n,
                     static_cast<std::uint64_t>(r), static_cast<std::uint64_t>(p), maxmem,
                     out.data(), out.size()) != 1) {
    return std::nullopt;
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    auto end = s.find(sep, start);
    parts.push_back(s.substr(start, end - start));
    if (end == std::string_view::npos) {
      return parts;
    }
    start = end + 1;
  }
}

}  // namespace

std::string randomToken(std::size_t bytes) {
  auto raw = randomBytes(bytes);
  std::string out(4 * ((bytes + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), raw.data(),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') {
    out.pop_back();
  }
  for (auto& c : out) {
    c = c == '+' ? '-' : (c == '/' ? '_' : c);
  }
  return out;
}

std::string randomPassword(std::size_t length) {
  static constexpr std::string_view kAlphabet =
      "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::string out;
  while (out.size() < length) {
    for (unsigned char b : randomBytes(length)) {
      // Rejection sampling keeps every character equally likely.
      if (b < 256 - 256 % kAlphabet.size() && out.size() < length) {
        out += kAlphabet[b % kAlphabet.size()];
      }
    }
  }
  return out;
}

std::string sha256Hex(std::string_view data) {
  // Fetched once: OpenSSL 3's implicit fetch (EVP_sha256()) costs a provider lookup per call,
  // and this runs for every request that carries a session cookie or a token.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned size = 0;
  if (kSha256 == nullptr ||
      EVP_Digest(data.data(), data.size(), digest.data(), &size, kSha256, nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return hex(digest.data(), size);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string hashPassword(std::string_view password, int log2n) {
  auto salt = randomBytes(kSaltBytes);
  auto hash = scrypt(password, salt, log2n, kScryptR, kScryptP, kHashBytes);
  if (!hash) {
    throw std::runtime_error("scrypt failed");
  }
  return "scrypt$" + std::to_string(log2n) + "$" + std::to_string(kScryptR) + "$" +
         std::to_string(kScryptP) + "$" + hex(salt.data(), salt.size()) + "$" +
         hex(hash->data(), hash->size());
}

bool verifyPassword(std::string_view password, std::string_view encoded) {
  auto parts = split(encoded, '$');
  if (parts.size() != 6 || parts[0] != "scrypt") {
    return false;
  }
  int log2n = 0;
  int r = 0;
  int p = 0;
  try {
    log2n = std::stoi(std::string(parts[1]));
    r = std::stoi(std::string(parts[2]));
    p = std::stoi(std::string(parts[3]));
  } catch (const std::exception&) {
    return false;
  }
  auto salt = unhex(parts[4]);
  auto expected = unhex(parts[5]);
  if (!salt || !expected || expected->empty()) {
    return false;
  }
  auto actual = scrypt(password, *salt, log2n, r, p, expected->size());
  return actual && CRYPTO_memcmp(actual->data(), expected->data(), expected->size()) == 0;
}

std::optional<std::string> passwordProblem(std::string_view user, std::string_view password,
                                           std::size_t minLength) {
  if (password.size() < minLength) {
    return "must have at least " + std::to_string(minLength) + " characters";
  }
  if (password.size() > 1024) {
    return "must have at most 1024 characters";
  }
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
  };
  if (!user.empty() && lower(password).find(lower(user)) != std::string::npos) {
    return "must not contain the user name";
  }
  return std::nullopt;
}

bool validUserName(std::string_view name) {
  if (name.empty() || name.size() > 32 ||
      !(std::islower(static_cast<unsigned char>(name[0])) != 0 || name[0] == '_')) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace aibox::agent::security
