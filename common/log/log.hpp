#pragma once
// Structured logging: to journald (with one journal field per structured field) when stderr is
// connected to the journal, as under systemd; otherwise one line per message on stderr.
// Never pass a secret (password, token, key material) as a message or a field.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace aibox::log {

enum class Level { debug, info, warning, error };

std::optional<Level> parseLevel(std::string_view name);
void setLevel(Level level);
bool enabled(Level level);

struct Field {
  std::string_view key;  // lower_snake_case; becomes an upper-case journal field
  std::string value;
};

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::info, m, f);
}
inline void warning(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::warning, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::error, m, f);
}

}  // namespace aibox::log
