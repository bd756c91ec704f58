#pragma once
// The audit log: every mutating request, login, logout and failed login, recorded by the
// router (not by each handler). Append-only and tamper-evident: each row carries the SHA-256
// of its own canonical content, which includes the previous row's hash. Rows past the
// retention go to compressed monthly archive files, and the chain is anchored across the cut.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/db/db.hpp"
#include "common/http/http.hpp"

namespace aibox::agent::audit {

struct Entry {
  std::int64_t id = 0;
  std::string time;  // UTC ISO 8601 with milliseconds
  std::string actor;
  std::string source;
  std::string action;   // "POST /api/v1/users/{name}"
  std::string target;   // "/api/v1/users/olga"
  int result = 0;       // HTTP status
  std::string details;  // a JSON object
  std::string prevHash;
  std::string hash;
};

extern const char* const kSchema;
inline constexpr std::string_view kGenesis =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The hash of an entry: SHA-256 over the JSON array of all its fields but `hash`.
std::string entryHash(const Entry& e);
boost::json::object toJson(const Entry& e);

// Appends `e` (id, prev_hash and hash are filled in) inside the caller's transaction.
void append(db::Database& db, Entry& e);

// The router's auditor: records each audited call on the database worker, then sends the
// response.
class Log final : public http::Auditor {
 public:
  explicit Log(db::Worker& database) : database_(database) {}
  void record(const http::Call& call, http::Response response,
              const http::Reply& send) const override;

 private:
  db::Worker& database_;
};

struct Filter {
  std::optional<std::string> actor;
  std::optional<std::string> action;   // substring of the action
  std::optional<std::string> since;    // ISO 8601, inclusive
  std::optional<std::string> until;    // ISO 8601, exclusive
  std::optional<std::int64_t> before;  // id cursor for paging newest first
  std::optional<std::int64_t> after;   // id cursor for paging oldest first
  std::int64_t limit = 100;
  bool oldestFirst = false;
};
std::vector<Entry> query(db::Database& db, const Filter& filter);

struct Problem {
  std::string where;  // "row 42" or "archive audit-2026-08.jsonl.gz line 7"
  std::string what;
};
struct Verification {
  std::int64_t rows = 0;
  int archives = 0;
  std::vector<Problem> problems;
};
// Checks the archives in `archiveDir` and the rows in the database as one chain: a modified,
// inserted or deleted row (or archive line) breaks it and is reported.
Verification verify(db::Database& db, const std::filesystem::path& archiveDir);

// Moves rows older than `cutoff` (ISO 8601) into archiveDir/audit-YYYY-MM.jsonl.gz (gzip
// members appended; each file written to a temp name and renamed) and records the last
// archived row as the anchor of the remaining chain. Returns the number of rows archived.
std::int64_t archive(db::Database& db, const std::filesystem::path& archiveDir,
                     const std::string& cutoff);

// "2026-11-22T22:48:46.123Z"
std::string now();
std::string timeString(std::chrono::system_clock::time_point t);

}  // namespace aibox::agent::audit
