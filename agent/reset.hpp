#pragma once
// Factory reset (docs/provisioning.md): the box goes back to how it left the factory. Shared by
// the agent's POST /api/v1/system/factory-reset and `aibox-provision reset` (agent stopped).

#include <cstdint>
#include <optional>
#include <string>

#include "common/config/config.hpp"
#include "common/db/db.hpp"

namespace aibox::agent {

struct FactoryReset {
  std::int64_t auditArchived = 0;
  std::int64_t users = 0;
  std::int64_t tokens = 0;  // API tokens and inference keys
  std::int64_t instances = 0;
  std::int64_t models = 0;  // imported, not factory (label origin=factory)
  bool configRestored = false;
};

// With the instances stopped: archives the whole audit log (the chain stays verifiable across
// the cut), then in one transaction removes users, sessions, tokens, inference keys, usage,
// instances and imported models with their jobs; puts back the factory config kept by
// provisioning and removes the first-admin password file, so the next agent start makes a new
// one-time admin password. Identity, license, hardware history and factory models stay. Model
// blobs no model references go at the next agent start. A crash part-way is finished by
// running it again.
FactoryReset factoryReset(db::Database& db, const config::Paths& paths);

// The provisioned serial (/var/lib/aibox/identity/serial), when there is one.
std::optional<std::string> boxSerial(const config::Paths& paths);

// The text an admin types to confirm a reset: the box's serial, or "factory-reset" when it has
// none.
std::string resetConfirmation(const config::Paths& paths);

}  // namespace aibox::agent
