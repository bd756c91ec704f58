#pragma once
// For the serving tests: a plain JSON-schema validator for the keywords constrained decoding
// supports (written apart from the matcher it checks), and random schemas of bounded size.

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace aibox::test {

inline std::size_t codePoints(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// A plain validator for the supported keywords, written apart from the matcher.
inline bool valid(const boost::json::value& v, const boost::json::value& schema) {
  if (schema.is_bool()) {
    return schema.as_bool();
  }
  const auto& s = schema.as_object();
  if (const auto* c = s.if_contains("const")) {
    return v == *c;
  }
  if (const auto* e = s.if_contains("enum")) {
    const auto& values = e->as_array();
    return std::find(values.begin(), values.end(), v) != values.end();
  }
  const auto* type = s.if_contains("type");
  if (type == nullptr) {
    return true;
  }
  if (type->is_array()) {
    for (const auto& t : type->as_array()) {
      boost::json::object one = s;
      one["type"] = t;
      if (valid(v, one)) {
        return true;
      }
    }
    return false;
  }
  auto t = std::string(type->as_string());
  auto limit = [&s](const char* key, std::size_t fallback) {
    const auto* value = s.if_contains(key);
    return value == nullptr ? fallback : static_cast<std::size_t>(value->as_int64());
  };
  if (t == "null") {
    return v.is_null();
  }
  if (t == "boolean") {
    return v.is_bool();
  }
  if (t == "integer") {
    return v.is_int64() || v.is_uint64();
  }
  if (t == "number") {
    return v.is_number();
  }
  if (t == "string") {
    if (!v.is_string()) {
      return false;
    }
    auto n = codePoints(v.as_string());
    return n >= limit("minLength", 0) && n <= limit("maxLength", SIZE_MAX);
  }
  if (t == "array") {
    if (!v.is_array()) {
      return false;
    }
    const auto& a = v.as_array();
    if (a.size() < limit("minItems", 0) || a.size() > limit("maxItems", SIZE_MAX)) {
      return false;
    }
    const auto* items = s.if_contains("items");
    return items == nullptr ||
           std::all_of(a.begin(), a.end(), [items](const auto& e) { return valid(e, *items); });
  }
  if (t == "object") {
    if (!v.is_object()) {
      return false;
    }
    const auto& o = v.as_object();
    const auto* properties = s.if_contains("properties");
    for (const auto& [key, value] : o) {
      const auto* property = properties ? properties->as_object().if_contains(key) : nullptr;
      if (property == nullptr) {
        const auto* extra = s.if_contains("additionalProperties");
        if (extra != nullptr && extra->is_bool() && !extra->as_bool()) {
          return false;
        }
      } else if (!valid(value, *property)) {
        return false;
      }
    }
    if (const auto* required = s.if_contains("required")) {
      for (const auto& name : required->as_array()) {
        if (!o.contains(name.as_string())) {
          return false;
        }
      }
    }
    return true;
  }
  return false;
}

// A random schema of bounded size: every walk over it ends.
inline boost::json::value randomSchema(std::mt19937& random, int depth) {
  auto pick = [&random](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
  switch (depth > 0 ? pick(9) : pick(6)) {
    case 0:
      return {{"type", "string"}, {"maxLength", pick(6)}};
    case 1:
      return {{"type", "integer"}};
    case 2:
      return {{"type", "number"}};
    case 3:
      return {{"type", "boolean"}};
    case 4:
      return {{"enum", boost::json::array{"red", 7, nullptr, boost::json::array{1}}}};
    case 5:
      return {{"type", boost::json::array{"null", "string"}}, {"maxLength", 3}};
    case 6:
    case 7: {
      boost::json::object properties;
      boost::json::array required;
      int count = 1 + pick(3);
      for (int i = 0; i < count; ++i) {
        std::string key = "k" + std::to_string(i) + (pick(2) ? "\u00e9" : "");
        properties[key] = randomSchema(random, depth - 1);
        if (pick(2)) {
          required.push_back(boost::json::value(key));
        }
      }
      return {{"type", "object"},
              {"properties", properties},
              {"required", required},
              {"additionalProperties", false}};
    }
    default:
      return {{"type", "array"},
              {"items", randomSchema(random, depth - 1)},
              {"minItems", pick(2)},
              {"maxItems", 1 + pick(3)}};
  }
}

}  // namespace aibox::test
