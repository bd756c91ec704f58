#pragma once
// aiboxctl's pieces: the client of the agent's unix socket, output helpers and commands.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/ctl/agent_client.hpp"
#include "common/json/json.hpp"

namespace aibox::ctl {

// Exit codes, the same for every command (docs/cli.md).
inline constexpr int kOk = 0;
inline constexpr int kFailed = 1;     // the agent refused or the command failed
inline constexpr int kUsage = 2;      // bad command line
inline constexpr int kAgentDown = 3;  // the agent cannot be reached

struct Options {
  std::filesystem::path root;  // the box's root, for files the CLI reads itself
  std::filesystem::path socket;
  bool json = false;
};

// Prints an aligned two-column table.
void printTable(const std::vector<std::pair<std::string, std::string>>& rows);
// "3d 04h 05m 06s"
std::string formatDuration(long long seconds);
// The agent's {"error":{...}} as one line, or the raw body.
std::string errorMessage(const HttpResult& result);
// Reports that the agent is unreachable, in the chosen format; returns kAgentDown.
int agentDown(const Options& options, const std::string& problem);

// Calls the agent. On success returns the JSON answer; otherwise reports the problem (agent
// unreachable, or the agent's error) in the chosen format, sets `exitCode` and returns nullopt.
std::optional<boost::json::value> callAgent(const Options& options, const std::string& method,
                                            const std::string& path, const std::string& body,
                                            int& exitCode);
// GETs `path` from the agent and prints its body as it is (an export: CSV, JSON lines);
// returns the exit code.
int printExport(const Options& options, const std::string& path);
// "ls --actor x --limit 5" -> "?actor=x&limit=5" (args[0] is the subcommand); nullopt after a
// usage message when an option is not in `allowed` or lacks its value.
std::optional<std::string> queryString(const std::vector<std::string>& args,
                                       std::initializer_list<std::string_view> allowed,
                                       const char* usageText);
// Percent-encodes a path segment or query value.
std::string urlEncode(const std::string& text);
// A field of an object as text ("-" when missing or null).
std::string field(const boost::json::object& o, std::string_view key);
// Prints rows as aligned columns; the first row is the header.
void printRows(const std::vector<std::vector<std::string>>& rows);
// Prints the JSON answer as is (for --json).
void printJson(const boost::json::value& value);
// A password from stdin: one line when `fromStdin` or stdin is not a terminal, else asked
// twice without echo. nullopt (with a message) when none could be read.
std::optional<std::string> readPassword(bool fromStdin);

// Runs one request; prints the JSON answer with --json, else `human(answer)`.
template <class Human>
int run(const Options& options, const std::string& method, const std::string& path,
        const boost::json::object& body, Human human) {
  int code = kOk;
  auto answer = callAgent(options, method, path, body.empty() ? "" : json::serialize(body), code);
  if (!answer) {
    return code;
  }
  if (options.json) {
    printJson(*answer);
  } else {
    human(answer->as_object());
  }
  return kOk;
}

inline int usage(const char* text, const std::string& problem = "") {
  if (!problem.empty()) {
    std::cerr << "aiboxctl: " << problem << "\n\n" << text;
    return kUsage;
  }
  std::cout << text;
  return kOk;
}

int statusCommand(const Options& options, const std::vector<std::string>& args);
int usersCommand(const Options& options, const std::vector<std::string>& args);
int sessionsCommand(const Options& options, const std::vector<std::string>& args);
int tokensCommand(const Options& options, const std::vector<std::string>& args);
int keysCommand(const Options& options, const std::vector<std::string>& args);
int usageCommand(const Options& options, const std::vector<std::string>& args);
int auditCommand(const Options& options, const std::vector<std::string>& args);
int hardwareCommand(const Options& options, const std::vector<std::string>& args);
int modelsCommand(const Options& options, const std::vector<std::string>& args);
int licenseCommand(const Options& options, const std::vector<std::string>& args);
int runtimesCommand(const Options& options, const std::vector<std::string>& args);
int enginesCommand(const Options& options, const std::vector<std::string>& args);

}  // namespace aibox::ctl
