// aiboxctl audit ...: read, verify and export the audit log (docs/cli.md).
#include <iostream>

#include "agent/ctl/ctl.hpp"

namespace aibox::ctl {
namespace {

constexpr const char* kAuditUsage =
    "Usage: aiboxctl audit COMMAND\n\n"
    "  ls [--actor A] [--action TEXT] [--since TIME] [--until TIME] [--limit N] [--before ID]\n"
    "                 the newest entries first (TIME as 2026-11-22 or 2026-11-22T10:00:00Z)\n"
    "  verify         check the hash chain of the log and its archives; exit code 1 on a break\n"
    "  export [--since TIME] [--until TIME]\n"
    "                 every matching entry as JSON lines on stdout, oldest first\n";

int list(const Options& options, const std::vector<std::string>& args) {
  auto query =
      queryString(args, {"actor", "action", "since", "until", "limit", "before"}, kAuditUsage);
  if (!query) {
    return kUsage;
  }
  return run(options, "GET", "/api/v1/audit" + *query, {}, [](const boost::json::object& answer) {
    std::vector<std::vector<std::string>> rows{
        {"ID", "TIME", "ACTOR", "SOURCE", "ACTION", "TARGET", "RESULT"}};
    for (const auto& e : answer.at("entries").as_array()) {
      const auto& entry = e.as_object();
      rows.push_back({field(entry, "id"), field(entry, "time"), field(entry, "actor"),
                      field(entry, "source"), field(entry, "action"), field(entry, "target"),
                      field(entry, "result")});
    }
    printRows(rows);
    if (!answer.at("next_before").is_null()) {
      std::cout << "more: --before " << field(answer, "next_before") << '\n';
    }
  });
}

int verify(const Options& options) {
  int code = kOk;
  auto answer = callAgent(options, "GET", "/api/v1/audit/verify", "", code);
  if (!answer) {
    return code;
  }
  const auto& result = answer->as_object();
  bool ok = result.at("ok").as_bool();
  if (options.json) {
    printJson(*answer);
  } else if (ok) {
    std::cout << "audit log intact: " << field(result, "rows_checked") << " rows and "
              << field(result, "archives_checked") << " archive files checked\n";
  } else {
    std::cout << "audit log BROKEN:\n";
    for (const auto& p : result.at("problems").as_array()) {
      std::cout << "  " << field(p.as_object(), "where") << ": " << field(p.as_object(), "problem")
                << '\n';
    }
  }
  return ok ? kOk : kFailed;
}

int exportLog(const Options& options, const std::vector<std::string>& args) {
  auto query = queryString(args, {"since", "until", "actor", "action"}, kAuditUsage);
  if (!query) {
    return kUsage;
  }
  return printExport(options, "/api/v1/audit/export" + *query);
}

}  // namespace

int auditCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    return usage(kAuditUsage, args.empty() ? "audit needs a command" : "");
  }
  if (args[0] == "ls") {
    return list(options, args);
  }
  if (args[0] == "verify" && args.size() == 1) {
    return verify(options);
  }
  if (args[0] == "export") {
    return exportLog(options, args);
  }
  return usage(kAuditUsage, "bad arguments for 'audit " + args[0] + "'");
}

}  // namespace aibox::ctl
