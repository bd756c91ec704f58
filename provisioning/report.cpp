// Step 7, the report: every step, the inventory, the fingerprint and the versions, signed
// with the device key (ECDSA P-256, SHA-256) over the report as common/json writes it.
#include <openssl/err.h>
#include <openssl/pem.h>

#include <boost/json/parse.hpp>
#include <chrono>

#include "aibox_build_info.hpp"
#include "common/fs/fs.hpp"
#include "common/json/json.hpp"
#include "provisioning/crypto.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {
namespace {

std::string hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

std::optional<std::string> unhex(std::string_view text) {
  if (text.size() % 2 != 0) {
    return std::nullopt;
  }
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    auto digit = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    int hi = digit(text[i]);
    int lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

boost::json::object stepJson(const StepResult& s) {
  boost::json::array findings;
  for (const auto& f : s.findings) {
    boost::json::object o{{"check", f.check}, {"ok", f.ok}, {"message", f.message}};
    if (f.waivedBy) {
      o["waived"] = *f.waivedBy;
    }
    findings.push_back(std::move(o));
  }
  boost::json::object o{{"step", s.step},
                        {"status", outcomeName(s.outcome)},
                        {"seconds", std::round(s.seconds * 1000) / 1000},
                        {"message", s.message},
                        {"already_done", s.alreadyDone},
                        {"findings", findings}};
  for (const auto& [key, value] : s.details) {
    if (key != "inventory") {  // the report has it once, at the top
      o[key] = value;
    }
  }
  return o;
}

}  // namespace

boost::json::object stepResultJson(const StepResult& s) {
  return stepJson(s);
}

std::filesystem::path reportFile(const std::filesystem::path& root) {
  return config::Paths(root).stateDir() / "provisioning" / "report.json";
}

std::string signReport(const boost::json::object& report, const std::filesystem::path& keyFile,
                       const std::filesystem::path& certificate) {
  std::string body = json::serialize(report);
  auto key = readPrivateKey(keyFile);
  auto chain = readText(certificate);
  if (!key || !chain) {
    throw std::runtime_error("no device key and certificate to sign the report with");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t size = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) != 1) {
    throw std::runtime_error("cannot sign the report");
  }
  std::string signature(size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(signature.data());
  if (EVP_DigestSign(ctx.get(), out, &size, reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) != 1) {
    throw std::runtime_error("cannot sign the report");
  }
  boost::json::object file{
      {"report", report},
      {"signature",
       {{"algorithm", "ecdsa-p256-sha256"}, {"certificate", *chain}, {"value", hex(out, size)}}}};
  return json::serialize(file) + "\n";
}

std::optional<std::string> verifyReport(std::string_view text,
                                        const std::optional<std::filesystem::path>& caFile) {
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  if (ec || !value.is_object()) {
    return "the report is not JSON";
  }
  const auto* report = value.as_object().if_contains("report");
  const auto* signature = value.as_object().if_contains("signature");
  if (report == nullptr || !report->is_object()) {
    return "the report has no 'report' object";
  }
  if (signature == nullptr || !signature->is_object()) {
    return "the report is not signed (the identity step did not make a device key)";
  }
  const auto& sig = signature->as_object();
  const auto* certificate = sig.if_contains("certificate");
  const auto* valueHex = sig.if_contains("value");
  if (certificate == nullptr || !certificate->is_string() || valueHex == nullptr ||
      !valueHex->is_string() || sig.if_contains("algorithm") == nullptr ||
      sig.at("algorithm") != boost::json::value("ecdsa-p256-sha256")) {
    return "the signature is not an ecdsa-p256-sha256 signature with its certificate";
  }
  auto cert = parseCertificate(certificate->as_string());
  auto bytes = unhex(valueHex->as_string());
  if (!cert || !bytes) {
    return "the signature's certificate or value cannot be read";
  }
  std::string body = json::serialize(*report);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  bool good = key != nullptr &&
              EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
              EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(bytes->data()),
                               bytes->size(), reinterpret_cast<const unsigned char*>(body.data()),
                               body.size()) == 1;
  ERR_clear_error();
  if (!good) {
    return "the signature does not match: the report was changed after it was signed";
  }
  const auto* serial = report->as_object().if_contains("serial");
  std::array<char, 256> cn{};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn.data(),
                                    cn.size());
  if (serial == nullptr || !serial->is_string() || n <= 0 ||
      serial->as_string() != std::string_view(cn.data(), static_cast<std::size_t>(n))) {
    return "the report's serial is not the one in its signing certificate";
  }
  if (caFile) {
    auto caText = readText(*caFile);
    auto ca = caText ? parseCertificate(*caText) : nullptr;
    if (!ca) {
      return "cannot read the CA certificate " + caFile->string();
    }
    if (auto problem = verifyChain(cert.get(), ca.get())) {
      return "the signing certificate is not the factory CA's: " + *problem;
    }
  }
  return std::nullopt;
}

StepResult reportStep(Box& box, const Manifest& manifest, const std::vector<StepResult>& done,
                      const std::string& startedAt) {
  StepResult r;
  boost::json::array steps;
  bool failed = false;
  for (const auto& s : done) {
    steps.push_back(stepJson(s));
    failed = failed || s.outcome == Outcome::failed;
  }
  std::string serial = box.serial;
  if (serial.empty()) {
    serial = readText(box.paths.identityDir() / "serial").value_or("");
    serial.erase(serial.find_last_not_of("\r\n") + 1);
  }
  boost::json::object report{
      {"format", "aibox-provisioning-report-1"},
      {"serial", serial},
      {"station", box.options.station},
      {"sku", manifest.sku.name},
      {"manifest", {{"file", manifest.file}, {"sha256", manifest.digest}}},
      {"started_at", startedAt},
      {"finished_at", nowIso()},
      {"status", failed ? "FAILED" : "PASSED"},
      {"steps", steps},
      {"inventory", box.inventoryDone ? boost::json::value(inventoryJson(box.inventory))
                                      : boost::json::value(nullptr)},
      {"fingerprint", box.inventoryDone
                          ? boost::json::value(agent::license::fingerprintJson(box.fingerprint))
                          : boost::json::value(nullptr)},
      {"versions", {{"aibox-provision", build::kVersion}, {"build_id", build::kBuildId}}}};
  std::string text;
  bool signedReport =
      std::filesystem::exists(box.deviceKey()) && std::filesystem::exists(box.deviceCertificate());
  text = signedReport ? signReport(report, box.deviceKey(), box.deviceCertificate())
                      : json::serialize(boost::json::object{{"report", report}}) + "\n";
  fs::makeDirectories(box.dir / "reports", 0750);
  // The history first: the current report is only ever a complete one.
  // To the millisecond, so that runs in the same second each keep their report.
  auto ms = std::to_string(1000 + std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                          .count() %
                                      1000);
  std::string stamp = nowIso();
  stamp.insert(stamp.size() - 1, "." + ms.substr(1));
  std::replace(stamp.begin(), stamp.end(), ':', '-');
  fs::writeFileAtomic(box.dir / "reports" / (stamp + ".json"), text, 0640);
  fs::writeFileAtomic(reportFile(box.paths.root()), text, 0640);
  r.details["file"] = reportFile(box.paths.root()).string();
  r.details["signed"] = signedReport;
  if (!signedReport) {
    r.outcome = Outcome::failed;
    r.message =
        "report written unsigned (no device identity): " + reportFile(box.paths.root()).string();
  } else {
    r.message = "signed report written: " + reportFile(box.paths.root()).string();
  }
  return r;
}

}  // namespace aibox::provisioning
