#pragma once
// Times as the API writes and reads them: ISO 8601 UTC to the second.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aibox::time {

// "2026-11-22T22:48:46Z"
std::string isoTime(std::chrono::system_clock::time_point t);
std::string isoTime(std::int64_t unixSeconds);

// "2026-11-22T22:48:46Z", a day ("2026-11-22", its midnight UTC) or unix seconds
// ("1795215600"); nullopt for anything else.
std::optional<std::int64_t> parseTime(std::string_view text);

// "90s", "15m", "24h", "7d" (also a bare number of seconds); nullopt for anything else.
std::optional<std::int64_t> parseDuration(std::string_view text);

}  // namespace aibox::time
