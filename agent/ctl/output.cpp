#include <curl/curl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <iostream>

#include "agent/ctl/ctl.hpp"
#include "common/json/json.hpp"

namespace aibox::ctl {

void printTable(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::size_t width = 0;
  for (const auto& [key, value] : rows) {
    width = std::max(width, key.size());
  }
  for (const auto& [key, value] : rows) {
    std::cout << key << std::string(width - key.size() + 2, ' ') << value << '\n';
  }
}

std::string formatDuration(long long seconds) {
  auto two = [](long long v) {
    std::string digits = std::to_string(v);
    if (digits.size() < 2) {
      digits.insert(digits.begin(), '0');
    }
    return digits;
  };
  long long days = seconds / 86400;
  long long hours = seconds / 3600 % 24;
  long long minutes = seconds / 60 % 60;
  long long secs = seconds % 60;
  if (days > 0) {
    return std::to_string(days) + "d " + two(hours) + "h " + two(minutes) + "m " + two(secs) + "s";
  }
  if (hours > 0) {
    return std::to_string(hours) + "h " + two(minutes) + "m " + two(secs) + "s";
  }
  if (minutes > 0) {
    return std::to_string(minutes) + "m " + two(secs) + "s";
  }
  return std::to_string(secs) + "s";
}

std::string errorMessage(const HttpResult& result) {
  boost::system::error_code ec;
  auto value = boost::json::parse(result.body, ec);
  if (!ec && value.is_object()) {
    if (const auto* err = value.as_object().if_contains("error");
        err != nullptr && err->is_object()) {
      if (const auto* message = err->as_object().if_contains("message");
          message != nullptr && message->is_string()) {
        return std::string(message->as_string());
      }
    }
  }
  return "HTTP " + std::to_string(result.status) + ": " + result.body;
}

std::string urlEncode(const std::string& text) {
  char* escaped = curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
  std::string out = escaped != nullptr ? escaped : "";
  curl_free(escaped);
  return out;
}

std::string field(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    return "-";
  }
  return v->is_string() ? std::string(v->as_string()) : json::serialize(*v);
}

void printRows(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::cout << row[i];
      if (i + 1 < row.size()) {
        std::cout << std::string(widths[i] - row[i].size() + 2, ' ');
      }
    }
    std::cout << '\n';
  }
}

void printJson(const boost::json::value& value) {
  std::cout << json::serialize(value) << '\n';
}

std::optional<std::string> readPassword(bool fromStdin) {
  std::string password;
  if (fromStdin || ::isatty(STDIN_FILENO) == 0) {
    if (!std::getline(std::cin, password) || password.empty()) {
      std::cerr << "aiboxctl: no password on standard input\n";
      return std::nullopt;
    }
    return password;
  }
  termios saved{};
  tcgetattr(STDIN_FILENO, &saved);
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string again;
  std::cerr << "New password: " << std::flush;
  std::getline(std::cin, password);
  std::cerr << "\nAgain: " << std::flush;
  std::getline(std::cin, again);
  std::cerr << '\n';
  tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  if (password != again) {
    std::cerr << "aiboxctl: the passwords differ; nothing changed\n";
    return std::nullopt;
  }
  return password;
}

int agentDown(const Options& options, const std::string& problem) {
  if (options.json) {
    boost::json::object out{
        {"agent", "unreachable"}, {"socket", options.socket.string()}, {"error", problem}};
    std::cout << json::serialize(out) << '\n';
  } else {
    std::cerr << "aiboxctl: " << problem << '\n';
  }
  return kAgentDown;
}

int printExport(const Options& options, const std::string& path) {
  std::string problem;
  auto result = AgentClient(options.socket).request("GET", path, "", problem);
  if (!result) {
    return agentDown(options, problem);
  }
  if (result->status != 200) {
    std::cerr << "aiboxctl: " << errorMessage(*result) << '\n';
    return kFailed;
  }
  std::cout << result->body;
  return kOk;
}

std::optional<std::string> queryString(const std::vector<std::string>& args,
                                       std::initializer_list<std::string_view> allowed,
                                       const char* usageText) {
  std::string query;
  for (std::size_t i = 1; i < args.size(); i += 2) {
    std::string_view option = args[i];
    std::string_view name = option.starts_with("--") ? option.substr(2) : std::string_view();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end() || i + 1 >= args.size()) {
      usage(usageText, "bad option '" + std::string(option) + "'");
      return std::nullopt;
    }
    query += query.empty() ? "?" : "&";
    query += std::string(name) + "=" + urlEncode(args[i + 1]);
  }
  return query;
}

}  // namespace aibox::ctl
