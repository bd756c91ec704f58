// aiboxctl users ... and aiboxctl sessions ...: accounts and login sessions (docs/cli.md).
#include <curl/curl.h>

#include <boost/json/object.hpp>
#include <iostream>

#include "agent/ctl/ctl.hpp"
#include "common/json/json.hpp"

namespace aibox::ctl {
namespace {

constexpr const char* kUsersUsage =
    "Usage: aiboxctl users COMMAND\n\n"
    "  ls                                  list the accounts\n"
    "  add NAME --role ROLE [--password-stdin]\n"
    "                                      create an account; without --password-stdin a one-time\n"
    "                                      password is made and shown once\n"
    "  rm NAME                             delete an account and end its sessions\n"
    "  passwd NAME [--password-stdin]      set a new password (asked twice on a terminal); the\n"
    "                                      user must change it at the next login\n"
    "  role NAME ROLE                      change the role: admin, operator, auditor or viewer\n"
    "  disable NAME | enable NAME          lock an account out (its sessions end) or let it in\n"
    "  bootstrap-info                      where the first admin's one-time password is (works\n"
    "                                      without the agent)\n";

constexpr const char* kSessionsUsage =
    "Usage: aiboxctl sessions COMMAND\n\n"
    "  ls            list the live login sessions\n"
    "  revoke ID     end a session\n";

// A user name or session id as one URL path segment.
std::string segment(const std::string& text) {
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

int usage(const char* text, const std::string& problem = "") {
  if (!problem.empty()) {
    std::cerr << "aiboxctl: " << problem << "\n\n" << text;
    return kUsage;
  }
  std::cout << text;
  return kOk;
}

int bootstrapInfo(const Options& options) {
  auto file = options.root / "var/lib/aibox/initial-admin-password";
  bool pending = std::filesystem::exists(file);
  if (options.json) {
    printJson(boost::json::object{{"pending", pending}, {"file", file.string()}});
    return kOk;
  }
  if (pending) {
    std::cout << "The first admin's one-time password is in " << file.string()
              << " (readable by root only).\n"
                 "Log in as 'admin' with it; you must then choose a new password, and the file "
                 "is removed.\n";
  } else {
    std::cout << "No one-time password is pending: the admin has chosen a password.\n"
                 "To reset a lost password: aiboxctl users passwd admin\n";
  }
  return kOk;
}

}  // namespace

int usersCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    return usage(kUsersUsage, args.empty() ? "users needs a command" : "");
  }
  const std::string& command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  bool passwordStdin = std::erase(rest, "--password-stdin") > 0;
  std::string role;
  if (auto it = std::find(rest.begin(), rest.end(), "--role"); it != rest.end()) {
    if (it + 1 == rest.end()) {
      return usage(kUsersUsage, "--role needs a value");
    }
    role = *(it + 1);
    rest.erase(it, it + 2);
  }
  auto expect = [&rest](std::size_t n) { return rest.size() == n; };

  if (command == "ls" && expect(0)) {
    return run(options, "GET", "/api/v1/users", {}, [](const boost::json::object& answer) {
      std::vector<std::vector<std::string>> rows{{"NAME", "ROLE", "STATE", "LAST LOGIN"}};
      for (const auto& u : answer.at("users").as_array()) {
        const auto& user = u.as_object();
        std::string state = user.at("disabled").as_bool() ? "disabled" : "enabled";
        if (user.at("must_change_password").as_bool()) {
          state += ", must change password";
        }
        rows.push_back(
            {field(user, "name"), field(user, "role"), state, field(user, "last_login_at")});
      }
      printRows(rows);
    });
  }
  if (command == "add" && expect(1) && !role.empty()) {
    boost::json::object body{{"name", rest[0]}, {"role", role}};
    if (passwordStdin) {
      auto password = readPassword(true);
      if (!password) {
        return kUsage;
      }
      body["password"] = *password;
    }
    return run(options, "POST", "/api/v1/users", body, [](const boost::json::object& user) {
      std::cout << "created user " << field(user, "name") << " (" << field(user, "role") << ")\n";
      if (user.contains("password")) {
        std::cout << "one-time password: " << field(user, "password")
                  << "\n(shown this once; the user must change it at the first login)\n";
      }
    });
  }
  if (command == "rm" && expect(1)) {
    return run(
        options, "DELETE", "/api/v1/users/" + segment(rest[0]), {},
        [&rest](const boost::json::object&) { std::cout << "deleted user " << rest[0] << '\n'; });
  }
  if (command == "passwd" && expect(1)) {
    auto password = readPassword(passwordStdin);
    if (!password) {
      return kUsage;
    }
    return run(options, "PATCH", "/api/v1/users/" + segment(rest[0]), {{"password", *password}},
               [&rest](const boost::json::object&) {
                 std::cout << "password of " << rest[0]
                           << " set; they must change it at the next login\n";
               });
  }
  if (command == "role" && expect(2)) {
    return run(options, "PATCH", "/api/v1/users/" + segment(rest[0]), {{"role", rest[1]}},
               [](const boost::json::object& user) {
                 std::cout << field(user, "name") << " is now " << field(user, "role") << '\n';
               });
  }
  if ((command == "disable" || command == "enable") && expect(1)) {
    bool disable = command == "disable";
    return run(options, "PATCH", "/api/v1/users/" + segment(rest[0]), {{"disabled", disable}},
               [disable](const boost::json::object& user) {
                 std::cout << field(user, "name") << (disable ? " disabled" : " enabled") << '\n';
               });
  }
  if (command == "bootstrap-info" && expect(0)) {
    return bootstrapInfo(options);
  }
  return usage(kUsersUsage, "bad arguments for 'users " + command + "'");
}

int sessionsCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    return usage(kSessionsUsage, args.empty() ? "sessions needs a command" : "");
  }
  if (args[0] == "ls" && args.size() == 1) {
    return run(options, "GET", "/api/v1/sessions", {}, [](const boost::json::object& answer) {
      std::vector<std::vector<std::string>> rows{
          {"ID", "USER", "ROLE", "SOURCE", "CREATED", "LAST SEEN"}};
      for (const auto& s : answer.at("sessions").as_array()) {
        const auto& session = s.as_object();
        rows.push_back({field(session, "id"), field(session, "user"), field(session, "role"),
                        field(session, "source"), field(session, "created_at"),
                        field(session, "last_seen_at")});
      }
      printRows(rows);
    });
  }
  if (args[0] == "revoke" && args.size() == 2) {
    return run(
        options, "DELETE", "/api/v1/sessions/" + segment(args[1]), {},
        [&args](const boost::json::object&) { std::cout << "session " << args[1] << " ended\n"; });
  }
  return usage(kSessionsUsage, "bad arguments for 'sessions " + args[0] + "'");
}

}  // namespace aibox::ctl
