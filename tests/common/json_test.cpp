#include "common/json/json.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "common/http/http.hpp"

namespace aibox::json {
namespace {

TEST(ParseObject, MalformedJsonIsAProblem) {
  auto result = parseObject("{\"a\": ");
  ASSERT_TRUE(std::holds_alternative<Problem>(result));
  EXPECT_EQ(std::get<Problem>(result).code, "invalid_json");
}

TEST(ParseObject, NonObjectIsAProblem) {
  auto result = parseObject("[1,2]");
  ASSERT_TRUE(std::holds_alternative<Problem>(result));
  EXPECT_NE(std::get<Problem>(result).message.find("object"), std::string::npos);
}

TEST(Reader, ReadsTypedFields) {
  auto object = std::get<boost::json::object>(parseObject(R"({"name":"x","size":5,"on":true})"));
  Reader r(object);
  EXPECT_EQ(r.string("name"), "x");
  EXPECT_EQ(r.integer("size"), 5);
  EXPECT_EQ(r.boolean("on"), true);
  r.rejectUnknown();
  EXPECT_TRUE(r.ok());
}

TEST(Reader, StringLists) {
  auto object = std::get<boost::json::object>(parseObject(R"({"a":["x","y"],"b":[1],"c":"x"})"));
  Reader good(object);
  EXPECT_EQ(good.stringList("a"), (std::vector<std::string>{"x", "y"}));
  Reader numbers(object);
  EXPECT_FALSE(numbers.stringList("b"));
  EXPECT_EQ(numbers.problem()->message, "field 'b' must be a list of strings");
  Reader scalar(object);
  EXPECT_FALSE(scalar.stringList("c"));
}

TEST(Reader, WrongTypeNamesTheField) {
  auto object = std::get<boost::json::object>(parseObject(R"({"name":5})"));
  Reader r(object);
  EXPECT_FALSE(r.string("name"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problem()->field, "name");
  EXPECT_EQ(r.problem()->code, "invalid_field");
  EXPECT_EQ(r.problem()->message, "field 'name' must be a string");
}

TEST(Reader, MissingRequiredAndUnknownFields) {
  auto object = std::get<boost::json::object>(parseObject(R"({"nmae":"typo"})"));
  Reader missing(object);
  missing.string("name");
  EXPECT_EQ(missing.problem()->message, "field 'name' is required");
  Reader unknown(object);
  unknown.string("name", false);
  unknown.rejectUnknown();
  EXPECT_EQ(unknown.problem()->field, "nmae");
}

TEST(Reader, FirstProblemWins) {
  auto object = std::get<boost::json::object>(parseObject(R"({"a":"x","b":"y"})"));
  Reader r(object);
  r.integer("a");
  r.integer("b");
  EXPECT_EQ(r.problem()->field, "a");
}

TEST(BadRequest, ErrorBodyShape) {
  auto res = http::badRequest({"invalid_field", "size", "field 'size' must be an integer"});
  EXPECT_EQ(res.result(), http::Status::bad_request);
  auto body = boost::json::parse(res.body());
  EXPECT_EQ(body.at("error").at("code").as_string(), "invalid_field");
  EXPECT_EQ(body.at("error").at("field").as_string(), "size");
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
}

}  // namespace
}  // namespace aibox::json
