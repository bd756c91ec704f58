#include "agent/migrations.hpp"

#include <array>

#include "agent/audit/audit.hpp"
#include "agent/hardware/hardware.hpp"
#include "agent/license/license.hpp"
#include "agent/models/models.hpp"
#include "agent/runtimes/runtimes.hpp"
#include "agent/security/security.hpp"
#include "agent/usage/usage.hpp"

namespace aibox::agent {

std::span<const db::Migration> migrations() {
  static const std::array kMigrations{
      db::Migration{1, "agent starts",
                    "CREATE TABLE agent_starts ("
                    " id INTEGER PRIMARY KEY,"
                    " started_at TEXT NOT NULL,"
                    " version TEXT NOT NULL,"
                    " build_id TEXT NOT NULL)"},
      db::Migration{2, "users and sessions", security::kSchema},
      db::Migration{3, "API tokens", security::kTokenSchema},
      db::Migration{4, "audit log", audit::kSchema},
      db::Migration{5, "inference API keys", security::kKeySchema},
      db::Migration{6, "hardware history and events", hardware::kSchema},
      db::Migration{7, "model store", models::kSchema},
      db::Migration{8, "license clock and events", license::kSchema},
      db::Migration{9, "runtime instances and their events", runtimes::kSchema},
      db::Migration{10, "inference keys: requests in flight at once",
                    security::kKeyConcurrencySchema},
      db::Migration{11, "gateway usage", usage::kSchema},
  };
  return kMigrations;
}

}  // namespace aibox::agent
