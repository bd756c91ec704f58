// aiboxctl usage ...: what applications used through the gateway, per key, model and hour
// (docs/cli.md).
#include <iostream>

#include "agent/ctl/ctl.hpp"

namespace aibox::ctl {
namespace {

constexpr const char* kUsageUsage =
    "Usage: aiboxctl usage COMMAND\n\n"
    "  show [--since TIME] [--until TIME] [--key ID] [--model NAME]\n"
    "                 requests, tokens, errors and mean latency per hour, key and model, and the\n"
    "                 totals (TIME as 2026-12-01T10:00:00Z or unix seconds)\n"
    "  export [--since TIME] [--until TIME] [--key ID] [--model NAME]\n"
    "                 the same rows as CSV on stdout\n";

int show(const Options& options, const std::vector<std::string>& args) {
  auto query = queryString(args, {"since", "until", "key", "model"}, kUsageUsage);
  if (!query) {
    return kUsage;
  }
  return run(options, "GET", "/api/v1/usage" + *query, {}, [](const boost::json::object& answer) {
    std::vector<std::vector<std::string>> rows{
        {"HOUR", "KEY", "NAME", "MODEL", "REQUESTS", "PROMPT", "COMPLETION", "ERRORS", "MEAN MS"}};
    for (const auto& r : answer.at("usage").as_array()) {
      const auto& row = r.as_object();
      auto requests = row.at("requests").as_int64();
      rows.push_back(
          {field(row, "hour"), field(row, "key"),
           row.at("key_name").as_string().empty() ? "(deleted)" : field(row, "key_name"),
           field(row, "model"), field(row, "requests"), field(row, "prompt_tokens"),
           field(row, "completion_tokens"), field(row, "errors"),
           std::to_string(requests > 0 ? row.at("latency_ms").as_int64() / requests : 0)});
    }
    printRows(rows);
    const auto& t = answer.at("totals").as_object();
    std::cout << "total: " << field(t, "requests") << " requests, " << field(t, "prompt_tokens")
              << " prompt and " << field(t, "completion_tokens") << " completion tokens, "
              << field(t, "errors") << " errors\n";
  });
}

int exportCsv(const Options& options, const std::vector<std::string>& args) {
  auto query = queryString(args, {"since", "until", "key", "model"}, kUsageUsage);
  if (!query) {
    return kUsage;
  }
  return printExport(options,
                     "/api/v1/usage" + *query + (query->empty() ? "?" : "&") + "format=csv");
}

}  // namespace

int usageCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    return usage(kUsageUsage, args.empty() ? "usage needs a command" : "");
  }
  if (args[0] == "show") {
    return show(options, args);
  }
  if (args[0] == "export") {
    return exportCsv(options, args);
  }
  return usage(kUsageUsage, "bad arguments for 'usage " + args[0] + "'");
}

}  // namespace aibox::ctl
