#include "agent/migrations.hpp"

#include <array>

namespace aibox::agent {

std::span<const db::Migration> migrations() {
  static constexpr std::array kMigrations{
      db::Migration{1, "agent starts",
                    "CREATE TABLE agent_starts ("
                    " id INTEGER PRIMARY KEY,"
                    " started_at TEXT NOT NULL,"
                    " version TEXT NOT NULL,"
                    " build_id TEXT NOT NULL)"},
  };
  return kMigrations;
}

}  // namespace aibox::agent
