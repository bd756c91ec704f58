#pragma once
// Reading untrusted JSON without exceptions: a body must be an object, and each field is read
// with its expected type. The first problem found names the field, so the API can answer 400
// with a message that says exactly what to fix.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace aibox::json {

struct Problem {
  std::string code;   // "invalid_json" or "invalid_field"
  std::string field;  // empty when the body itself is wrong
  std::string message;
};

// Parses `text` as one JSON object (size and depth limited by the caller's body limit).
std::variant<boost::json::object, Problem> parseObject(std::string_view text);

class Reader {
 public:
  explicit Reader(const boost::json::object& object) : object_(object) {}

  std::optional<std::string> string(std::string_view key, bool required = true);
  std::optional<std::int64_t> integer(std::string_view key, bool required = true);
  std::optional<bool> boolean(std::string_view key, bool required = true);
  std::optional<std::vector<std::string>> stringList(std::string_view key, bool required = true);
  // An object whose values are all strings ({"team": "rag"}).
  std::optional<std::map<std::string, std::string>> stringMap(std::string_view key,
                                                              bool required = true);

  // Marks every field not read so far as unknown (a typo must not pass silently).
  void rejectUnknown();

  const std::optional<Problem>& problem() const { return problem_; }
  bool ok() const { return !problem_; }

 private:
  const boost::json::value* find(std::string_view key, bool required);
  void fail(std::string_view key, std::string message);

  const boost::json::object& object_;
  std::set<std::string, std::less<>> seen_;
  std::optional<Problem> problem_;
};

std::string serialize(const boost::json::value& value);

}  // namespace aibox::json
