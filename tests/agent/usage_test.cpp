#include "agent/usage/usage.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "agent/migrations.hpp"
#include "tests/support/support.hpp"

namespace aibox::agent::usage {
namespace {

class UsageTest : public ::testing::Test {
 protected:
  void SetUp() override { db::migrate(db, migrations()); }

  Batch batch(const std::string& text) {
    auto parsed = parseBatch(boost::json::parse(text).as_object());
    EXPECT_TRUE(std::holds_alternative<Batch>(parsed)) << std::get<json::Problem>(parsed).message;
    return std::get<Batch>(parsed);
  }

  test::TempDir dir;
  db::Database db = db::Database::open(dir.path() / "aibox.db");
};

constexpr const char* kRows =
    R"("rows":[{"hour":7200,"key":"k1","model":"tiny:latest","requests":2,"prompt_tokens":10,)"
    R"("completion_tokens":20,"errors":1,"latency_ms":300},{"hour":3600,"key":"k1","model":"x",)"
    R"("requests":1,"prompt_tokens":1,"completion_tokens":1,"errors":0,"latency_ms":5}]})";

TEST_F(UsageTest, ABatchCountsOnceAndRowsAdd) {
  EXPECT_TRUE(record(db, batch(std::string(R"({"batch":"b1",)") + kRows)));
  EXPECT_FALSE(record(db, batch(std::string(R"({"batch":"b1",)") + kRows))) << "sent again";
  EXPECT_TRUE(record(db, batch(std::string(R"({"batch":"b2",)") + kRows)));
  auto rows = query(db, {});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].hour, 3600) << "by hour";
  EXPECT_EQ(rows[1].requests, 4);
  EXPECT_EQ(rows[1].completionTokens, 40);
  EXPECT_EQ(rows[1].errors, 2);
  EXPECT_EQ(rows[1].latencyMs, 600);
  EXPECT_EQ(query(db, {.since = 7200}).size(), 1u);
  EXPECT_EQ(query(db, {.until = 7200}).size(), 1u);
  EXPECT_EQ(query(db, {.model = "x"}).size(), 1u);
  EXPECT_TRUE(query(db, {.key = "k2"}).empty());
  EXPECT_EQ(csv(rows),
            "hour,key,key_name,model,requests,prompt_tokens,completion_tokens,errors,latency_ms\r\n"
            "1970-01-01T01:00:00Z,k1,,x,2,2,2,0,10\r\n"
            "1970-01-01T02:00:00Z,k1,,tiny:latest,4,20,40,2,600\r\n");
}

TEST_F(UsageTest, BadBatchesNameTheField) {
  auto problem = [](const std::string& text) {
    auto parsed = parseBatch(boost::json::parse(text).as_object());
    return std::holds_alternative<json::Problem>(parsed) ? std::get<json::Problem>(parsed).field
                                                         : std::string("(accepted)");
  };
  EXPECT_EQ(problem(R"({"rows":[]})"), "batch");
  EXPECT_EQ(problem(R"({"batch":"b","rows":{}})"), "rows");
  EXPECT_EQ(problem(R"({"batch":"b","rows":[],"extra":1})"), "extra");
  EXPECT_EQ(problem(R"({"batch":"b","rows":[{"hour":1,"key":"k","model":"m","requests":1,)"
                    R"("prompt_tokens":0,"completion_tokens":0,"errors":0,"latency_ms":0}]})"),
            "rows[0].hour");
  EXPECT_EQ(problem(R"({"batch":"b","rows":[{"hour":3600,"key":"k","model":"m","requests":-1,)"
                    R"("prompt_tokens":0,"completion_tokens":0,"errors":0,"latency_ms":0}]})"),
            "rows[0]");
  EXPECT_EQ(problem(R"({"batch":"b","rows":[{"hour":3600}]})"), "rows[0].key");
}

}  // namespace
}  // namespace aibox::agent::usage
