// aibox-license: the vendor's license tool (docs/licensing.md). Makes signing keys, reads a
// box's fingerprint, issues, verifies and shows licenses. It never runs on a box in the field.
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

#include "agent/license/license.hpp"
#include "aibox_build_info.hpp"
#include "common/fs/fs.hpp"
#include "common/json/json.hpp"
#include "common/time/time.hpp"
#include "hwmon/hwmon.hpp"
#include "provisioning/license/issue.hpp"

namespace lic = aibox::agent::license;
namespace issue = aibox::provisioning::license;

namespace {

constexpr const char* kUsage =
    "Usage: aibox-license COMMAND [OPTIONS]\n\n"
    "The vendor's license tool: it holds the signing key and never runs on a box in the field.\n\n"
    "Commands:\n"
    "  keygen --out PREFIX            make a signing key pair: PREFIX.key (private, 0600) and\n"
    "                                 PREFIX.pub (public; build it into the agent with\n"
    "                                 -DAIBOX_LICENSE_KEYS=FILE)\n"
    "  fingerprint [--root DIR] [--nvml LIB] [--from-report FILE]\n"
    "                                 the fingerprint of this machine (run on the box), or the\n"
    "                                 one in a box's report or 'aiboxctl license fingerprint\n"
    "                                 --json' output; prints JSON\n"
    "  issue --key FILE --request FILE --fingerprint FILE [--out FILE]\n"
    "                                 sign a license for the box whose fingerprint is given;\n"
    "                                 the request is JSON: id, customer, days or not_after,\n"
    "                                 grace_days, min_match, trial, entitlements\n"
    "  verify FILE [--pub FILE]... [--fingerprint FILE]\n"
    "                                 check the signature (with the given public keys, else\n"
    "                                 the keys built in) and, with a fingerprint, the binding\n"
    "  show FILE                      what a license says, signature not checked\n\n"
    "Exit codes: 0 ok, 1 failed (or not valid), 2 usage error.\n";

int usageError(const std::string& problem) {
  std::cerr << "aibox-license: " << problem << "\n\n" << kUsage;
  return 2;
}

std::optional<std::string> readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "aibox-license: cannot read " << path << "\n";
    return std::nullopt;
  }
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::optional<boost::json::object> readObject(const std::string& path) {
  auto text = readText(path);
  if (!text) {
    return std::nullopt;
  }
  auto parsed = aibox::json::parseObject(*text);
  if (auto* p = std::get_if<aibox::json::Problem>(&parsed)) {
    std::cerr << "aibox-license: " << path << " is not a JSON object: " << p->message << "\n";
    return std::nullopt;
  }
  return std::get<boost::json::object>(std::move(parsed));
}

// The components of a fingerprint file (aiboxctl license fingerprint --json, a box's report).
std::optional<std::vector<std::string>> readComponents(const std::string& path) {
  auto object = readObject(path);
  if (!object) {
    return std::nullopt;
  }
  auto components = lic::fingerprintComponents(*object);
  if (auto* problem = std::get_if<std::string>(&components)) {
    std::cerr << "aibox-license: " << path << ": " << *problem << "\n";
    return std::nullopt;
  }
  return std::get<std::vector<std::string>>(std::move(components));
}

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "--name VALUE" options; a repeated one keeps every value. Positional arguments under "".
std::optional<std::multimap<std::string, std::string>> parseOptions(
    const std::vector<std::string>& args, std::initializer_list<std::string_view> known) {
  std::multimap<std::string, std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (!args[i].starts_with("--")) {
      out.emplace("", args[i]);
      continue;
    }
    if (std::find(known.begin(), known.end(), args[i]) == known.end()) {
      usageError("unknown option '" + args[i] + "'");
      return std::nullopt;
    }
    if (i + 1 >= args.size()) {
      usageError(args[i] + " needs a value");
      return std::nullopt;
    }
    out.emplace(args[i], args[i + 1]);
    ++i;
  }
  return out;
}

std::optional<std::string> one(const std::multimap<std::string, std::string>& o,
                               const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? std::nullopt : std::optional(it->second);
}

int keygen(const std::multimap<std::string, std::string>& o) {
  auto prefix = one(o, "--out");
  if (!prefix) {
    return usageError("keygen needs --out PREFIX");
  }
  auto pair = issue::generateKey();
  std::filesystem::path key = *prefix + ".key";
  if (std::filesystem::exists(key)) {
    std::cerr << "aibox-license: " << key.string()
              << " exists: a signing key is never overwritten; choose another --out\n";
    return 1;
  }
  aibox::fs::writeFileAtomic(key, pair.privatePem, 0600);
  aibox::fs::writeFileAtomic(*prefix + ".pub", pair.publicPem, 0644);
  std::cout << "key id " << *lic::keyId(pair.publicPem) << ": private key " << key.string()
            << " (0600; keep it offline), public key " << *prefix << ".pub\n";
  return 0;
}

int fingerprint(const std::multimap<std::string, std::string>& o) {
  if (auto report = one(o, "--from-report")) {
    auto components = readComponents(*report);
    if (!components) {
      return 1;
    }
    boost::json::array list;
    for (const auto& c : *components) {
      list.emplace_back(c);
    }
    std::cout << issue::pretty(boost::json::object{{"components", list}}) << "\n";
    return 0;
  }
  std::vector<std::string> gpus;
  auto nvml = aibox::hwmon::makeNvmlSource(one(o, "--nvml").value_or("libnvidia-ml.so.1"));
  for (const auto& gpu : nvml->poll().gpus) {
    gpus.push_back(gpu.uuid);
  }
  auto fp = lic::readFingerprint(one(o, "--root").value_or("/"), gpus);
  std::cout << issue::pretty(lic::fingerprintJson(fp)) << "\n";
  return 0;
}

int issueCommand(const std::multimap<std::string, std::string>& o) {
  auto keyFile = one(o, "--key");
  auto requestFile = one(o, "--request");
  auto fingerprintFile = one(o, "--fingerprint");
  if (!keyFile || !requestFile || !fingerprintFile) {
    return usageError("issue needs --key, --request and --fingerprint");
  }
  auto key = readText(*keyFile);
  auto request = readObject(*requestFile);
  auto components = readComponents(*fingerprintFile);
  if (!key || !request || !components) {
    return 1;
  }
  auto document = issue::buildDocument({*request, *components}, unixNow());
  if (auto* problem = std::get_if<std::string>(&document)) {
    std::cerr << "aibox-license: " << *requestFile << ": " << *problem << "\n";
    return 1;
  }
  auto file = issue::signFile(std::get<boost::json::object>(document), *key);
  if (file.index() == 1) {
    std::cerr << "aibox-license: " << std::get<1>(file) << "\n";
    return 1;
  }
  if (auto out = one(o, "--out")) {
    aibox::fs::writeFileAtomic(*out, std::get<0>(file), 0644);
    std::cerr << "license written to " << *out << "\n";
  } else {
    std::cout << std::get<0>(file);
  }
  return 0;
}

void printLicense(const lic::SignedLicense& file) {
  const auto& l = file.license;
  auto limit = [](const std::optional<std::int64_t>& v) {
    return v ? std::to_string(*v) : std::string("no limit");
  };
  std::string modules;
  for (const auto& m : l.entitlements.modules) {
    modules += (modules.empty() ? "" : ", ") + m;
  }
  std::cout << "License         " << l.id << (l.entitlements.trial ? " (trial)" : "") << "\n"
            << "Customer        " << l.customer << "\n"
            << "Issuer          " << l.issuer << ", key " << file.keyId << "\n"
            << "Issued          " << aibox::time::isoTime(l.issuedAt) << "\n"
            << "Valid           " << aibox::time::isoTime(l.notBefore) << " to "
            << aibox::time::isoTime(l.notAfter) << ", then " << l.graceSeconds / 86400
            << " days of grace\n"
            << "Bound to        " << l.minMatch << " of " << l.components.size()
            << " machine parts\n"
            << "GPUs            " << limit(l.entitlements.maxGpus) << "\n"
            << "Instances       " << limit(l.entitlements.maxInstances) << "\n"
            << "Models          " << limit(l.entitlements.maxModels) << "\n"
            << "Concurrency     " << limit(l.entitlements.maxConcurrency) << "\n"
            << "Modules         " << (modules.empty() ? "-" : modules) << "\n";
}

int verifyOrShow(const std::multimap<std::string, std::string>& o, bool check) {
  auto path = one(o, "");
  if (!path || o.count("") != 1) {
    return usageError("give one license FILE");
  }
  auto text = readText(*path);
  if (!text) {
    return 1;
  }
  auto parsed = lic::parseFile(*text);
  if (auto* problem = std::get_if<std::string>(&parsed)) {
    std::cerr << "aibox-license: " << *path << ": " << *problem << "\n";
    return 1;
  }
  const auto& file = std::get<lic::SignedLicense>(parsed);
  printLicense(file);
  if (!check) {
    return 0;
  }
  std::vector<lic::PublicKey> keys;
  for (auto [it, end] = o.equal_range("--pub"); it != end; ++it) {
    auto pem = readText(it->second);
    auto id = pem ? lic::keyId(*pem) : std::nullopt;
    if (!id) {
      std::cerr << "aibox-license: " << it->second << " is not an Ed25519 public key\n";
      return 1;
    }
    keys.push_back({*id, *pem});
  }
  std::span<const lic::PublicKey> trusted = keys.empty() ? lic::vendorKeys() : keys;
  if (auto problem = lic::verify(file, trusted)) {
    std::cout << "Signature       INVALID: " << *problem << "\n";
    return 1;
  }
  std::cout << "Signature       valid (key " << file.keyId << ")\n";
  if (auto fpFile = one(o, "--fingerprint")) {
    auto components = readComponents(*fpFile);
    if (!components) {
      return 1;
    }
    lic::Fingerprint machine;
    for (const auto& c : *components) {
      auto colon = c.find(':');
      machine.components.push_back({c.substr(0, colon), "", c.substr(colon + 1)});
    }
    auto e = lic::evaluate(&file, trusted, lic::matchCount(file.license, machine), unixNow(), 0, 0);
    std::cout << "On that box     " << lic::stateName(e.state) << ": " << e.message << "\n";
    return lic::allowsInstances(e.state) ? 0 : 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "aibox-license " << aibox::build::kVersion << "\n";
    return 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  try {
    if (command == "keygen") {
      auto o = parseOptions(args, {"--out"});
      return o ? keygen(*o) : 2;
    }
    if (command == "fingerprint") {
      auto o = parseOptions(args, {"--root", "--nvml", "--from-report"});
      return o ? fingerprint(*o) : 2;
    }
    if (command == "issue") {
      auto o = parseOptions(args, {"--key", "--request", "--fingerprint", "--out"});
      return o ? issueCommand(*o) : 2;
    }
    if (command == "verify" || command == "show") {
      auto o = parseOptions(args, {"--pub", "--fingerprint"});
      return o ? verifyOrShow(*o, command == "verify") : 2;
    }
  } catch (const std::exception& e) {
    std::cerr << "aibox-license: " << e.what() << "\n";
    return 1;
  }
  return usageError("unknown command '" + command + "'");
}
