// aiboxctl users ... and aiboxctl sessions ...: accounts and login sessions (docs/cli.md).
#include <boost/json/object.hpp>
#include <iostream>
#include <map>

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
        options, "DELETE", "/api/v1/users/" + urlEncode(rest[0]), {},
        [&rest](const boost::json::object&) { std::cout << "deleted user " << rest[0] << '\n'; });
  }
  if (command == "passwd" && expect(1)) {
    auto password = readPassword(passwordStdin);
    if (!password) {
      return kUsage;
    }
    return run(options, "PATCH", "/api/v1/users/" + urlEncode(rest[0]), {{"password", *password}},
               [&rest](const boost::json::object&) {
                 std::cout << "password of " << rest[0]
                           << " set; they must change it at the next login\n";
               });
  }
  if (command == "role" && expect(2)) {
    return run(options, "PATCH", "/api/v1/users/" + urlEncode(rest[0]), {{"role", rest[1]}},
               [](const boost::json::object& user) {
                 std::cout << field(user, "name") << " is now " << field(user, "role") << '\n';
               });
  }
  if ((command == "disable" || command == "enable") && expect(1)) {
    bool disable = command == "disable";
    return run(options, "PATCH", "/api/v1/users/" + urlEncode(rest[0]), {{"disabled", disable}},
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
        options, "DELETE", "/api/v1/sessions/" + urlEncode(args[1]), {},
        [&args](const boost::json::object&) { std::cout << "session " << args[1] << " ended\n"; });
  }
  return usage(kSessionsUsage, "bad arguments for 'sessions " + args[0] + "'");
}

}  // namespace aibox::ctl

namespace aibox::ctl {
namespace {

constexpr const char* kTokensUsage =
    "Usage: aiboxctl tokens COMMAND\n\n"
    "  ls                                        list the admin API tokens\n"
    "  add NAME --role ROLE [--expires-in-days N]\n"
    "                                            make a token for automation; it is shown once\n"
    "  revoke ID                                 revoke a token\n";

}  // namespace

int tokensCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    return usage(kTokensUsage, args.empty() ? "tokens needs a command" : "");
  }
  const std::string& command = args[0];
  if (command == "ls" && args.size() == 1) {
    return run(options, "GET", "/api/v1/tokens", {}, [](const boost::json::object& answer) {
      std::vector<std::vector<std::string>> rows{
          {"ID", "NAME", "ROLE", "CREATED BY", "EXPIRES", "LAST USED"}};
      for (const auto& t : answer.at("tokens").as_array()) {
        const auto& token = t.as_object();
        rows.push_back({field(token, "id"), field(token, "name"), field(token, "role"),
                        field(token, "created_by"), field(token, "expires_at"),
                        field(token, "last_used_at")});
      }
      printRows(rows);
    });
  }
  if (command == "add" && args.size() >= 2) {
    boost::json::object body{{"name", args[1]}};
    for (std::size_t i = 2; i < args.size(); i += 2) {
      if (i + 1 >= args.size()) {
        return usage(kTokensUsage, args[i] + " needs a value");
      }
      if (args[i] == "--role") {
        body["role"] = args[i + 1];
      } else if (args[i] == "--expires-in-days") {
        try {
          body["expires_in_days"] = std::stoll(args[i + 1]);
        } catch (const std::exception&) {
          return usage(kTokensUsage, "--expires-in-days needs a number");
        }
      } else {
        return usage(kTokensUsage, "unknown option " + args[i]);
      }
    }
    if (!body.contains("role")) {
      return usage(kTokensUsage, "tokens add needs --role");
    }
    return run(options, "POST", "/api/v1/tokens", body, [](const boost::json::object& token) {
      std::cout << "token " << field(token, "id") << " (" << field(token, "role") << "):\n"
                << field(token, "token")
                << "\n(shown this once; send it as 'Authorization: Bearer <token>')\n";
    });
  }
  if (command == "revoke" && args.size() == 2) {
    return run(
        options, "DELETE", "/api/v1/tokens/" + urlEncode(args[1]), {},
        [&args](const boost::json::object&) { std::cout << "token " << args[1] << " revoked\n"; });
  }
  return usage(kTokensUsage, "bad arguments for 'tokens " + command + "'");
}

}  // namespace aibox::ctl

namespace aibox::ctl {
namespace {

constexpr const char* kKeysUsage =
    "Usage: aiboxctl keys COMMAND\n\n"
    "  ls                                   list the inference API keys\n"
    "  add NAME [--models M1,M2] [--rpm N] [--tpm N] [--concurrent N] [--owner WHO]\n"
    "           [--expires-in-days N]\n"
    "                                       make a key for an application; it is shown once.\n"
    "                                       No --models: every model. --rpm/--tpm: requests\n"
    "                                       and tokens per minute; --concurrent: requests at once\n"
    "  rm ID                                delete a key\n";

std::string join(const boost::json::array& list) {
  std::string out;
  for (const auto& item : list) {
    out += out.empty() ? "" : ",";
    out += item.is_string() ? std::string(item.as_string()) : "?";
  }
  return out.empty() ? "(all)" : out;
}

}  // namespace

int keysCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    return usage(kKeysUsage, args.empty() ? "keys needs a command" : "");
  }
  const std::string& command = args[0];
  if (command == "ls" && args.size() == 1) {
    return run(options, "GET", "/api/v1/keys", {}, [](const boost::json::object& answer) {
      std::vector<std::vector<std::string>> rows{
          {"ID", "NAME", "OWNER", "MODELS", "RPM", "TPM", "AT ONCE", "EXPIRES", "LAST USED"}};
      for (const auto& k : answer.at("keys").as_array()) {
        const auto& key = k.as_object();
        rows.push_back({field(key, "id"), field(key, "name"), field(key, "owner"),
                        join(key.at("models").as_array()), field(key, "requests_per_minute"),
                        field(key, "tokens_per_minute"), field(key, "max_concurrent"),
                        field(key, "expires_at"), field(key, "last_used_at")});
      }
      printRows(rows);
    });
  }
  if (command == "add" && args.size() >= 2) {
    boost::json::object body{{"name", args[1]}};
    for (std::size_t i = 2; i < args.size(); i += 2) {
      if (i + 1 >= args.size()) {
        return usage(kKeysUsage, args[i] + " needs a value");
      }
      const std::string& value = args[i + 1];
      auto number = [&value]() -> std::optional<std::int64_t> {
        try {
          return std::stoll(value);
        } catch (const std::exception&) {
          return std::nullopt;
        }
      };
      static const std::map<std::string, std::string> kNumbers{
          {"--rpm", "requests_per_minute"},
          {"--tpm", "tokens_per_minute"},
          {"--concurrent", "max_concurrent"},
          {"--expires-in-days", "expires_in_days"}};
      if (auto it = kNumbers.find(args[i]); it != kNumbers.end()) {
        auto n = number();
        if (!n) {
          return usage(kKeysUsage, args[i] + " needs a number");
        }
        body[it->second] = *n;
      } else if (args[i] == "--owner") {
        body["owner"] = value;
      } else if (args[i] == "--models") {
        boost::json::array models;
        std::size_t start = 0;
        while (start <= value.size()) {
          auto end = value.find(',', start);
          auto model =
              value.substr(start, end == std::string::npos ? std::string::npos : end - start);
          if (!model.empty()) {
            models.emplace_back(model);
          }
          if (end == std::string::npos) {
            break;
          }
          start = end + 1;
        }
        body["models"] = models;
      } else {
        return usage(kKeysUsage, "unknown option " + args[i]);
      }
    }
    return run(options, "POST", "/api/v1/keys", body, [](const boost::json::object& key) {
      std::cout << "key " << field(key, "id") << " for " << join(key.at("models").as_array())
                << ":\n"
                << field(key, "key")
                << "\n(shown this once; applications send it as 'Authorization: Bearer <key>')\n";
    });
  }
  if (command == "rm" && args.size() == 2) {
    return run(
        options, "DELETE", "/api/v1/keys/" + urlEncode(args[1]), {},
        [&args](const boost::json::object&) { std::cout << "key " << args[1] << " deleted\n"; });
  }
  return usage(kKeysUsage, "bad arguments for 'keys " + command + "'");
}

}  // namespace aibox::ctl
