#include "common/http/tls.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/support.hpp"

namespace aibox::http {
namespace {

TEST(Tls, MakesASelfSignedP256CertificateWithAPrivateKey) {
  test::TempDir dir;
  TlsFiles files{dir.path() / "id/https.crt", dir.path() / "id/https.key"};
  EXPECT_TRUE(ensureCertificate(files));
  EXPECT_FALSE(ensureCertificate(files));  // kept on the next start
  struct stat st {};
  ASSERT_EQ(::stat(files.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = test::run({"openssl", "x509", "-in", files.certificate.string(), "-noout", "-text"});
  ASSERT_EQ(text.exitCode, 0) << text.err;
  EXPECT_NE(text.out.find("ASN1 OID: prime256v1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("DNS:localhost"), std::string::npos);
  EXPECT_NE(text.out.find("IP Address:127.0.0.1"), std::string::npos);
  EXPECT_NE(text.out.find("TLS Web Server Authentication"), std::string::npos);
  EXPECT_NE(serverTlsContext(files), nullptr);
}

TEST(Tls, CertificateWithoutKeyIsAnErrorThatSaysWhatToDo) {
  test::TempDir dir;
  TlsFiles files{dir.path() / "https.crt", dir.path() / "https.key"};
  test::writeFile(files.certificate, "x");
  try {
    ensureCertificate(files);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("provide both, or remove both"), std::string::npos);
  }
  EXPECT_EQ(test::readFile(files.certificate), "x");  // nothing changed
}

TEST(Tls, OwnCertificateLeftWithoutItsKeyIsMadeAgain) {
  test::TempDir dir;
  TlsFiles files{dir.path() / "https.crt", dir.path() / "https.key"};
  ensureCertificate(files);
  auto first = test::readFile(files.certificate);
  std::filesystem::remove(files.key);  // as a crash between the two writes leaves it
  EXPECT_TRUE(ensureCertificate(files));
  EXPECT_NE(test::readFile(files.certificate), first);
  EXPECT_NE(serverTlsContext(files), nullptr);
}

TEST(Tls, MismatchedKeyIsRefused) {
  test::TempDir a;
  test::TempDir b;
  TlsFiles first{a.path() / "c", a.path() / "k"};
  TlsFiles second{b.path() / "c", b.path() / "k"};
  ensureCertificate(first);
  ensureCertificate(second);
  EXPECT_THROW(serverTlsContext({first.certificate, second.key}), std::runtime_error);
}

}  // namespace
}  // namespace aibox::http
