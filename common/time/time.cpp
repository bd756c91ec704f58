#include "common/time/time.hpp"

#include <array>
#include <charconv>
#include <ctime>

namespace aibox::time {

std::string isoTime(std::chrono::system_clock::time_point t) {
  return isoTime(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

std::string isoTime(std::int64_t unixSeconds) {
  std::time_t secs = unixSeconds;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  std::array<char, 32> text{};
  std::size_t n = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return {text.data(), n};
}

std::optional<std::int64_t> parseTime(std::string_view text) {
  std::int64_t seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc() && end == text.data() + text.size()) {
    return seconds;
  }
  std::string copy(text);
  for (const char* format : {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"}) {
    std::tm utc{};
    const char* rest = ::strptime(copy.c_str(), format, &utc);
    if (rest != nullptr && *rest == '\0') {
      return static_cast<std::int64_t>(::timegm(&utc));
    }
  }
  return std::nullopt;
}

std::optional<std::int64_t> parseDuration(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || value < 0) {
    return std::nullopt;
  }
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  if (unit.empty() || unit == "s") {
    return value;
  }
  if (unit == "m") {
    return value * 60;
  }
  if (unit == "h") {
    return value * 3600;
  }
  if (unit == "d") {
    return value * 86400;
  }
  return std::nullopt;
}

}  // namespace aibox::time
