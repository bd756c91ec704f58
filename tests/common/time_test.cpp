// common/time: the times users and the API write, and the durations of settings.
#include "common/time/time.hpp"

#include <gtest/gtest.h>

namespace aibox::time {
namespace {

TEST(Time, ParsesInstantsDaysAndUnixSeconds) {
  EXPECT_EQ(parseTime("2026-12-01T10:00:00Z"), 1796119200);
  EXPECT_EQ(parseTime("2026-12-01"), 1796083200);
  EXPECT_EQ(parseTime("1796083200"), 1796083200);
  EXPECT_EQ(isoTime(*parseTime("2026-11-22T22:48:46Z")), "2026-11-22T22:48:46Z");
  for (const char* bad : {"", "yesterday", "2026-12-01T10:00:00", "2026-12-01 10:00", "2026-12-01Z",
                          "2026-13-01", "12abc"}) {
    EXPECT_EQ(parseTime(bad), std::nullopt) << bad;
  }
}

TEST(Time, DurationsHaveTheirUnits) {
  EXPECT_EQ(parseDuration("90s"), 90);
  EXPECT_EQ(parseDuration("15m"), 900);
  EXPECT_EQ(parseDuration("24h"), 86400);
  EXPECT_EQ(parseDuration("7d"), 604800);
  EXPECT_EQ(parseDuration("42"), 42);
  EXPECT_EQ(parseDuration("-1s"), std::nullopt);
  EXPECT_EQ(parseDuration("5w"), std::nullopt);
}

}  // namespace
}  // namespace aibox::time
