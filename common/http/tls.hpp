#pragma once
// The TLS policy of every listener: TLS 1.2 or newer, AEAD cipher suites only, and a
// self-signed ECDSA P-256 certificate made on first start when none is configured.

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace aibox::http {

struct TlsFiles {
  std::filesystem::path certificate;  // PEM chain
  std::filesystem::path key;          // PEM private key, mode 0600
};

// When neither file exists, writes a self-signed certificate for this host (SANs: hostname,
// localhost, and the machine's IP addresses) and its key. Returns true when it made them.
// One file without the other is an error that says what to do.
bool ensureCertificate(const TlsFiles& files);

std::shared_ptr<boost::asio::ssl::context> serverTlsContext(const TlsFiles& files);

// What an admin checks of the certificate a browser is shown.
struct CertificateInfo {
  std::string subject;  // RFC 2253: "CN=box01,O=aibox self-signed"
  std::string issuer;
  std::string serial;     // hex
  std::string notBefore;  // UTC ISO 8601
  std::string notAfter;
  std::string sha256;              // fingerprint of the DER, "AB:CD:...", as browsers show it
  std::string keyType;             // "EC P-256", "RSA 3072", "ED25519"
  std::vector<std::string> names;  // subject alternative names: "DNS:box01", "IP:10.0.0.5"
  bool selfSigned = false;
};

// The first certificate of a PEM file. Throws std::runtime_error saying what is wrong.
CertificateInfo certificateInfo(const std::filesystem::path& pemFile);

}  // namespace aibox::http
