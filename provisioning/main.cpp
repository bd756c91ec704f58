// aibox-provision: the factory station tool (docs/provisioning.md). Wiring only.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "agent/security/security.hpp"
#include "aibox_build_info.hpp"
#include "common/fs/fs.hpp"
#include "provisioning/provision.hpp"

namespace prov = aibox::provisioning;

namespace {

constexpr const char* kUsage =
    "Usage: aibox-provision COMMAND [OPTIONS]\n\n"
    "The factory station tool: makes a box ready to ship, on the box, as root.\n\n"
    "Commands:\n"
    "  run --manifest FILE [--root DIR] [--station ID] [--only STEP]... [--skip STEP]...\n"
    "      [--json]               run the steps: inventory, self_tests, identity, license,\n"
    "                             models, admin, report; a re-run redoes only what is not\n"
    "                             done. JSON lines on stdout (always with --json or when\n"
    "                             stdout is not a terminal), else a view for people\n"
    "  plan --manifest FILE [--only STEP]... [--skip STEP]... [--json]\n"
    "                             check the manifest and say what would run\n"
    "  report [--root DIR] [--verify] [--ca FILE]\n"
    "                             print the last report; --verify checks its signature\n"
    "                             (and with --ca, that the factory CA signed the device)\n"
    "  reset --keep-identity [--root DIR] [--json]\n"
    "                             factory reset: removes users, sessions, keys, audit\n"
    "                             (archived first), settings, instances and imported models;\n"
    "                             keeps identity, license and factory models\n"
    "  ca init --key FILE --cert FILE [--name NAME] [--days N]\n"
    "                             make the factory CA (P-256 key 0600, certificate)\n"
    "  ca sign --key FILE --cert FILE --csr FILE [--out FILE] [--days N] [--name SAN]...\n"
    "                             sign a device CSR with the factory CA\n"
    "  hash-password              read a password on stdin, print its hash for the\n"
    "                             manifest's admin.password_hash\n\n"
    "Exit codes: 0 all passed or waived, 1 a step failed (the others still ran), 2 a bad\n"
    "manifest or command line, 3 not root, or another provisioning runs (the lock).\n";

using Options = std::multimap<std::string, std::string>;

int usage(const std::string& problem) {
  std::cerr << "aibox-provision: " << problem << "\n\n" << kUsage;
  return prov::kBadManifest;
}

std::optional<Options> parse(const std::vector<std::string>& args,
                             std::initializer_list<std::string_view> withValue,
                             std::initializer_list<std::string_view> flags) {
  Options out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
      out.emplace(a, "");
    } else if (std::find(withValue.begin(), withValue.end(), a) != withValue.end()) {
      if (i + 1 >= args.size()) {
        usage(a + " needs a value");
        return std::nullopt;
      }
      out.emplace(a, args[++i]);
    } else {
      usage("unknown option '" + a + "'");
      return std::nullopt;
    }
  }
  return out;
}

std::optional<std::string> one(const Options& o, const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? std::nullopt : std::optional(it->second);
}

std::optional<std::set<std::string>> steps(const Options& o, const std::string& key) {
  std::set<std::string> out;
  for (auto [it, end] = o.equal_range(key); it != end; ++it) {
    std::istringstream list(it->second);
    for (std::string step; std::getline(list, step, ',');) {
      if (std::find(std::begin(prov::kSteps), std::end(prov::kSteps), step) ==
          std::end(prov::kSteps)) {
        usage("'" + step +
              "' is not a step (inventory, self_tests, identity, license, models, admin, report)");
        return std::nullopt;
      }
      out.insert(step);
    }
  }
  return out;
}

std::optional<prov::Manifest> manifest(const Options& o) {
  auto file = one(o, "--manifest");
  if (!file) {
    usage("--manifest FILE is required");
    return std::nullopt;
  }
  auto read = prov::readManifest(*file);
  if (auto* problems = std::get_if<std::vector<std::string>>(&read)) {
    for (const auto& p : *problems) {
      std::cerr << p << "\n";
    }
    std::cerr << "aibox-provision: " << problems->size()
              << " problem(s) in the manifest; nothing was changed\n";
    return std::nullopt;
  }
  return std::get<prov::Manifest>(std::move(read));
}

int runOrPlan(const std::vector<std::string>& args, bool dryRun) {
  auto o = parse(args, {"--manifest", "--root", "--station", "--only", "--skip"}, {"--json"});
  if (!o) {
    return prov::kBadManifest;
  }
  auto only = steps(*o, "--only");
  auto skip = steps(*o, "--skip");
  if (!only || !skip) {
    return prov::kBadManifest;
  }
  auto m = manifest(*o);
  if (!m) {
    return prov::kBadManifest;
  }
  prov::RunOptions options;
  options.root = std::filesystem::absolute(one(*o, "--root").value_or("/"));
  options.station = one(*o, "--station").value_or("");
  options.only = *only;
  options.skip = *skip;
  options.json = o->contains("--json") || ::isatty(STDOUT_FILENO) == 0;
  if (dryRun) {
    prov::plan(*m, options, std::cout);
    return prov::kOk;
  }
  return prov::run(*m, options, std::cout);
}

int report(const std::vector<std::string>& args) {
  auto o = parse(args, {"--root", "--ca"}, {"--verify"});
  if (!o) {
    return prov::kBadManifest;
  }
  auto file = prov::reportFile(std::filesystem::absolute(one(*o, "--root").value_or("/")));
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "aibox-provision: no report at " << file.string()
              << ": the box has not been provisioned (aibox-provision run)\n";
    return prov::kStepFailed;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!o->contains("--verify")) {
    std::cout << text;
    return prov::kOk;
  }
  auto ca = one(*o, "--ca");
  if (auto problem =
          prov::verifyReport(text, ca ? std::optional<std::filesystem::path>(*ca) : std::nullopt)) {
    std::cerr << "aibox-provision: " << file.string() << ": " << *problem << "\n";
    return prov::kStepFailed;
  }
  std::cout << file.string() << ": signature good"
            << (ca ? ", signed by a device of the factory CA " + *ca : std::string()) << "\n";
  return prov::kOk;
}

int ca(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "init" && args[0] != "sign")) {
    return usage("ca needs 'init' or 'sign'");
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  auto o = parse(rest, {"--key", "--cert", "--name", "--days", "--csr", "--out"}, {});
  if (!o) {
    return prov::kBadManifest;
  }
  auto key = one(*o, "--key");
  auto cert = one(*o, "--cert");
  if (!key || !cert) {
    return usage("ca " + args[0] + " needs --key FILE and --cert FILE");
  }
  int days = 0;
  try {
    days = std::stoi(one(*o, "--days").value_or(args[0] == "init" ? "7300" : "3650"));
  } catch (const std::exception&) {
    return usage("--days must be a number of days");
  }
  if (args[0] == "init") {
    prov::caInit(*key, *cert, one(*o, "--name").value_or("aibox factory CA"), days);
    std::cout << "factory CA made: key " << *key << " (0600), certificate " << *cert << "\n";
    return prov::kOk;
  }
  auto csrFile = one(*o, "--csr");
  if (!csrFile) {
    return usage("ca sign needs --csr FILE");
  }
  std::ifstream in(*csrFile, std::ios::binary);
  if (!in) {
    std::cerr << "aibox-provision: cannot read " << *csrFile << "\n";
    return prov::kStepFailed;
  }
  std::string csr((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> names;
  for (auto [it, end] = o->equal_range("--name"); it != end; ++it) {
    names.push_back(it->second);
  }
  auto chain = prov::caSign(csr, *key, *cert, days, names);
  if (auto out = one(*o, "--out")) {
    aibox::fs::writeFileAtomic(*out, chain, 0644);
  } else {
    std::cout << chain;
  }
  return prov::kOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? prov::kBadManifest : prov::kOk;
  }
  if (args[0] == "--version") {
    std::cout << "aibox-provision " << aibox::build::kVersion << " (" << aibox::build::kBuildId
              << ")\n";
    return prov::kOk;
  }
  std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "run" || command == "plan") {
      return runOrPlan(args, command == "plan");
    }
    if (command == "report") {
      return report(args);
    }
    if (command == "reset") {
      auto o = parse(args, {"--root"}, {"--keep-identity", "--json"});
      if (!o) {
        return prov::kBadManifest;
      }
      if (!o->contains("--keep-identity")) {
        return usage(
            "reset needs --keep-identity: a factory reset always keeps the identity "
            "and the license");
      }
      return prov::reset(std::filesystem::absolute(one(*o, "--root").value_or("/")),
                         o->contains("--json") || ::isatty(STDOUT_FILENO) == 0, std::cout);
    }
    if (command == "ca") {
      return ca(args);
    }
    if (command == "hash-password") {
      std::string password;
      std::getline(std::cin, password);
      if (password.size() < 12) {
        std::cerr << "aibox-provision: the password must be at least 12 characters\n";
        return prov::kBadManifest;
      }
      std::cout << aibox::agent::security::hashPassword(
                       password, aibox::agent::security::Policy{}.scryptLog2N)
                << "\n";
      return prov::kOk;
    }
  } catch (const std::exception& e) {
    std::cerr << "aibox-provision: " << e.what() << "\n";
    return prov::kStepFailed;
  }
  return usage("unknown command '" + command + "'");
}
