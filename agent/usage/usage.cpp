#include "agent/usage/usage.hpp"

#include <boost/json/array.hpp>
#include <chrono>

#include "common/time/time.hpp"

namespace aibox::agent::usage {

const char* const kSchema =
    "CREATE TABLE usage_hourly ("
    " hour INTEGER NOT NULL,"
    " key_id TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " requests INTEGER NOT NULL DEFAULT 0,"
    " prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    " completion_tokens INTEGER NOT NULL DEFAULT 0,"
    " errors INTEGER NOT NULL DEFAULT 0,"
    " latency_ms INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (hour, key_id, model));"
    "CREATE TABLE usage_batches ("
    " id TEXT PRIMARY KEY,"
    " received_at INTEGER NOT NULL)";

namespace {

// Batch ids are kept this long; the gateway never holds a batch longer.
constexpr std::int64_t kBatchMemorySeconds = 30LL * 24 * 3600;

std::optional<json::Problem> readRow(const boost::json::value& value, std::size_t index, Row& row) {
  std::string where = "rows[" + std::to_string(index) + "]";
  if (!value.is_object()) {
    return json::Problem{"invalid_field", where, "field '" + where + "' must be an object"};
  }
  json::Reader r(value.as_object());
  auto hour = r.integer("hour");
  auto key = r.string("key");
  auto model = r.string("model");
  auto requests = r.integer("requests");
  auto prompt = r.integer("prompt_tokens");
  auto completion = r.integer("completion_tokens");
  auto errors = r.integer("errors");
  auto latency = r.integer("latency_ms");
  r.rejectUnknown();
  if (!r.ok()) {
    auto p = *r.problem();
    p.field = where + "." + p.field;
    p.message = where + ": " + p.message;
    return p;
  }
  for (auto v : {*hour, *requests, *prompt, *completion, *errors, *latency}) {
    if (v < 0) {
      return json::Problem{"invalid_field", where, where + ": counts must not be negative"};
    }
  }
  if (*hour % 3600 != 0) {
    return json::Problem{"invalid_field", where + ".hour",
                         where + ": 'hour' must be the start of an hour (a multiple of 3600)"};
  }
  if (key->empty() || model->empty()) {
    return json::Problem{"invalid_field", where, where + ": 'key' and 'model' must not be empty"};
  }
  row = Row{*hour, *key, *model, *requests, *prompt, *completion, *errors, *latency, {}};
  return std::nullopt;
}

}  // namespace

std::variant<Batch, json::Problem> parseBatch(const boost::json::object& body) {
  Batch batch;
  const auto* id = body.if_contains("batch");
  const auto* rows = body.if_contains("rows");
  if (id == nullptr || !id->is_string() || id->as_string().empty() || id->as_string().size() > 64) {
    return json::Problem{"invalid_field", "batch",
                         "field 'batch' must be an id of 1 to 64 characters"};
  }
  if (rows == nullptr || !rows->is_array()) {
    return json::Problem{"invalid_field", "rows", "field 'rows' must be an array"};
  }
  for (const auto& [name, v] : body) {
    if (name != "batch" && name != "rows") {
      return json::Problem{"invalid_field", std::string(name),
                           "unknown field '" + std::string(name) + "'"};
    }
  }
  batch.id = std::string(id->as_string());
  for (std::size_t i = 0; i < rows->as_array().size(); ++i) {
    Row row;
    if (auto problem = readRow(rows->as_array()[i], i, row)) {
      return *problem;
    }
    batch.rows.push_back(std::move(row));
  }
  return batch;
}

bool record(db::Database& db, const Batch& batch) {
  return db.transaction([&batch](db::Database& d) {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto seen = d.prepare("SELECT 1 FROM usage_batches WHERE id = ?");
    seen.bind(1, batch.id);
    if (seen.step()) {
      return false;
    }
    d.prepare("INSERT INTO usage_batches(id, received_at) VALUES (?, ?)")
        .bind(1, batch.id)
        .bind(2, now)
        .step();
    d.prepare("DELETE FROM usage_batches WHERE received_at < ?")
        .bind(1, now - kBatchMemorySeconds)
        .step();
    auto add = d.prepare(
        "INSERT INTO usage_hourly(hour, key_id, model, requests, prompt_tokens, "
        "completion_tokens, errors, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(hour, key_id, model) DO UPDATE SET requests = requests + excluded.requests, "
        "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = completion_tokens + excluded.completion_tokens, "
        "errors = errors + excluded.errors, latency_ms = latency_ms + excluded.latency_ms");
    for (const auto& r : batch.rows) {
      add.reset();
      add.bind(1, r.hour).bind(2, r.key).bind(3, r.model).bind(4, r.requests);
      add.bind(5, r.promptTokens).bind(6, r.completionTokens).bind(7, r.errors);
      add.bind(8, r.latencyMs);
      add.step();
    }
    return true;
  });
}

std::vector<Row> query(db::Database& db, const Filter& filter) {
  auto stmt = db.prepare(
      "SELECT u.hour, u.key_id, u.model, u.requests, u.prompt_tokens, u.completion_tokens, "
      "u.errors, u.latency_ms, COALESCE(k.name, '') FROM usage_hourly u "
      "LEFT JOIN inference_keys k ON k.id = u.key_id "
      "WHERE (?1 IS NULL OR u.hour >= ?1) AND (?2 IS NULL OR u.hour < ?2) "
      "AND (?3 IS NULL OR u.key_id = ?3) AND (?4 IS NULL OR u.model = ?4) "
      "ORDER BY u.hour, u.key_id, u.model LIMIT 100000");
  if (filter.since) {
    stmt.bind(1, *filter.since);
  } else {
    stmt.bind(1, nullptr);
  }
  if (filter.until) {
    stmt.bind(2, *filter.until);
  } else {
    stmt.bind(2, nullptr);
  }
  if (filter.key) {
    stmt.bind(3, *filter.key);
  } else {
    stmt.bind(3, nullptr);
  }
  if (filter.model) {
    stmt.bind(4, *filter.model);
  } else {
    stmt.bind(4, nullptr);
  }
  std::vector<Row> out;
  while (stmt.step()) {
    out.push_back(Row{stmt.integer(0), stmt.text(1), stmt.text(2), stmt.integer(3), stmt.integer(4),
                      stmt.integer(5), stmt.integer(6), stmt.integer(7), stmt.text(8)});
  }
  return out;
}

boost::json::object rowJson(const Row& row) {
  return {{"hour", time::isoTime(row.hour)},
          {"key", row.key},
          {"key_name", row.keyName},
          {"model", row.model},
          {"requests", row.requests},
          {"prompt_tokens", row.promptTokens},
          {"completion_tokens", row.completionTokens},
          {"errors", row.errors},
          {"latency_ms", row.latencyMs}};
}

namespace {

std::string csvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) {
    return text;
  }
  std::string out = "\"";
  for (char c : text) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

}  // namespace

std::string csv(const std::vector<Row>& rows) {
  std::string out =
      "hour,key,key_name,model,requests,prompt_tokens,completion_tokens,errors,latency_ms\r\n";
  for (const auto& r : rows) {
    out += time::isoTime(r.hour);
    for (const auto* text : {&r.key, &r.keyName, &r.model}) {
      out += ',' + csvField(*text);
    }
    for (auto n : {r.requests, r.promptTokens, r.completionTokens, r.errors, r.latencyMs}) {
      out += ',' + std::to_string(n);
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace aibox::agent::usage
