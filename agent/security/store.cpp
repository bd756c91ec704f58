#include <sys/stat.h>

#include <boost/asio/post.hpp>

#include "agent/security/security.hpp"
#include "common/fs/fs.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::security {

const char* const kSchema =
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " password_hash TEXT NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'viewer')),"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " must_change_password INTEGER NOT NULL DEFAULT 0,"
    " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),"
    " last_login_at TEXT);"
    "CREATE TABLE sessions ("
    " id TEXT PRIMARY KEY,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " csrf_token TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " created_at INTEGER NOT NULL)";

const char* const kTokenSchema =
    "CREATE TABLE api_tokens ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'viewer')),"
    " secret_hash TEXT NOT NULL,"
    " created_by TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER,"
    " last_used_at INTEGER)";

std::int64_t unixSeconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

Clock::time_point fromUnix(std::int64_t seconds) {
  return Clock::time_point(std::chrono::seconds(seconds));
}

namespace {

void bootstrapAdmin(db::Database& db, Security& security) {
  auto count = db.prepare("SELECT COUNT(*) FROM users");
  count.step();
  if (count.integer(0) > 0) {
    return;
  }
  std::string password = randomPassword(20);
  // The file first: a crash before the insert leaves a file and no user, and the next start
  // writes both again; never a user whose password nobody can read.
  fs::writeFileAtomic(security.initialPasswordFile, password + "\n", 0600);
  db.prepare(
        "INSERT INTO users(name, password_hash, role, must_change_password) "
        "VALUES ('admin', ?, 'admin', 1)")
      .bind(1, hashPassword(password, security.policy.scryptLog2N))
      .step();
  log::warning("created user 'admin' with a one-time password; log in and change it",
               {{"password_file", security.initialPasswordFile.string()}});
}

void loadSessions(db::Database& db, Security& security) {
  auto now = Clock::now();
  db.prepare(
        "DELETE FROM sessions WHERE created_at < ? "
        "OR user_id IN (SELECT id FROM users WHERE disabled = 1)")
      .bind(1, unixSeconds(now - security.policy.sessionMax))
      .step();
  auto stmt = db.prepare(
      "SELECT s.id, s.token_hash, s.user_id, u.name, u.role, u.must_change_password, "
      "s.csrf_token, s.source, s.created_at FROM sessions s JOIN users u ON u.id = s.user_id");
  while (stmt.step()) {
    Session s;
    s.id = stmt.text(0);
    s.tokenHash = stmt.text(1);
    s.userId = stmt.integer(2);
    s.user = stmt.text(3);
    s.role = stmt.text(4);
    s.mustChangePassword = stmt.integer(5) != 0;
    s.csrfToken = stmt.text(6);
    s.source = stmt.text(7);
    s.created = fromUnix(stmt.integer(8));
    s.lastSeen = now;  // idle time is not persisted: a restart counts as activity
    security.sessions.restore(std::move(s));
  }
}

void loadTokens(db::Database& db, Security& security) {
  auto stmt = db.prepare(
      "SELECT id, name, role, secret_hash, created_by, created_at, expires_at, last_used_at "
      "FROM api_tokens");
  while (stmt.step()) {
    ApiToken t;
    t.id = stmt.text(0);
    t.name = stmt.text(1);
    t.role = stmt.text(2);
    t.secretHash = stmt.text(3);
    t.createdBy = stmt.text(4);
    t.created = fromUnix(stmt.integer(5));
    if (!stmt.isNull(6)) {
      t.expires = fromUnix(stmt.integer(6));
    }
    if (!stmt.isNull(7)) {
      t.lastUsed = fromUnix(stmt.integer(7));
    }
    security.tokens.restore(std::move(t));
  }
}

}  // namespace

void storeToken(db::Database& db, const ApiToken& token) {
  auto stmt = db.prepare(
      "INSERT INTO api_tokens(id, name, role, secret_hash, created_by, created_at, expires_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  stmt.bind(1, token.id)
      .bind(2, token.name)
      .bind(3, token.role)
      .bind(4, token.secretHash)
      .bind(5, token.createdBy)
      .bind(6, unixSeconds(token.created));
  if (token.expires) {
    stmt.bind(7, unixSeconds(*token.expires));
  } else {
    stmt.bind(7, nullptr);
  }
  stmt.step();
}

void deleteToken(db::Database& db, const std::string& id) {
  db.prepare("DELETE FROM api_tokens WHERE id = ?").bind(1, id).step();
}

void touchToken(db::Database& db, const std::string& id, Clock::time_point when) {
  db.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
      .bind(1, unixSeconds(when))
      .bind(2, id)
      .step();
}

void prepare(db::Database& db, Security& security) {
  // Made on the hashing thread, the only reader, before any login queued behind it: keeps a
  // full-cost hash off the start-up path.
  boost::asio::post(security.hashing, [&security] {
    security.dummyHash = hashPassword(randomToken(16), security.policy.scryptLog2N);
  });
  db.transaction([&security](db::Database& tx) {
    bootstrapAdmin(tx, security);
    loadSessions(tx, security);
    loadTokens(tx, security);
  });
}

void storeSession(db::Database& db, const Session& session) {
  db.prepare(
        "INSERT INTO sessions(id, token_hash, user_id, csrf_token, source, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)")
      .bind(1, session.id)
      .bind(2, session.tokenHash)
      .bind(3, session.userId)
      .bind(4, session.csrfToken)
      .bind(5, session.source)
      .bind(6, unixSeconds(session.created))
      .step();
}

void deleteSessions(db::Database& db, const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    db.prepare("DELETE FROM sessions WHERE id = ?").bind(1, id).step();
  }
}

}  // namespace aibox::agent::security
