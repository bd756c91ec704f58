#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "agent/security/security.hpp"
#include "common/json/json.hpp"

namespace aibox::agent::security {

const char* const kKeySchema =
    "CREATE TABLE inference_keys ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " secret_hash TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " models TEXT NOT NULL DEFAULT '[]',"
    " requests_per_minute INTEGER,"
    " tokens_per_minute INTEGER,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER,"
    " last_used_at INTEGER)";

const char* const kKeyConcurrencySchema =
    "ALTER TABLE inference_keys ADD COLUMN max_concurrent INTEGER";

namespace {

constexpr const char* kKeyColumns =
    "SELECT id, name, secret_hash, owner, models, requests_per_minute, tokens_per_minute, "
    "created_at, expires_at, last_used_at, max_concurrent FROM inference_keys";

InferenceKey readKey(const db::Statement& row) {
  InferenceKey k;
  k.id = row.text(0);
  k.name = row.text(1);
  k.secretHash = row.text(2);
  k.owner = row.text(3);
  boost::system::error_code ec;
  auto models = boost::json::parse(row.text(4), ec);
  if (!ec && models.is_array()) {
    for (const auto& m : models.as_array()) {
      if (m.is_string()) {
        k.models.emplace_back(m.as_string());
      }
    }
  }
  if (!row.isNull(5)) {
    k.requestsPerMinute = row.integer(5);
  }
  if (!row.isNull(6)) {
    k.tokensPerMinute = row.integer(6);
  }
  k.created = fromUnix(row.integer(7));
  if (!row.isNull(8)) {
    k.expires = fromUnix(row.integer(8));
  }
  if (!row.isNull(9)) {
    k.lastUsed = fromUnix(row.integer(9));
  }
  if (!row.isNull(10)) {
    k.maxConcurrent = row.integer(10);
  }
  return k;
}

void bindOptional(db::Statement& stmt, int index, const std::optional<std::int64_t>& value) {
  if (value) {
    stmt.bind(index, *value);
  } else {
    stmt.bind(index, nullptr);
  }
}

}  // namespace

bool InferenceKey::allows(std::string_view model) const {
  return models.empty() || std::find(models.begin(), models.end(), model) != models.end();
}

std::string createInferenceKey(db::Database& db, InferenceKey& key) {
  std::string secret = randomToken(32);
  key.id = sha256Hex(randomToken(16)).substr(0, 12);
  key.secretHash = sha256Hex(secret);
  key.created = Clock::now();
  boost::json::array models;
  for (const auto& m : key.models) {
    models.emplace_back(m);
  }
  auto stmt = db.prepare(
      "INSERT INTO inference_keys(id, name, secret_hash, owner, models, requests_per_minute, "
      "tokens_per_minute, created_at, expires_at, max_concurrent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?)");
  stmt.bind(1, key.id).bind(2, key.name).bind(3, key.secretHash).bind(4, key.owner);
  stmt.bind(5, json::serialize(models));
  bindOptional(stmt, 6, key.requestsPerMinute);
  bindOptional(stmt, 7, key.tokensPerMinute);
  stmt.bind(8, unixSeconds(key.created));
  bindOptional(stmt, 9, key.expires ? std::optional(unixSeconds(*key.expires)) : std::nullopt);
  bindOptional(stmt, 10, key.maxConcurrent);
  stmt.step();
  return std::string(kKeyPrefix) + key.id + "-" + secret;
}

std::vector<InferenceKey> listInferenceKeys(db::Database& db) {
  auto stmt = db.prepare(std::string(kKeyColumns) + " ORDER BY created_at, id");
  std::vector<InferenceKey> out;
  while (stmt.step()) {
    out.push_back(readKey(stmt));
  }
  return out;
}

bool deleteInferenceKey(db::Database& db, const std::string& id) {
  db.prepare("DELETE FROM inference_keys WHERE id = ?").bind(1, id).step();
  auto changes = db.prepare("SELECT changes()");
  changes.step();
  return changes.integer(0) > 0;
}

std::optional<InferenceKey> checkInferenceKey(db::Database& db, std::string_view key,
                                              Clock::time_point now) {
  // sk-aibox-<12 hex id>-<secret>
  if (!key.starts_with(kKeyPrefix) || key.size() < kKeyPrefix.size() + 14 ||
      key[kKeyPrefix.size() + 12] != '-') {
    return std::nullopt;
  }
  std::string id(key.substr(kKeyPrefix.size(), 12));
  auto stmt = db.prepare(std::string(kKeyColumns) + " WHERE id = ?");
  stmt.bind(1, id);
  if (!stmt.step()) {
    return std::nullopt;
  }
  auto record = readKey(stmt);
  if (!constantTimeEquals(sha256Hex(key.substr(kKeyPrefix.size() + 13)), record.secretHash) ||
      (record.expires && *record.expires <= now)) {
    return std::nullopt;
  }
  db.prepare("UPDATE inference_keys SET last_used_at = ? WHERE id = ?")
      .bind(1, unixSeconds(now))
      .bind(2, id)
      .step();
  return record;
}

}  // namespace aibox::agent::security
