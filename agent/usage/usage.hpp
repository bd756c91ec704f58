#pragma once
// What applications used through the gateway: per key, model and hour, the requests, prompt and
// completion tokens, errors and total latency. The gateway sends its counts in batches, each
// with an id recorded once, so a batch it sends again (after a restart, or when the answer was
// lost) is never counted twice. See docs/gateway.md, "Metering".

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/db/db.hpp"
#include "common/json/json.hpp"

namespace aibox::agent::usage {

extern const char* const kSchema;

struct Row {
  std::int64_t hour = 0;  // start of the hour, seconds since the epoch (UTC)
  std::string key;        // inference key id
  std::string model;
  std::int64_t requests = 0;
  std::int64_t promptTokens = 0;
  std::int64_t completionTokens = 0;
  std::int64_t errors = 0;
  std::int64_t latencyMs = 0;  // summed over the requests
  std::string keyName;         // filled in by query (empty for a deleted key)
};

// A batch as the gateway sends it: {"batch": "ID", "rows": [{"hour", "key", "model",
// "requests", "prompt_tokens", "completion_tokens", "errors", "latency_ms"}]}.
struct Batch {
  std::string id;
  std::vector<Row> rows;
};
std::variant<Batch, json::Problem> parseBatch(const boost::json::object& body);

// Adds the batch's rows in one transaction; false (and nothing added) when the batch id was
// recorded before.
bool record(db::Database& db, const Batch& batch);

struct Filter {
  std::optional<std::int64_t> since;  // hours starting at or after
  std::optional<std::int64_t> until;  // hours starting before
  std::optional<std::string> key;
  std::optional<std::string> model;
};
// Rows by hour, then key, then model.
std::vector<Row> query(db::Database& db, const Filter& filter);

boost::json::object rowJson(const Row& row);
// RFC 4180 text with a header line: hour (ISO 8601), key, key_name, model, and the counts.
std::string csv(const std::vector<Row>& rows);

}  // namespace aibox::agent::usage
