#include "common/http/tls.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <array>
#include <set>
#include <stdexcept>
#include <string>

#include "common/fs/fs.hpp"
#include "common/log/log.hpp"

namespace aibox::http {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

[[noreturn]] void opensslFailure(const std::string& what) {
  std::array<char, 256> text{};
  ERR_error_string_n(ERR_get_error(), text.data(), text.size());
  throw std::runtime_error(what + ": " + text.data());
}

void check(int ok, const char* what) {
  if (ok != 1) {
    opensslFailure(what);
  }
}

std::string hostName() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') {
    return "localhost";
  }
  return name.data();
}

std::set<std::string> ipAddresses() {
  std::set<std::string> out{"127.0.0.1", "::1"};
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return out;
  }
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) {
      continue;
    }
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (a->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      inet_ntop(AF_INET, &in->sin_addr, text.data(), text.size());
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) {
        continue;  // only meaningful with a zone; browsers never use it in a URL
      }
      inet_ntop(AF_INET6, &in6->sin6_addr, text.data(), text.size());
    } else {
      continue;
    }
    out.insert(text.data());
  }
  freeifaddrs(list);
  return out;
}

void addExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) {
    opensslFailure("certificate extension " + value);
  }
  check(X509_add_ext(cert, ext.get(), -1), "add extension");
}

std::string pem(const std::function<int(BIO*)>& write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(write(bio.get()), "PEM encoding");
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(size)};
}

constexpr const char* kOrganisation = "aibox self-signed";

// True for a self-signed certificate that ensureCertificate made (its subject's O says so).
bool madeByUs(const std::filesystem::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    return false;
  }
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert || X509_check_issued(cert.get(), cert.get()) != X509_V_OK) {
    return false;
  }
  std::array<char, 128> organisation{};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_organizationName,
                                    organisation.data(), organisation.size());
  return n > 0 && std::string_view(organisation.data()) == kOrganisation;
}

}  // namespace

bool ensureCertificate(const TlsFiles& files) {
  bool haveCert = std::filesystem::exists(files.certificate);
  bool haveKey = std::filesystem::exists(files.key);
  if (haveCert && haveKey) {
    return false;
  }
  // The pair is written certificate first: a crash between the two leaves our own certificate
  // without its key, which is made again rather than left to stop every later start.
  if (haveCert && !haveKey && madeByUs(files.certificate)) {
    log::warning(
        "self-signed TLS certificate has no key (interrupted first start?); making a new pair",
        {{"certificate", files.certificate.string()}});
    haveCert = false;
  }
  if (haveCert != haveKey) {
    throw std::runtime_error("TLS certificate " + files.certificate.string() +
                             (haveCert ? " exists" : " is missing") + " but its key " +
                             files.key.string() + (haveKey ? " exists" : " is missing") +
                             ": provide both, or remove both to have a self-signed pair made");
  }
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) {
    opensslFailure("generate P-256 key");
  }
  X509Ptr cert(X509_new());
  check(X509_set_version(cert.get(), 2), "set version");
  std::array<unsigned char, 16> serial{};
  check(RAND_bytes(serial.data(), serial.size()), "random serial");
  serial[0] &= 0x7f;  // positive
  BnPtr serialBn(BN_bin2bn(serial.data(), serial.size(), nullptr));
  if (!serialBn ||
      BN_to_ASN1_INTEGER(serialBn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    opensslFailure("set serial");
  }
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  std::string host = hostName();
  X509_NAME* name = X509_get_subject_name(cert.get());
  check(
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(kOrganisation), -1, -1, 0),
      "subject O");
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(host.c_str()), -1, -1, 0),
        "subject CN");
  check(X509_set_issuer_name(cert.get(), name), "issuer");
  check(X509_set_pubkey(cert.get(), key.get()), "public key");
  std::string san = "DNS:" + host;
  if (host != "localhost") {
    san += ",DNS:localhost";
  }
  for (const auto& ip : ipAddresses()) {
    san += ",IP:" + ip;
  }
  addExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  addExtension(cert.get(), NID_ext_key_usage, "serverAuth");
  addExtension(cert.get(), NID_subject_key_identifier, "hash");
  addExtension(cert.get(), NID_subject_alt_name, san);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    opensslFailure("sign certificate");
  }
  std::string keyPem = pem([&key](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  std::string certPem = pem([&cert](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
  fs::makeDirectories(files.key.parent_path(), 0700);
  std::filesystem::create_directories(files.certificate.parent_path());
  fs::writeFileAtomic(files.certificate, certPem, 0644);
  fs::writeFileAtomic(files.key, keyPem, 0600);
  log::info("made a self-signed TLS certificate",
            {{"certificate", files.certificate.string()}, {"names", san}});
  return true;
}

std::shared_ptr<boost::asio::ssl::context> serverTlsContext(const TlsFiles& files) {
  ensureCertificate(files);
  auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  check(SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION), "minimum TLS version");
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  // TLS 1.2: ECDHE with AEAD only. TLS 1.3 suites are all AEAD; OpenSSL's default list stands.
  check(SSL_CTX_set_cipher_list(native,
                                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
        "cipher list");
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(files.certificate.string(), ec);
  if (ec) {
    throw std::runtime_error("cannot load TLS certificate " + files.certificate.string() + ": " +
                             ec.message());
  }
  ctx->use_private_key_file(files.key.string(), boost::asio::ssl::context::pem, ec);
  if (ec) {
    throw std::runtime_error("cannot load TLS key " + files.key.string() + ": " + ec.message());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    throw std::runtime_error("TLS key " + files.key.string() + " does not match certificate " +
                             files.certificate.string());
  }
  return ctx;
}

}  // namespace aibox::http
