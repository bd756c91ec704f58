#pragma once
// OpenSSL pieces the identity step and the report share.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace aibox::provisioning {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::string bioText(BIO* bio);
// The first certificate of a PEM text; null when there is none.
X509Ptr parseCertificate(std::string_view pem);
PkeyPtr readPrivateKey(const std::filesystem::path& file);
std::string privateKeyPem(EVP_PKEY* key);
// nullopt when `ca` issued `cert` and it is in date; else why not.
std::optional<std::string> verifyChain(X509* cert, X509* ca);

}  // namespace aibox::provisioning
