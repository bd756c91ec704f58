// The JSON-schema constraint: what the matcher takes and refuses, the compile errors, and a
// property test: random walks over the bytes it allows, on random schemas, always end in text
// that parses and validates against the schema (checked by a separate validator here).
#include "runtime/server/json_schema.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "tests/runtime/server/schema_check.hpp"

namespace aibox::server {
namespace {

namespace json = boost::json;
using test::randomSchema;
using test::valid;

std::shared_ptr<const JsonSchema> compile(std::string_view schema) {
  auto compiled = JsonSchema::compile(json::parse(schema));
  if (auto* error = std::get_if<std::string>(&compiled)) {
    ADD_FAILURE() << *error;
    return nullptr;
  }
  return std::get<0>(compiled);
}

// Whether the whole text is accepted and complete.
bool accepts(const std::shared_ptr<const JsonSchema>& schema, std::string_view text) {
  JsonMatcher m(schema);
  return m.feed(text) && m.complete();
}

TEST(JsonMatcher, TakesValuesOfTheSchemaAndRefusesTheRest) {
  auto person = compile(R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":5},"age":{"type":"integer"},
      "tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":2}},
      "required":["name"],"additionalProperties":false})");
  EXPECT_TRUE(accepts(person, R"({"name": "bob", "age": 42})"));
  EXPECT_TRUE(accepts(person, R"({"name":"bob","tags":["a", "b"]})"));
  EXPECT_TRUE(accepts(person, R"({"name":"\u00e9t\u00e9"})"));
  EXPECT_FALSE(accepts(person, R"({"age": 1})")) << "a required property skipped";
  EXPECT_FALSE(accepts(person, R"({"name":"toolong"})"));
  EXPECT_FALSE(accepts(person, R"({"name":"bob","age":4.5})"));
  EXPECT_FALSE(accepts(person, R"({"name":"bob","tags":["a","b","a"]})"));
  EXPECT_FALSE(accepts(person, R"({"name":"bob","other":1})"));
  EXPECT_FALSE(accepts(person, R"({"name":"bob")")) << "not complete";
  EXPECT_FALSE(accepts(person, R"({"age":1,"name":"bob"})")) << "properties in schema order";

  auto number = compile(R"({"type":"number"})");
  EXPECT_TRUE(accepts(number, "-0.5e+10"));
  EXPECT_TRUE(accepts(number, "12"));
  EXPECT_FALSE(accepts(number, "012"));
  EXPECT_FALSE(accepts(number, "1."));
  JsonMatcher partial(number);
  EXPECT_TRUE(partial.feed("12"));
  EXPECT_TRUE(partial.complete());
  EXPECT_FALSE(partial.finished());  // more digits may follow
  EXPECT_FALSE(partial.feed("x"));
  EXPECT_TRUE(partial.feed("3"));  // the refused byte changed nothing

  auto nullable = compile(R"({"type":["string","null"]})");
  EXPECT_TRUE(accepts(nullable, "null"));
  EXPECT_TRUE(accepts(nullable, R"("x")"));
  EXPECT_FALSE(accepts(nullable, "1"));

  auto any = JsonSchema::anyObject();
  EXPECT_TRUE(accepts(any, R"({"a": [1, {"b": null}], "c": "d"})"));
  EXPECT_FALSE(accepts(any, "[1]"));
  EXPECT_FALSE(accepts(compile(R"({"type":"string"})"), "\"a\nb\"")) << "a raw control byte";
  EXPECT_FALSE(accepts(compile(R"({"type":"string"})"), "\"\xC3(\"")) << "broken UTF-8";
}

TEST(JsonSchema, AnUnsupportedOrWrongKeywordIsAnErrorNamingItAndWhere) {
  auto message = [](std::string_view schema) {
    auto compiled = JsonSchema::compile(json::parse(schema));
    auto* error = std::get_if<std::string>(&compiled);
    return error != nullptr ? *error : std::string("compiled");
  };
  EXPECT_NE(message(R"({"type":"object","properties":{"a":{"type":"string","pattern":"x"}}})")
                .find("at '/properties/a' uses the keyword 'pattern'"),
            std::string::npos);
  EXPECT_NE(message(R"({"type":"strin"})").find("is 'strin'"), std::string::npos);
  EXPECT_NE(message(R"({"type":"object","properties":{"a":{}},"required":["b"]})").find("'b'"),
            std::string::npos);
  EXPECT_NE(message(R"({"type":"array","maxItems":-1})").find("/maxItems"), std::string::npos);
  EXPECT_NE(message(R"({"anyOf":[]})").find("'anyOf'"), std::string::npos);
  EXPECT_EQ(message(R"({"title":"t","description":"d","type":"boolean"})"), "compiled");
}

TEST(JsonMatcher, RandomWalksOverRandomSchemasAlwaysEndInValidJson) {
  std::mt19937 random(7);
  for (int round = 0; round < 300; ++round) {
    auto schema = randomSchema(random, 3);
    auto compiled = JsonSchema::compile(schema);
    ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const JsonSchema>>(compiled))
        << std::get<std::string>(compiled);
    JsonMatcher m(std::get<0>(compiled));
    std::string text;
    // Each step takes one allowed byte, or stops when complete (one time in four).
    while (!m.finished() && !(m.complete() && random() % 4 == 0)) {
      std::vector<unsigned char> allowed;
      for (int c = 1; c < 256; ++c) {
        JsonMatcher probe = m;
        if (probe.feed(std::string(1, static_cast<char>(c)))) {
          allowed.push_back(static_cast<unsigned char>(c));
        }
      }
      if (allowed.empty() && m.complete()) {
        break;  // e.g. a number at its digit limit: only the end may follow
      }
      ASSERT_FALSE(allowed.empty()) << "stuck after " << text << " in " << json::serialize(schema);
      auto c = static_cast<char>(allowed[random() % allowed.size()]);
      ASSERT_TRUE(m.feed(std::string(1, c)));
      text += c;
      ASSERT_LT(text.size(), 20000u) << json::serialize(schema);
    }
    boost::system::error_code ec;
    auto value = json::parse(text, ec);
    ASSERT_FALSE(ec) << text << " for " << json::serialize(schema);
    EXPECT_TRUE(valid(value, schema)) << text << " for " << json::serialize(schema);
  }
}

}  // namespace
}  // namespace aibox::server
