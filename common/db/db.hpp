#pragma once
// SQLite, used the way a power cut cannot hurt: WAL journal, synchronous=NORMAL, foreign keys
// on, a busy timeout, numbered forward-only migrations, and online backups written to a temp
// name and renamed into place.

#include <sqlite3.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace aibox::db {

class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, std::nullptr_t);
  Statement& bindBlob(int index, std::string_view bytes);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }

  // Runs one step; true while a row is available.
  bool step();
  void reset();

  // Columns are 0-based, as in SQLite.
  bool isNull(int column) const;
  std::int64_t integer(int column) const;
  double real(int column) const;
  std::string text(int column) const;
  std::string_view blob(int column) const;  // valid until the next step

 private:
  void check(int rc) const;
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

class Database {
 public:
  // Opens (creating when missing) the database at `path` with the pragmas above.
  static Database open(const std::filesystem::path& path);

  Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  Database& operator=(Database&&) = delete;
  ~Database();

  void exec(std::string_view sql);
  Statement prepare(std::string_view sql) { return Statement(db_, sql); }
  std::int64_t lastInsertId() const { return sqlite3_last_insert_rowid(db_); }

  // Runs `work` inside BEGIN IMMEDIATE ... COMMIT; any exception rolls back and propagates.
  template <class F>
  auto transaction(F&& work) {
    exec("BEGIN IMMEDIATE");
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F, Database&>>) {
        std::forward<F>(work)(*this);
        exec("COMMIT");
      } else {
        auto result = std::forward<F>(work)(*this);
        exec("COMMIT");
        return result;
      }
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  // A consistent copy of the live database at `to` (written to a temp name, synced, renamed),
  // taken with SQLite's online backup API while other connections keep working.
  void backup(const std::filesystem::path& to);

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

struct Migration {
  int version;  // 1, 2, 3, ... with no gaps
  std::string_view name;
  std::string_view sql;
};

// The schema version recorded in the schema_version table (0 for a new database).
int schemaVersion(Database& db);

// Applies every migration newer than the database, each in its own transaction, and returns
// how many ran. A database newer than the newest migration is refused: it was written by a
// newer aibox, and running on it could lose data.
int migrate(Database& db, std::span<const Migration> migrations);

// One connection owned by one thread, so SQLite work (writes above all) never runs on the
// event loop. Work runs in the order it was posted; a handler posts its work and answers its
// call from there (http::Reply may be called from any thread).
class Worker {
 public:
  explicit Worker(Database db) : db_(std::move(db)) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { pool_.join(); }

  // An exception escaping `work` is logged and dropped: it must not end the worker thread.
  void post(std::function<void(Database&)> work);

 private:
  Database db_;
  boost::asio::thread_pool pool_{1};
};

}  // namespace aibox::db
