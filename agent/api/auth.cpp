// /api/v1/auth: login, logout, the caller's session, password change.
#include <boost/json/object.hpp>

#include "agent/api/api.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

using security::Clock;

std::string sessionCookie(const std::string& token) {
  return std::string(security::kSessionCookie) + "=" + token +
         "; Path=/; Secure; HttpOnly; SameSite=Strict";
}

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

struct Account {
  std::int64_t id = 0;
  std::string name;
  std::string hash;
  std::string role;
  bool disabled = false;
  bool mustChange = false;
};

std::optional<Account> loadAccount(db::Database& db, const std::string& column,
                                   const std::string& value) {
  auto stmt = db.prepare(
      "SELECT id, name, password_hash, role, disabled, must_change_password FROM users WHERE " +
      column + " = ?");
  stmt.bind(1, value);
  if (!stmt.step()) {
    return std::nullopt;
  }
  return Account{stmt.integer(0), stmt.text(1),         stmt.text(2),
                 stmt.text(3),    stmt.integer(4) != 0, stmt.integer(5) != 0};
}

std::string_view kindName(http::Identity::Kind kind) {
  switch (kind) {
    case http::Identity::Kind::local:
      return "local";
    case http::Identity::Kind::session:
      return "session";
    case http::Identity::Kind::token:
      return "token";
    case http::Identity::Kind::anonymous:
      break;
  }
  return "anonymous";
}

http::Response lockedOut(std::chrono::seconds wait) {
  auto res =
      http::error(http::Status::too_many_requests, "locked_out",
                  "too many failed logins; try again in " + std::to_string(wait.count()) + " s");
  res.set(boost::beast::http::field::retry_after, std::to_string(wait.count()));
  return res;
}

}  // namespace

std::variant<LoginRequest, json::Problem> parseLogin(std::string_view body) {
  auto parsed = json::parseObject(body);
  if (auto* problem = std::get_if<json::Problem>(&parsed)) {
    return *problem;
  }
  json::Reader reader(std::get<boost::json::object>(parsed));
  auto user = reader.string("username");
  auto password = reader.string("password");
  reader.rejectUnknown();
  if (!reader.ok()) {
    return *reader.problem();
  }
  return LoginRequest{lower(*user), *password};
}

void handleLogin(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                 Services& services) {
  auto request = parseLogin(call->request.body());
  if (auto* problem = std::get_if<json::Problem>(&request)) {
    reply(http::badRequest(*problem));
    return;
  }
  std::string name = std::get<LoginRequest>(request).username;
  std::string password = std::get<LoginRequest>(request).password;
  call->auditDetails["user"] = name;
  auto& security = services.security;
  if (auto wait = security.lockout.blocked(name, call->address, Clock::now())) {
    reply(lockedOut(*wait));
    return;
  }
  services.database.post([call, reply, name, password, &services](db::Database& db) {
    std::optional<Account> account;
    try {
      account = loadAccount(db, "name", name);
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
      return;
    }
    onHashingThread(services, reply, [call, reply, name, password, account, &services] {
      auto& sec = services.security;
      // Unknown users are checked against a dummy hash, so they take as long as known ones.
      bool passwordOk = security::verifyPassword(password, account ? account->hash : sec.dummyHash);
      if (!passwordOk || !account || account->disabled) {
        sec.lockout.failed(name, call->address, Clock::now());
        log::warning("failed login", {{"user", name}, {"source", call->address}});
        reply(http::error(http::Status::unauthorized, "invalid_credentials",
                          "wrong user name or password, or the account is disabled"));
        return;
      }
      sec.lockout.succeeded(name, call->address);
      auto [token, session] = sec.sessions.create(account->id, account->name, account->role,
                                                  account->mustChange, call->address);
      services.database.post([session = session](db::Database& tx) {
        security::storeSession(tx, session);
        tx.prepare(
              "UPDATE users SET last_login_at = strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ?")
            .bind(1, session.userId)
            .step();
      });
      log::info("login", {{"user", account->name}, {"source", call->address}});
      auto res = http::json(http::Status::ok,
                            {{"user", account->name},
                             {"role", account->role},
                             {"must_change_password", account->mustChange},
                             {"csrf_token", session.csrfToken},
                             {"session_id", session.id},
                             {"idle_timeout_seconds", sec.policy.sessionIdle.count()},
                             {"expires_at", isoTime(session.created + sec.policy.sessionMax)}});
      res.set(boost::beast::http::field::set_cookie, sessionCookie(token));
      reply(std::move(res));
    });
  });
}

void handleLogout(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                  Services& services) {
  if (call->identity.kind != http::Identity::Kind::session) {
    reply(http::error(http::Status::bad_request, "no_session",
                      "only a logged-in session can log out; this caller has none"));
    return;
  }
  auto removed = services.security.sessions.revoke(call->identity.sessionId);
  services.database.post([removed](db::Database& db) { security::deleteSessions(db, removed); });
  auto res = http::json(http::Status::ok, {{"status", "logged_out"}});
  res.set(boost::beast::http::field::set_cookie,
          std::string(security::kSessionCookie) +
              "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
  reply(std::move(res));
}

http::Response handleSessionGet(const http::Call& call, Services& services) {
  const auto& who = call.identity;
  boost::json::object body{{"kind", kindName(who.kind)},
                           {"name", who.name},
                           {"role", who.admin ? "admin" : who.role},
                           {"must_change_password", who.mustChangePassword}};
  if (auto session = services.security.sessions.find(who.sessionId)) {
    body["user"] = session->user;
    body["session_id"] = session->id;
    body["csrf_token"] = session->csrfToken;
    body["expires_at"] = isoTime(session->created + services.security.policy.sessionMax);
  }
  return http::json(http::Status::ok, body);
}

void handlePasswordChange(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                          Services& services) {
  if (call->identity.kind != http::Identity::Kind::session) {
    reply(http::error(http::Status::bad_request, "no_session",
                      "log in as the user whose password changes; an admin resets other "
                      "users' passwords with PATCH /api/v1/users/{name}"));
    return;
  }
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  json::Reader reader(*body);
  auto oldPassword = reader.string("old_password");
  auto newPassword = reader.string("new_password");
  reader.rejectUnknown();
  if (!reader.ok()) {
    reply(http::badRequest(*reader.problem()));
    return;
  }
  services.database.post([call, reply, old = *oldPassword, fresh = *newPassword,
                          &services](db::Database& db) {
    std::optional<Account> account;
    try {
      account = loadAccount(db, "id", std::to_string(call->identity.userId));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
      return;
    }
    if (!account) {
      reply(http::error(http::Status::not_found, "not_found", "the user no longer exists"));
      return;
    }
    auto& policy = services.security.policy;
    if (auto problem = security::passwordProblem(account->name, fresh, policy.passwordMinLength)) {
      reply(
          http::badRequest({"invalid_field", "new_password", "field 'new_password' " + *problem}));
      return;
    }
    if (old == fresh) {
      reply(http::badRequest({"invalid_field", "new_password",
                              "field 'new_password' must differ from the old password"}));
      return;
    }
    onHashingThread(services, reply, [call, reply, old, fresh, account, &services] {
      auto& sec = services.security;
      if (!security::verifyPassword(old, account->hash)) {
        sec.lockout.failed(account->name, call->address, Clock::now());
        reply(http::badRequest(
            {"invalid_field", "old_password", "field 'old_password' is not the current password"}));
        return;
      }
      std::string hash = security::hashPassword(fresh, sec.policy.scryptLog2N);
      services.database.post([call, reply, account, hash, &services](db::Database& tx) {
        auto& s = services.security;
        try {
          tx.prepare("UPDATE users SET password_hash = ?, must_change_password = 0 WHERE id = ?")
              .bind(1, hash)
              .bind(2, account->id)
              .step();
          s.sessions.updateUser(account->id, account->role, false);
          security::deleteSessions(tx,
                                   s.sessions.revokeUser(account->id, call->identity.sessionId));
        } catch (const db::Error& e) {
          databaseFailed(reply, e);
          return;
        }
        if (account->name == "admin") {
          std::error_code ignored;
          std::filesystem::remove(s.initialPasswordFile, ignored);
        }
        log::info("password changed", {{"user", account->name}});
        reply(http::json(http::Status::ok, {{"status", "password_changed"}}));
      });
    });
  });
}

void addAuthRoutes(http::Router& router, Services& services) {
  auto bind = [&services](auto handler) {
    return [&services, handler](const std::shared_ptr<const http::Call>& call,
                                const http::Reply& reply) { handler(call, reply, services); };
  };
  router.addAsync(http::Verb::post, "/api/v1/auth/login", http::kPublic, bind(handleLogin));
  router.addAsync(http::Verb::post, "/api/v1/auth/logout", http::kAuthenticated,
                  bind(handleLogout));
  router.add(http::Verb::get, "/api/v1/auth/session", http::kAuthenticated,
             [&services](const http::Call& call) { return handleSessionGet(call, services); });
  router.addAsync(http::Verb::post, "/api/v1/auth/password", http::kAuthenticated,
                  bind(handlePasswordChange));
}

}  // namespace aibox::agent::api
