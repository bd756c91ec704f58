#include "common/json/json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>

namespace aibox::json {

std::variant<boost::json::object, Problem> parseObject(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec) {
    return Problem{"invalid_json", "", "request body is not valid JSON: " + ec.message()};
  }
  if (!value.is_object()) {
    return Problem{"invalid_json", "", "request body must be a JSON object"};
  }
  return std::move(value.as_object());
}

const boost::json::value* Reader::find(std::string_view key, bool required) {
  if (problem_) {
    return nullptr;
  }
  seen_.emplace(key);
  const auto* value = object_.if_contains(key);
  if (value == nullptr || value->is_null()) {
    if (required) {
      fail(key, "is required");
    }
    return nullptr;
  }
  return value;
}

void Reader::fail(std::string_view key, std::string message) {
  if (!problem_) {
    problem_ = Problem{"invalid_field", std::string(key),
                       "field '" + std::string(key) + "' " + std::move(message)};
  }
}

std::optional<std::string> Reader::string(std::string_view key, bool required) {
  const auto* v = find(key, required);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_string()) {
    fail(key, "must be a string");
    return std::nullopt;
  }
  return std::string(v->as_string());
}

std::optional<std::int64_t> Reader::integer(std::string_view key, bool required) {
  const auto* v = find(key, required);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->is_int64()) {
    return v->as_int64();
  }
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v->as_uint64());
  }
  fail(key, "must be an integer");
  return std::nullopt;
}

std::optional<bool> Reader::boolean(std::string_view key, bool required) {
  const auto* v = find(key, required);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_bool()) {
    fail(key, "must be true or false");
    return std::nullopt;
  }
  return v->as_bool();
}

std::optional<std::map<std::string, std::string>> Reader::stringMap(std::string_view key,
                                                                    bool required) {
  const auto* v = find(key, required);
  if (v == nullptr) {
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  if (v->is_object()) {
    for (const auto& [name, value] : v->as_object()) {
      if (!value.is_string()) {
        fail(key, "must be an object of strings; '" + std::string(name) + "' is not a string");
        return std::nullopt;
      }
      out.emplace(name, value.as_string());
    }
    return out;
  }
  fail(key, "must be an object of strings, e.g. {\"team\": \"rag\"}");
  return std::nullopt;
}

std::optional<std::vector<std::string>> Reader::stringList(std::string_view key, bool required) {
  const auto* v = find(key, required);
  if (v == nullptr) {
    return std::nullopt;
  }
  std::vector<std::string> out;
  if (v->is_array()) {
    for (const auto& item : v->as_array()) {
      if (!item.is_string()) {
        out.clear();
        break;
      }
      out.emplace_back(item.as_string());
    }
    if (out.size() == v->as_array().size()) {
      return out;
    }
  }
  fail(key, "must be a list of strings");
  return std::nullopt;
}

void Reader::rejectUnknown() {
  for (const auto& entry : object_) {
    if (!seen_.contains(std::string_view(entry.key()))) {
      fail(entry.key(), "is not a known field");
      return;
    }
  }
}

namespace {

// Boost.JSON writes every double in exponent form (4.12E2); people read these responses with
// curl and jq, so doubles are written in the shortest form that reads back exactly (412, 0.25).
void appendNumber(std::string& out, double number) {
  if (!std::isfinite(number)) {
    out += "null";  // JSON has no NaN or infinity
    return;
  }
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, number);
  out.append(buffer, result.ptr);
}

template <typename Integer>
void appendInteger(std::string& out, Integer number) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, number);
  out.append(buffer, result.ptr);
}

void append(std::string& out, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64:
      appendInteger(out, value.get_int64());
      return;
    case boost::json::kind::uint64:
      appendInteger(out, value.get_uint64());
      return;
    case boost::json::kind::double_:
      appendNumber(out, value.get_double());
      return;
    case boost::json::kind::string:
      out += boost::json::serialize(value.get_string());
      return;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& item : value.get_array()) {
        if (!first) {
          out += ',';
        }
        first = false;
        append(out, item);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : value.get_object()) {
        if (!first) {
          out += ',';
        }
        first = false;
        out += boost::json::serialize(key);
        out += ':';
        append(out, item);
      }
      out += '}';
      return;
    }
  }
}

}  // namespace

std::string serialize(const boost::json::value& value) {
  std::string out;
  append(out, value);
  return out;
}

}  // namespace aibox::json
