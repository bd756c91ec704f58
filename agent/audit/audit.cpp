#include "agent/audit/audit.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>

#include "agent/security/security.hpp"
#include "common/fs/fs.hpp"
#include "common/json/json.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::audit {

const char* const kSchema =
    "CREATE TABLE audit_log ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time TEXT NOT NULL,"
    " actor TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " result INTEGER NOT NULL,"
    " details TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL,"
    " hash TEXT NOT NULL);"
    "CREATE INDEX audit_log_time ON audit_log(time);"
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TABLE audit_anchor ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " last_id INTEGER NOT NULL,"
    " last_hash TEXT NOT NULL)";

namespace {

constexpr const char* kColumns =
    "SELECT id, time, actor, source, action, target, result, details, prev_hash, hash "
    "FROM audit_log";

Entry readEntry(const db::Statement& row) {
  return Entry{row.integer(0),
               row.text(1),
               row.text(2),
               row.text(3),
               row.text(4),
               row.text(5),
               static_cast<int>(row.integer(6)),
               row.text(7),
               row.text(8),
               row.text(9)};
}

std::optional<Entry> fromJson(const std::string& line) {
  boost::system::error_code ec;
  auto value = boost::json::parse(line, ec);
  if (ec || !value.is_object()) {
    return std::nullopt;
  }
  const auto& o = value.as_object();
  try {
    Entry e;
    e.id = o.at("id").as_int64();
    e.time = o.at("time").as_string();
    e.actor = o.at("actor").as_string();
    e.source = o.at("source").as_string();
    e.action = o.at("action").as_string();
    e.target = o.at("target").as_string();
    e.result = static_cast<int>(o.at("result").as_int64());
    e.details = json::serialize(o.at("details"));
    e.prevHash = o.at("prev_hash").as_string();
    e.hash = o.at("hash").as_string();
    return e;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string gzipMember(const std::string& data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("zlib: deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    throw std::runtime_error("zlib: deflate failed");
  }
  out.resize(zs.total_out);
  return out;
}

// All members of a gzip file, concatenated.
std::string gunzip(const std::string& data) {
  std::string out;
  std::size_t offset = 0;
  while (offset < data.size()) {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 32) != Z_OK) {
      throw std::runtime_error("zlib: inflateInit2 failed");
    }
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + offset));
    zs.avail_in = static_cast<uInt>(data.size() - offset);
    std::array<char, 16384> buffer{};
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      zs.next_out = reinterpret_cast<Bytef*>(buffer.data());
      zs.avail_out = buffer.size();
      rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END) {
        inflateEnd(&zs);
        throw std::runtime_error("corrupt gzip data");
      }
      out.append(buffer.data(), buffer.size() - zs.avail_out);
    }
    offset += zs.total_in;
    inflateEnd(&zs);
  }
  return out;
}

std::string readBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

std::vector<std::filesystem::path> archiveFiles(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.starts_with("audit-") && name.ends_with(".jsonl.gz")) {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Anchor {
  std::int64_t lastId = 0;
  std::string lastHash{kGenesis};
};

std::optional<Anchor> readAnchor(db::Database& db) {
  auto stmt = db.prepare("SELECT last_id, last_hash FROM audit_anchor WHERE id = 1");
  if (!stmt.step()) {
    return std::nullopt;
  }
  return Anchor{stmt.integer(0), stmt.text(1)};
}

// Walks one chain over archive lines and rows, reporting breaks.
class ChainCheck {
 public:
  void check(const Entry& e, const std::string& where, Verification& v) {
    if (e.id != nextId_) {
      v.problems.push_back(
          {where, e.id > nextId_ ? "rows " + std::to_string(nextId_) + " to " +
                                       std::to_string(e.id - 1) + " are missing (deleted)"
                                 : "id " + std::to_string(e.id) + " is out of order (inserted)"});
    } else if (e.prevHash != prevHash_) {
      v.problems.push_back(
          {where, "does not follow the row before it (a row was inserted or replaced)"});
    }
    if (entryHash(e) != e.hash) {
      v.problems.push_back({where, "its content does not match its hash (modified)"});
    }
    nextId_ = e.id + 1;
    prevHash_ = e.hash;
  }
  void resume(const Anchor& anchor) {
    nextId_ = anchor.lastId + 1;
    prevHash_ = anchor.lastHash;
  }
  std::int64_t lastId() const { return nextId_ - 1; }
  const std::string& lastHash() const { return prevHash_; }

 private:
  std::int64_t nextId_ = 1;
  std::string prevHash_{kGenesis};
};

}  // namespace

std::string now() {
  return timeString(std::chrono::system_clock::now());
}

std::string timeString(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  std::array<char, 32> text{};
  std::size_t n = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  return std::string(text.data(), n) + "." + std::to_string(1000 + millis).substr(1) + "Z";
}

std::string entryHash(const Entry& e) {
  boost::json::array canonical{e.id,     e.time,   e.actor,   e.source,  e.action,
                               e.target, e.result, e.details, e.prevHash};
  return security::sha256Hex(json::serialize(canonical));
}

boost::json::object toJson(const Entry& e) {
  boost::system::error_code ec;
  auto details = boost::json::parse(e.details, ec);
  return {{"id", e.id},
          {"time", e.time},
          {"actor", e.actor},
          {"source", e.source},
          {"action", e.action},
          {"target", e.target},
          {"result", e.result},
          {"details", ec ? boost::json::value(e.details) : details},
          {"prev_hash", e.prevHash},
          {"hash", e.hash}};
}

void append(db::Database& db, Entry& e) {
  auto last = db.prepare("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1");
  if (last.step()) {
    e.id = last.integer(0) + 1;
    e.prevHash = last.text(1);
  } else {
    auto anchor = readAnchor(db).value_or(Anchor{});
    e.id = anchor.lastId + 1;
    e.prevHash = anchor.lastHash;
  }
  e.hash = entryHash(e);
  db.prepare(
        "INSERT INTO audit_log(id, time, actor, source, action, target, result, details, "
        "prev_hash, "
        "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, e.id)
      .bind(2, e.time)
      .bind(3, e.actor)
      .bind(4, e.source)
      .bind(5, e.action)
      .bind(6, e.target)
      .bind(7, e.result)
      .bind(8, e.details)
      .bind(9, e.prevHash)
      .bind(10, e.hash)
      .step();
}

void Log::record(const http::Call& call, http::Response response, const http::Reply& send) const {
  Entry e;
  e.time = now();
  e.actor = call.identity.name.empty() ? "anonymous" : call.identity.name;
  e.source = call.address == "local" ? call.remote : call.address;
  e.action = std::string(call.request.method_string()) + " " + std::string(call.route);
  auto target = std::string_view(call.request.target());
  e.target = std::string(target.substr(0, target.find('?')));
  e.result = static_cast<int>(response.result_int());
  boost::json::object details = call.auditDetails;
  if (e.result >= 400) {
    boost::system::error_code ec;
    auto body = boost::json::parse(response.body(), ec);
    if (!ec && body.is_object() && body.as_object().contains("error")) {
      details["error"] = body.at("error").at("code");
    }
  }
  e.details = json::serialize(details);
  database_.post(
      [e = std::move(e), response = std::move(response), send](db::Database& db) mutable {
        try {
          db.transaction([&e](db::Database& tx) { append(tx, e); });
        } catch (const db::Error& error) {
          log::error("cannot write the audit log", {{"action", e.action}, {"error", error.what()}});
        }
        send(std::move(response));
      });
}

std::vector<Entry> query(db::Database& db, const Filter& f) {
  std::string sql = std::string(kColumns) + " WHERE 1 = 1";
  std::vector<std::string> texts;
  auto where = [&sql, &texts](const char* clause, const std::optional<std::string>& value) {
    if (value) {
      sql += clause;
      texts.push_back(*value);
    }
  };
  where(" AND actor = ?", f.actor);
  where(" AND instr(action, ?) > 0", f.action);
  where(" AND time >= ?", f.since);
  where(" AND time < ?", f.until);
  if (f.before) {
    sql += " AND id < " + std::to_string(*f.before);
  }
  if (f.after) {
    sql += " AND id > " + std::to_string(*f.after);
  }
  sql += f.oldestFirst ? " ORDER BY id ASC" : " ORDER BY id DESC";
  sql += " LIMIT " + std::to_string(f.limit);
  auto stmt = db.prepare(sql);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    stmt.bind(static_cast<int>(i + 1), texts[i]);
  }
  std::vector<Entry> out;
  while (stmt.step()) {
    out.push_back(readEntry(stmt));
  }
  return out;
}

Verification verify(db::Database& db, const std::filesystem::path& archiveDir) {
  Verification v;
  ChainCheck chain;
  for (const auto& file : archiveFiles(archiveDir)) {
    ++v.archives;
    std::vector<std::string> entries;
    try {
      entries = lines(gunzip(readBytes(file)));
    } catch (const std::exception& e) {
      v.problems.push_back({file.filename().string(), std::string("cannot be read: ") + e.what()});
      continue;
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
      std::string where = file.filename().string() + " line " + std::to_string(i + 1);
      auto e = fromJson(entries[i]);
      if (!e) {
        v.problems.push_back({where, "is not an audit record"});
        continue;
      }
      chain.check(*e, where, v);
    }
  }
  if (auto anchor = readAnchor(db)) {
    if (chain.lastId() != anchor->lastId || chain.lastHash() != anchor->lastHash) {
      v.problems.push_back({"archives", "do not end at the anchor (row " +
                                            std::to_string(anchor->lastId) +
                                            "): an archive file is missing or was changed"});
      chain.resume(*anchor);
    }
  }
  auto rows = db.prepare(std::string(kColumns) + " ORDER BY id");
  while (rows.step()) {
    auto e = readEntry(rows);
    chain.check(e, "row " + std::to_string(e.id), v);
    ++v.rows;
  }
  auto sequence = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'");
  if (sequence.step() && sequence.integer(0) > chain.lastId()) {
    v.problems.push_back({"end", "rows " + std::to_string(chain.lastId() + 1) + " to " +
                                     std::to_string(sequence.integer(0)) +
                                     " are missing (deleted)"});
  }
  return v;
}

std::int64_t archive(db::Database& db, const std::filesystem::path& archiveDir,
                     const std::string& cutoff) {
  auto upTo = db.prepare("SELECT MAX(id) FROM audit_log WHERE time < ?");
  upTo.bind(1, cutoff);
  upTo.step();
  if (upTo.isNull(0)) {
    return 0;
  }
  std::int64_t lastId = upTo.integer(0);
  auto rows = db.prepare(std::string(kColumns) + " WHERE id <= ? ORDER BY id");
  rows.bind(1, lastId);
  std::map<std::string, std::vector<Entry>> byMonth;
  Entry last;
  std::int64_t count = 0;
  while (rows.step()) {
    ++count;
    last = readEntry(rows);
    byMonth[last.time.substr(0, 7)].push_back(last);
  }
  fs::makeDirectories(archiveDir, 0750);
  for (const auto& [month, entries] : byMonth) {
    auto file = archiveDir / ("audit-" + month + ".jsonl.gz");
    std::string existing = std::filesystem::exists(file) ? readBytes(file) : "";
    // A crash after a previous write but before the rows were deleted leaves them in both
    // places: skip what the file already holds.
    std::int64_t archivedUpTo = 0;
    if (!existing.empty()) {
      auto previous = lines(gunzip(existing));
      if (!previous.empty()) {
        if (auto e = fromJson(previous.back())) {
          archivedUpTo = e->id;
        }
      }
    }
    std::string text;
    for (const auto& e : entries) {
      if (e.id > archivedUpTo) {
        text += json::serialize(toJson(e)) + "\n";
      }
    }
    if (!text.empty()) {
      fs::writeFileAtomic(file, existing + gzipMember(text), 0640);
    }
  }
  db.transaction([lastId, &last](db::Database& tx) {
    tx.prepare("DELETE FROM audit_log WHERE id <= ?").bind(1, lastId).step();
    tx.prepare("INSERT OR REPLACE INTO audit_anchor(id, last_id, last_hash) VALUES (1, ?, ?)")
        .bind(1, last.id)
        .bind(2, last.hash)
        .step();
  });
  log::info("audit rows archived",
            {{"rows_up_to", std::to_string(lastId)}, {"dir", archiveDir.string()}});
  return count;
}

}  // namespace aibox::agent::audit
