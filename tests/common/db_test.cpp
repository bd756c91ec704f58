#include "common/db/db.hpp"

#include <gtest/gtest.h>

#include <array>
#include <future>
#include <thread>

#include "tests/support/support.hpp"

namespace aibox::db {
namespace {

constexpr std::array kV1{
    Migration{1, "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"},
};
constexpr std::array kV2{
    Migration{1, "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"},
    Migration{2, "note tags",
              "ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'none';"
              "CREATE TABLE links (note INTEGER NOT NULL REFERENCES notes(id))"},
};
constexpr std::array kBroken{
    Migration{1, "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"},
    Migration{2, "half", "CREATE TABLE half (x INTEGER); THIS IS NOT SQL"},
};

std::int64_t count(Database& db, const char* sql) {
  auto stmt = db.prepare(sql);
  stmt.step();
  return stmt.integer(0);
}

class DbTest : public ::testing::Test {
 protected:
  std::filesystem::path path() const { return dir.path() / "aibox.db"; }
  test::TempDir dir;
};

TEST_F(DbTest, OpensWithWalAndForeignKeys) {
  auto db = Database::open(path());
  auto mode = db.prepare("PRAGMA journal_mode");
  mode.step();
  EXPECT_EQ(mode.text(0), "wal");
  EXPECT_EQ(count(db, "PRAGMA foreign_keys"), 1);
}

TEST_F(DbTest, MigratesAnOldSchemaKeepingData) {
  {
    auto db = Database::open(path());
    EXPECT_EQ(migrate(db, kV1), 1);
    db.prepare("INSERT INTO notes(text) VALUES (?)").bind(1, "kept").step();
  }
  auto db = Database::open(path());
  EXPECT_EQ(schemaVersion(db), 1);
  EXPECT_EQ(migrate(db, kV2), 1);
  EXPECT_EQ(schemaVersion(db), 2);
  auto stmt = db.prepare("SELECT text, tag FROM notes");
  ASSERT_TRUE(stmt.step());
  EXPECT_EQ(stmt.text(0), "kept");
  EXPECT_EQ(stmt.text(1), "none");
  EXPECT_EQ(migrate(db, kV2), 0);  // idempotent
  EXPECT_THROW(db.prepare("INSERT INTO links(note) VALUES (99)").step(),
               Error);  // foreign keys enforced
}

TEST_F(DbTest, FailedMigrationRollsBackAndSaysWhere) {
  auto db = Database::open(path());
  try {
    migrate(db, kBroken);
    FAIL() << "a broken migration must throw";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("migration 2 (half) failed, database left at version 1"),
              std::string::npos)
        << message;
  }
  EXPECT_EQ(schemaVersion(db), 1);
  EXPECT_EQ(count(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'"), 0);
}

TEST_F(DbTest, NewerDatabaseIsRefused) {
  {
    auto db = Database::open(path());
    migrate(db, kV2);
  }
  auto db = Database::open(path());
  try {
    migrate(db, kV1);
    FAIL() << "a newer schema must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 2 is newer than this aibox supports (1)"),
              std::string::npos);
  }
}

TEST_F(DbTest, TransactionRollsBackOnException) {
  auto db = Database::open(path());
  migrate(db, kV1);
  EXPECT_THROW(db.transaction([](Database& tx) {
    tx.prepare("INSERT INTO notes(text) VALUES ('lost')").step();
    throw std::runtime_error("abort");
  }),
               std::runtime_error);
  EXPECT_EQ(count(db, "SELECT COUNT(*) FROM notes"), 0);
  EXPECT_EQ(db.transaction([](Database& tx) {
    tx.prepare("INSERT INTO notes(text) VALUES ('kept')").step();
    return tx.lastInsertId();
  }),
            1);
}

TEST_F(DbTest, BackupIsACompleteReadableCopy) {
  auto db = Database::open(path());
  migrate(db, kV1);
  for (int i = 0; i < 100; ++i) {
    db.prepare("INSERT INTO notes(text) VALUES (?)").bind(1, "note " + std::to_string(i)).step();
  }
  auto copy = dir.path() / "backup.db";
  db.backup(copy);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "backup.db.partial"));
  auto restored = Database::open(copy);
  EXPECT_EQ(count(restored, "SELECT COUNT(*) FROM notes"), 100);
  EXPECT_EQ(schemaVersion(restored), 1);
}

TEST_F(DbTest, WorkerRunsWorkOffTheCallingThread) {
  auto db = Database::open(path());
  migrate(db, kV1);
  Worker worker(std::move(db));
  std::promise<std::pair<std::thread::id, std::int64_t>> done;
  worker.post([&done](Database& d) {
    d.prepare("INSERT INTO notes(text) VALUES ('from worker')").step();
    done.set_value({std::this_thread::get_id(), count(d, "SELECT COUNT(*) FROM notes")});
  });
  worker.post([](Database&) { throw Error(1, "logged, not fatal"); });
  auto [thread, rows] = done.get_future().get();
  EXPECT_NE(thread, std::this_thread::get_id());
  EXPECT_EQ(rows, 1);
}

}  // namespace
}  // namespace aibox::db
