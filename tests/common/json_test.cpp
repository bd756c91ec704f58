#include "common/json/json.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <limits>

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

TEST(Serialize, NumbersInTheirPlainShortestForm) {
  EXPECT_EQ(serialize(412.0), "412");
  EXPECT_EQ(serialize(412.5), "412.5");
  EXPECT_EQ(serialize(0.25), "0.25");
  EXPECT_EQ(serialize(0.0), "0");
  EXPECT_EQ(serialize(-3.75), "-3.75");
  EXPECT_EQ(serialize(0.1), "0.1");
  EXPECT_EQ(serialize(std::int64_t{-42}), "-42");
  EXPECT_EQ(serialize(std::uint64_t{18446744073709551615ULL}), "18446744073709551615");
  EXPECT_EQ(serialize(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(serialize(std::numeric_limits<double>::infinity()), "null");
}

TEST(Serialize, DoublesReadBackExactly) {
  for (double d : {1.0 / 3.0, 2.29e2, 1e-7, 6.02214076e23, 5e-324, 1.7976931348623157e308}) {
    const auto text = serialize(d);
    EXPECT_EQ(text.find('E'), std::string::npos) << text;
    EXPECT_EQ(boost::json::parse(text).to_number<double>(), d) << text;
  }
}

TEST(Serialize, NestedValuesAndEscapes) {
  boost::json::value v = {{"value", 412.0},
                          {"hysteresis", 0.0},
                          {"name", "fan \"1\"\n\xe4\xb8\xad"},
                          {"list", {1, 2.5, nullptr, true, false}},
                          {"empty", boost::json::object()}};
  EXPECT_EQ(serialize(v), R"({"value":412,"hysteresis":0,"name":"fan \"1\"\n)"
                          "\xe4\xb8\xad"
                          R"(","list":[1,2.5,null,true,false],"empty":{}})");
  EXPECT_EQ(serialize(boost::json::parse(serialize(v))), serialize(v));
}

}  // namespace
}  // namespace aibox::json
