// aiboxctl license ...: the box's license (docs/cli.md, docs/licensing.md).
#include <fstream>
#include <iostream>

#include "agent/ctl/ctl.hpp"

namespace aibox::ctl {
namespace {

constexpr const char* kLicenseUsage =
    "Usage: aiboxctl license COMMAND\n\n"
    "  show             the license state, what it allows and how much of it is used, expiry\n"
    "  install FILE     install a license file from the vendor (checked first: a bad, expired\n"
    "                   or foreign file is refused and the old license is kept)\n"
    "  fingerprint      this box's fingerprint, to send to the vendor for a license\n"
    "                   (--json gives the file the vendor's tool reads)\n";

std::string limitText(const boost::json::object& entitlements, const boost::json::object& usage,
                      std::string_view limit, std::string_view used) {
  auto max = field(entitlements, limit);
  return field(usage, used) + (max == "-" ? std::string(" (no limit)") : " of " + max);
}

void printLicense(const boost::json::object& l) {
  std::vector<std::pair<std::string, std::string>> rows{{"State", field(l, "state")},
                                                        {"", field(l, "message")}};
  if (const auto* doc = l.if_contains("license"); doc != nullptr && doc->is_object()) {
    const auto& d = doc->as_object();
    const auto& e = l.at("entitlements").as_object();
    const auto& u = l.at("usage").as_object();
    std::string modules;
    for (const auto& m : e.at("modules").as_array()) {
      modules += (modules.empty() ? "" : ", ") + std::string(m.as_string());
    }
    bool trial = e.at("trial").is_bool() && e.at("trial").as_bool();
    rows.insert(rows.end(),
                {{"License", field(d, "id") + (trial ? " (trial)" : "")},
                 {"Customer", field(d, "customer")},
                 {"Valid", field(d, "not_before") + " to " + field(d, "not_after")},
                 {"Grace ends", field(d, "grace_ends_at")},
                 {"Models", limitText(e, u, "max_models", "models")},
                 {"Instances", limitText(e, u, "max_instances", "instances")},
                 {"GPUs", limitText(e, u, "max_gpus", "gpus")},
                 {"Concurrency",
                  field(e, "max_concurrency") == "-" ? "no limit" : field(e, "max_concurrency")},
                 {"Modules", modules.empty() ? "-" : modules}});
  }
  const auto& fp = l.at("fingerprint").as_object();
  if (fp.contains("matched")) {
    rows.emplace_back("Fingerprint", field(fp, "matched") + " of " + field(fp, "licensed") +
                                         " parts match (" + field(fp, "needed") + " needed)");
  }
  printTable(rows);
}

void printFingerprint(const boost::json::object& fp) {
  std::vector<std::vector<std::string>> rows{{"PART", "WHAT", "HASH"}};
  for (const auto& p : fp.at("parts").as_array()) {
    const auto& o = p.as_object();
    rows.push_back({field(o, "kind"), field(o, "label"), field(o, "hash")});
  }
  printRows(rows);
  for (const auto& m : fp.at("missing").as_array()) {
    std::cout << "not read: " << std::string(m.as_string()) << "\n";
  }
  std::cout << "Send the output of 'aiboxctl license fingerprint --json' to the vendor.\n";
}

}  // namespace

int licenseCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    return usage(kLicenseUsage, args.empty() ? "license needs a command" : "");
  }
  const auto& command = args[0];
  if (command == "show" && args.size() == 1) {
    return run(options, "GET", "/api/v1/license", {}, printLicense);
  }
  if (command == "fingerprint" && args.size() == 1) {
    return run(options, "GET", "/api/v1/license/fingerprint", {}, printFingerprint);
  }
  if (command == "install" && args.size() == 2) {
    std::ifstream in(args[1], std::ios::binary);
    if (!in) {
      std::cerr << "aiboxctl: cannot read " << args[1] << "\n";
      return kFailed;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int code = kOk;
    auto answer = callAgent(options, "PUT", "/api/v1/license", text, code);
    if (!answer) {
      return code;
    }
    if (options.json) {
      printJson(*answer);
    } else {
      std::cout << "license installed\n";
      printLicense(answer->as_object());
    }
    return kOk;
  }
  return usage(kLicenseUsage, "unknown or incomplete license command '" + command + "'");
}

}  // namespace aibox::ctl
