#pragma once
// The TLS policy of every listener: TLS 1.2 or newer, AEAD cipher suites only, and a
// self-signed ECDSA P-256 certificate made on first start when none is configured.

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>

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

}  // namespace aibox::http
