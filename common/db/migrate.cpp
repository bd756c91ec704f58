#include "common/db/db.hpp"

namespace aibox::db {

int schemaVersion(Database& db) {
  db.exec(
      "CREATE TABLE IF NOT EXISTS schema_version ("
      " version INTEGER PRIMARY KEY,"
      " name TEXT NOT NULL,"
      " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')))");
  auto stmt = db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  stmt.step();
  return static_cast<int>(stmt.integer(0));
}

int migrate(Database& db, std::span<const Migration> migrations) {
  int current = schemaVersion(db);
  int newest = 0;
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      throw Error(SQLITE_MISUSE, "migration list is not numbered 1, 2, 3, ... without gaps");
    }
    newest = migrations[i].version;
  }
  if (current > newest) {
    throw Error(SQLITE_MISMATCH, "database schema version " + std::to_string(current) +
                                     " is newer than this aibox supports (" +
                                     std::to_string(newest) +
                                     "): install the newer aibox again or restore a backup");
  }
  int applied = 0;
  for (const auto& m : migrations) {
    if (m.version <= current) {
      continue;
    }
    try {
      db.transaction([&m](Database& tx) {
        tx.exec(m.sql);
        tx.prepare("INSERT INTO schema_version(version, name) VALUES (?, ?)")
            .bind(1, m.version)
            .bind(2, m.name)
            .step();
      });
    } catch (const Error& e) {
      throw Error(e.code(), "migration " + std::to_string(m.version) + " (" + std::string(m.name) +
                                ") failed, database left at version " +
                                std::to_string(current + applied) + ": " + e.what());
    }
    ++applied;
  }
  return applied;
}

}  // namespace aibox::db
