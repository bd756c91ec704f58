// /api/v1/users: the box's user accounts (permission user:admin).
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "agent/api/api.hpp"
#include "common/http/roles.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

constexpr std::string_view kPermission = "user:admin";

boost::json::object userJson(db::Statement& row) {
  return {{"name", row.text(0)},
          {"role", row.text(1)},
          {"disabled", row.integer(2) != 0},
          {"must_change_password", row.integer(3) != 0},
          {"created_at", row.text(4)},
          {"last_login_at",
           row.isNull(5) ? boost::json::value(nullptr) : boost::json::value(row.text(5))}};
}

constexpr const char* kUserColumns =
    "SELECT name, role, disabled, must_change_password, created_at, last_login_at, id FROM users";

std::optional<boost::json::object> findUser(db::Database& db, const std::string& name,
                                            std::int64_t* id = nullptr) {
  auto row = db.prepare(std::string(kUserColumns) + " WHERE name = ?");
  row.bind(1, name);
  if (!row.step()) {
    return std::nullopt;
  }
  if (id != nullptr) {
    *id = row.integer(6);
  }
  return userJson(row);
}

// Enabled admins other than `exceptId`.
std::int64_t otherAdmins(db::Database& db, std::int64_t exceptId) {
  auto stmt =
      db.prepare("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?");
  stmt.bind(1, exceptId);
  stmt.step();
  return stmt.integer(0);
}

http::Response notFound(const std::string& name) {
  return http::error(http::Status::not_found, "not_found", "no user named '" + name + "'");
}

http::Response lastAdmin() {
  return http::error(http::Status::conflict, "last_admin",
                     "this is the last enabled admin: make another admin first");
}

// Hashes `password` on the hashing pool when there is one, then runs `next(hash)`.
template <class Next>
void hashThen(Services& services, const http::Reply& reply, std::optional<std::string> password,
              Next next) {
  if (!password) {
    next(std::optional<std::string>());
    return;
  }
  onHashingThread(
      services, reply,
      [&services, password = std::move(*password), next = std::move(next)]() mutable {
        next(std::optional(security::hashPassword(password, services.security.policy.scryptLog2N)));
      });
}

void handleUsersGet(const http::Reply& reply, Services& services) {
  services.database.post([reply](db::Database& db) {
    try {
      boost::json::array users;
      auto row = db.prepare(std::string(kUserColumns) + " ORDER BY name");
      while (row.step()) {
        users.push_back(userJson(row));
      }
      reply(http::json(http::Status::ok, {{"users", users}}));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

void handleUserCreate(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                      Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  json::Reader reader(*body);
  auto name = reader.string("name");
  auto role = reader.string("role");
  auto password = reader.string("password", false);
  reader.rejectUnknown();
  if (!reader.ok()) {
    reply(http::badRequest(*reader.problem()));
    return;
  }
  if (!security::validUserName(*name)) {
    reply(http::badRequest({"invalid_field", "name",
                            "field 'name' must be 1-32 characters: a-z, 0-9, '_', '-', '.', "
                            "starting with a letter or '_'"}));
    return;
  }
  if (!http::isRole(*role)) {
    reply(invalidRole());
    return;
  }
  bool generated = !password;
  std::string secret = password ? *password : security::randomPassword(16);
  if (auto problem =
          security::passwordProblem(*name, secret, services.security.policy.passwordMinLength)) {
    reply(http::badRequest({"invalid_field", "password", "field 'password' " + *problem}));
    return;
  }
  hashThen(services, reply, secret,
           [reply, name = *name, role = *role, secret, generated,
            &services](std::optional<std::string> hash) {
             services.database.post([reply, name, role, secret, generated, hash](db::Database& db) {
               try {
                 if (findUser(db, name)) {
                   reply(http::error(http::Status::conflict, "user_exists",
                                     "a user named '" + name + "' exists already"));
                   return;
                 }
                 db.prepare(
                       "INSERT INTO users(name, password_hash, role, must_change_password) VALUES "
                       "(?, ?, ?, 1)")
                     .bind(1, name)
                     .bind(2, *hash)
                     .bind(3, role)
                     .step();
                 auto user = *findUser(db, name);
                 if (generated) {
                   user["password"] =
                       secret;  // shown this once; the user must change it at first login
                 }
                 log::info("user created", {{"user", name}, {"role", role}});
                 reply(http::json(http::Status::created, user));
               } catch (const db::Error& e) {
                 databaseFailed(reply, e);
               }
             });
           });
}

void handleUserPatch(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                     Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  json::Reader reader(*body);
  auto role = reader.string("role", false);
  auto disabled = reader.boolean("disabled", false);
  auto password = reader.string("password", false);
  auto reset = reader.boolean("reset_password", false);
  reader.rejectUnknown();
  if (!reader.ok()) {
    reply(http::badRequest(*reader.problem()));
    return;
  }
  std::string name(call->param("name"));
  if (role && !http::isRole(*role)) {
    reply(invalidRole());
    return;
  }
  // A reset makes a one-time password, returned this once (as POST /api/v1/users does).
  std::optional<std::string> generated;
  if (reset.value_or(false)) {
    if (password) {
      reply(http::badRequest({"invalid_field", "reset_password",
                              "give either 'password' or 'reset_password', not both"}));
      return;
    }
    generated = security::randomPassword(16);
    password = generated;
  } else if (password) {
    if (auto problem = security::passwordProblem(name, *password,
                                                 services.security.policy.passwordMinLength)) {
      reply(http::badRequest({"invalid_field", "password", "field 'password' " + *problem}));
      return;
    }
  }
  hashThen(
      services, reply, password,
      [reply, name, role, disabled, generated, &services](std::optional<std::string> hash) {
        services.database.post([reply, name, role, disabled, generated, hash,
                                &services](db::Database& db) {
          try {
            std::int64_t id = 0;
            auto user = findUser(db, name, &id);
            if (!user) {
              reply(notFound(name));
              return;
            }
            bool wasAdmin =
                user->at("role").as_string() == "admin" && !user->at("disabled").as_bool();
            bool staysAdmin = role.value_or(std::string(user->at("role").as_string())) == "admin" &&
                              !disabled.value_or(user->at("disabled").as_bool());
            if (wasAdmin && !staysAdmin && otherAdmins(db, id) == 0) {
              reply(lastAdmin());
              return;
            }
            db.transaction([&](db::Database& tx) {
              if (role) {
                tx.prepare("UPDATE users SET role = ? WHERE id = ?")
                    .bind(1, *role)
                    .bind(2, id)
                    .step();
              }
              if (disabled) {
                tx.prepare("UPDATE users SET disabled = ? WHERE id = ?")
                    .bind(1, *disabled ? 1 : 0)
                    .bind(2, id)
                    .step();
              }
              if (hash) {
                tx.prepare(
                      "UPDATE users SET password_hash = ?, must_change_password = 1 WHERE id = ?")
                    .bind(1, *hash)
                    .bind(2, id)
                    .step();
              }
            });
            auto& sessions = services.security.sessions;
            if (hash || disabled.value_or(false)) {
              security::deleteSessions(db, sessions.revokeUser(id));
            }
            auto updated = *findUser(db, name);
            sessions.updateUser(id, std::string(updated.at("role").as_string()),
                                updated.at("must_change_password").as_bool());
            log::info("user changed", {{"user", name}});
            if (generated) {
              updated["password"] = *generated;  // shown this once
            }
            reply(http::json(http::Status::ok, updated));
          } catch (const db::Error& e) {
            databaseFailed(reply, e);
          }
        });
      });
}

void handleUserDelete(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                      Services& services) {
  std::string name(call->param("name"));
  services.database.post([reply, name, &services](db::Database& db) {
    try {
      std::int64_t id = 0;
      auto user = findUser(db, name, &id);
      if (!user) {
        reply(notFound(name));
        return;
      }
      if (user->at("role").as_string() == "admin" && otherAdmins(db, id) == 0) {
        reply(lastAdmin());
        return;
      }
      db.prepare("DELETE FROM users WHERE id = ?").bind(1, id).step();  // sessions cascade
      services.security.sessions.revokeUser(id);
      log::info("user deleted", {{"user", name}});
      reply(http::json(http::Status::ok, {{"status", "deleted"}, {"name", name}}));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

}  // namespace

void addUserRoutes(http::Router& router, Services& services) {
  router.addAsync(http::Verb::get, "/api/v1/users", kPermission,
                  [&services](const std::shared_ptr<const http::Call>& /*call*/,
                              const http::Reply& reply) { handleUsersGet(reply, services); });
  router.addAsync(
      http::Verb::post, "/api/v1/users", kPermission,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleUserCreate(call, reply, services);
      });
  router.addAsync(
      http::Verb::patch, "/api/v1/users/{name}", kPermission,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleUserPatch(call, reply, services);
      });
  router.addAsync(
      http::Verb::delete_, "/api/v1/users/{name}", kPermission,
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleUserDelete(call, reply, services);
      });
}

}  // namespace aibox::agent::api
