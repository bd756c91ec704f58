#include "common/http/tls.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>
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

namespace {

std::string nameText(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(std::max(size, 0L))};
}

std::string timeText(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return "";
  }
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text.data();
}

std::string keyText(EVP_PKEY* key) {
  if (key == nullptr) {
    return "";
  }
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_EC) {
    std::array<char, 64> group{};
    std::size_t length = 0;
    if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &length) == 1) {
      const char* nist = EC_curve_nid2nist(OBJ_sn2nid(group.data()));
      return std::string("EC ") + (nist != nullptr ? nist : group.data());
    }
    return "EC";
  }
  if (id == EVP_PKEY_RSA) {
    return "RSA " + std::to_string(EVP_PKEY_get_bits(key));
  }
  const char* name = OBJ_nid2sn(id);
  return name != nullptr ? name : "unknown";
}

}  // namespace

CertificateInfo certificateInfo(const std::filesystem::path& pemFile) {
  BioPtr bio(BIO_new_file(pemFile.c_str(), "r"));
  if (!bio) {
    throw std::runtime_error("cannot read certificate " + pemFile.string());
  }
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    throw std::runtime_error(pemFile.string() + " holds no PEM certificate");
  }
  CertificateInfo info;
  info.subject = nameText(X509_get_subject_name(cert.get()));
  info.issuer = nameText(X509_get_issuer_name(cert.get()));
  info.notBefore = timeText(X509_get0_notBefore(cert.get()));
  info.notAfter = timeText(X509_get0_notAfter(cert.get()));
  info.selfSigned = X509_check_issued(cert.get(), cert.get()) == X509_V_OK;
  if (BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr)); serial) {
    char* hex = BN_bn2hex(serial.get());
    if (hex != nullptr) {
      info.serial = hex;
      OPENSSL_free(hex);
    }
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  check(X509_digest(cert.get(), EVP_sha256(), digest.data(), &length), "certificate digest");
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned int i = 0; i < length; ++i) {
    info.sha256 += i == 0 ? "" : ":";
    info.sha256 += kHex[digest[i] >> 4];
    info.sha256 += kHex[digest[i] & 0xf];
  }
  info.keyType = keyText(X509_get0_pubkey(cert.get()));
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_DNS) {
        const auto* dns = name->d.dNSName;
        info.names.push_back("DNS:" + std::string(reinterpret_cast<const char*>(dns->data),
                                                  static_cast<std::size_t>(dns->length)));
      } else if (name->type == GEN_IPADD) {
        const auto* ip = name->d.iPAddress;
        std::array<char, INET6_ADDRSTRLEN> text{};
        int family = ip->length == 4 ? AF_INET : AF_INET6;
        if ((ip->length == 4 || ip->length == 16) &&
            inet_ntop(family, ip->data, text.data(), text.size()) != nullptr) {
          info.names.push_back(std::string("IP:") + text.data());
        }
      }
    }
    GENERAL_NAMES_free(names);
  }
  return info;
}

}  // namespace aibox::http
