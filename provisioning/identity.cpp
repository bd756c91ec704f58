// Step 3, identity: the serial, a device key (P-256, 0600) and a certificate for it, signed by
// the factory CA from a CSR that carries the serial; and the factory CA tool itself.
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/fs/fs.hpp"
#include "common/http/tls.hpp"
#include "provisioning/crypto.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {
namespace {

std::string opensslError(const std::string& what) {
  unsigned long code = ERR_get_error();
  std::string detail = code != 0 ? ERR_reason_error_string(code) : "";
  ERR_clear_error();
  return what + (detail.empty() ? "" : " (" + detail + ")");
}

void check(int ok, const std::string& what) {
  if (ok != 1) {
    throw std::runtime_error(opensslError(what));
  }
}

BioPtr readBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string fileOrThrow(const std::filesystem::path& file, const std::string& what) {
  auto text = readText(file);
  if (!text) {
    throw std::runtime_error("cannot read the " + what + " " + file.string());
  }
  return *text;
}

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)> ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()), X509_EXTENSION_free);
  if (!ext) {
    throw std::runtime_error(opensslError("cannot make the extension " + value));
  }
  check(X509_add_ext(cert, ext.get(), -1), "add an extension");
}

void randomSerial(X509* cert) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_new(), BN_free);
  check(BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "random serial");
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    throw std::runtime_error(opensslError("serial"));
  }
}

std::string certificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert), "write a certificate");
  return bioText(bio.get());
}

std::string commonName(X509_NAME* name) {
  std::array<char, 256> cn{};
  int n = X509_NAME_get_text_by_NID(name, NID_commonName, cn.data(), cn.size());
  return n > 0 ? std::string(cn.data(), static_cast<std::size_t>(n)) : std::string();
}

// Why the device certificate on disk is not the one this manifest would make, or nullopt.
std::optional<std::string> certificateProblem(const Box& box, const Manifest& manifest,
                                              EVP_PKEY* key) {
  auto pem = readText(box.deviceCertificate());
  if (!pem) {
    return "no device certificate yet";
  }
  auto cert = parseCertificate(*pem);
  if (!cert) {
    return "the device certificate cannot be read";
  }
  if (X509_check_private_key(cert.get(), key) != 1) {
    ERR_clear_error();
    return "the device certificate is not for the device key";
  }
  if (commonName(X509_get_subject_name(cert.get())) != box.serial) {
    return "the device certificate is for another serial";
  }
  auto caPem = readText(manifest.caCertificate);
  auto ca = caPem ? parseCertificate(*caPem) : nullptr;
  if (!ca) {
    return "the factory CA certificate " + manifest.caCertificate.string() + " cannot be read";
  }
  if (auto problem = verifyChain(cert.get(), ca.get())) {
    return "the device certificate is not the factory CA's: " + *problem;
  }
  return std::nullopt;
}

}  // namespace

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

X509Ptr parseCertificate(std::string_view pem) {
  auto bio = readBio(pem);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr readPrivateKey(const std::filesystem::path& file) {
  auto text = readText(file);
  if (!text) {
    return nullptr;
  }
  auto bio = readBio(*text);
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::optional<std::string> verifyChain(X509* cert, X509* ca) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
  if (X509_verify_cert(ctx.get()) == 1) {
    return std::nullopt;
  }
  return std::string(X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
}

void caInit(const std::filesystem::path& keyFile, const std::filesystem::path& certFile,
            const std::string& name, int days) {
  if (std::filesystem::exists(keyFile) || std::filesystem::exists(certFile)) {
    throw std::runtime_error(keyFile.string() + " or " + certFile.string() +
                             " exists: a CA is made once; remove them to make a new one");
  }
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) {
    throw std::runtime_error(opensslError("cannot make a P-256 key"));
  }
  X509Ptr cert(X509_new());
  check(X509_set_version(cert.get(), 2), "version");
  randomSerial(cert.get());
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("aibox factory"), -1, -1,
                                   0),
        "subject");
  check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0),
        "subject");
  check(X509_set_issuer_name(cert.get(), subject), "issuer");
  check(X509_set_pubkey(cert.get(), key.get()), "public key");
  addExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  addExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  addExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    throw std::runtime_error(opensslError("cannot sign the CA certificate"));
  }
  fs::writeFileAtomic(keyFile, privateKeyPem(key.get()), 0600);
  fs::writeFileAtomic(certFile, certificatePem(cert.get()), 0644);
}

std::string privateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
        "write a key");
  return bioText(bio.get());
}

std::string caSign(std::string_view csrPem, const std::filesystem::path& caKeyFile,
                   const std::filesystem::path& caCertFile, int days,
                   const std::vector<std::string>& names) {
  auto caKey = readPrivateKey(caKeyFile);
  if (!caKey) {
    throw std::runtime_error("cannot read the CA key " + caKeyFile.string());
  }
  auto ca = parseCertificate(fileOrThrow(caCertFile, "CA certificate"));
  if (!ca) {
    throw std::runtime_error(caCertFile.string() + " is not a PEM certificate");
  }
  if (X509_check_private_key(ca.get(), caKey.get()) != 1) {
    ERR_clear_error();
    throw std::runtime_error(caKeyFile.string() + " is not the key of " + caCertFile.string());
  }
  auto bio = readBio(csrPem);
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> csr(
      PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr), X509_REQ_free);
  if (!csr) {
    throw std::runtime_error("the CSR is not a PEM certificate request");
  }
  EVP_PKEY* csrKey = X509_REQ_get0_pubkey(csr.get());
  if (csrKey == nullptr || X509_REQ_verify(csr.get(), csrKey) != 1) {
    ERR_clear_error();
    throw std::runtime_error("the CSR's signature does not match its key");
  }
  X509Ptr cert(X509_new());
  check(X509_set_version(cert.get(), 2), "version");
  randomSerial(cert.get());
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600);
  check(X509_set_subject_name(cert.get(), X509_REQ_get_subject_name(csr.get())), "subject");
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get())), "issuer");
  check(X509_set_pubkey(cert.get(), csrKey), "public key");
  addExtension(cert.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
  addExtension(cert.get(), ca.get(), NID_key_usage, "critical,digitalSignature");
  addExtension(cert.get(), ca.get(), NID_ext_key_usage, "serverAuth,clientAuth");
  addExtension(cert.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  std::string san;
  for (const auto& n : names) {
    std::array<unsigned char, 16> address{};
    bool ip = ::inet_pton(AF_INET, n.c_str(), address.data()) == 1 ||
              ::inet_pton(AF_INET6, n.c_str(), address.data()) == 1;
    san += (san.empty() ? "" : ",") + std::string(ip ? "IP:" : "DNS:") + n;
  }
  if (!san.empty()) {
    addExtension(cert.get(), ca.get(), NID_subject_alt_name, san);
  }
  if (X509_sign(cert.get(), caKey.get(), EVP_sha256()) == 0) {
    throw std::runtime_error(opensslError("cannot sign the certificate"));
  }
  return certificatePem(cert.get()) + certificatePem(ca.get());
}

StepResult identityStep(Box& box, const Manifest& manifest) {
  StepResult r;
  auto dmi = readText(box.paths.under("/sys/class/dmi/id/product_serial"));
  std::string serial = manifest.serial.value_or("");
  if (serial.empty() && dmi) {
    serial = *dmi;
    serial.erase(serial.find_last_not_of(" \t\r\n") + 1);
  }
  if (serial.empty() || serial.find_first_of("/\\ \n") != std::string::npos) {
    r.outcome = Outcome::failed;
    r.message = "no usable serial: the DMI product serial (" +
                box.paths.under("/sys/class/dmi/id/product_serial").string() +
                ") is empty or has spaces or slashes; set 'serial' in the manifest";
    return r;
  }
  box.serial = serial;
  r.details["serial"] = serial;
  std::vector<std::string> done;
  fs::makeDirectories(box.paths.identityDir(), 0700);
  auto serialFile = box.paths.identityDir() / "serial";
  if (readText(serialFile) != serial + "\n") {
    fs::writeFileAtomic(serialFile, serial + "\n", 0644);
    done.push_back("serial written");
  }
  auto key = readPrivateKey(box.deviceKey());
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    key = PkeyPtr(EVP_EC_gen("P-256"));
    if (!key) {
      throw std::runtime_error(opensslError("cannot make the device key"));
    }
    // The old certificate goes first: a device.crt on disk is always for the device.key.
    std::filesystem::remove(box.deviceCertificate());
    fs::writeFileAtomic(box.deviceKey(), privateKeyPem(key.get()), 0600);
    done.push_back("device key made");
  }
  if (auto problem = certificateProblem(box, manifest, key.get())) {
    std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> csr(X509_REQ_new(), X509_REQ_free);
    X509_NAME* name = X509_REQ_get_subject_name(csr.get());
    for (auto [field, value] :
         {std::pair{"O", std::string("aibox")}, {"serialNumber", serial}, {"CN", serial}}) {
      check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                       -1, 0),
            "CSR subject");
    }
    check(X509_REQ_set_pubkey(csr.get(), key.get()), "CSR key");
    if (X509_REQ_sign(csr.get(), key.get(), EVP_sha256()) == 0) {
      throw std::runtime_error(opensslError("cannot sign the CSR"));
    }
    BioPtr bio(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_X509_REQ(bio.get(), csr.get()), "write the CSR");
    std::string csrPem = bioText(bio.get());
    fs::writeFileAtomic(box.paths.identityDir() / "device.csr", csrPem, 0644);
    std::vector<std::string> names{serial, "localhost"};
    if (manifest.hostname && *manifest.hostname != serial) {
      names.insert(names.begin(), *manifest.hostname);
    }
    auto chain = caSign(csrPem, manifest.caKey, manifest.caCertificate,
                        static_cast<int>(manifest.certificateDays), names);
    fs::writeFileAtomic(box.deviceCertificate(), chain, 0644);
    done.push_back("certificate signed by the factory CA (was: " + *problem + ")");
  }
  auto info = http::certificateInfo(box.deviceCertificate());
  r.details["certificate"] = boost::json::object{{"subject", info.subject},
                                                 {"issuer", info.issuer},
                                                 {"serial", info.serial},
                                                 {"not_after", info.notAfter},
                                                 {"sha256_fingerprint", info.sha256}};
  r.alreadyDone = done.empty();
  if (done.empty()) {
    r.message = "already done: serial " + serial + ", certificate " + info.sha256.substr(0, 23);
  } else {
    std::string list;
    for (const auto& d : done) {
      list += (list.empty() ? "" : "; ") + d;
    }
    r.message = "serial " + serial + ": " + list +
                (box.agent ? "; restart the agent to serve the new certificate" : "");
  }
  return r;
}

}  // namespace aibox::provisioning
