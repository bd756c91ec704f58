#include "agent/reset.hpp"

#include <fstream>

#include "agent/audit/audit.hpp"
#include "common/fs/fs.hpp"
#include "common/log/log.hpp"

namespace aibox::agent {
namespace {

std::int64_t count(db::Database& db, const std::string& sql) {
  auto s = db.prepare(sql);
  s.step();
  return s.integer(0);
}

}  // namespace

FactoryReset factoryReset(db::Database& db, const config::Paths& paths) {
  FactoryReset out;
  out.auditArchived = audit::archive(db, paths.stateDir() / "audit", "9999");
  db.transaction([&out](db::Database& d) {
    out.users = count(d, "SELECT COUNT(*) FROM users");
    out.tokens = count(d,
                       "SELECT (SELECT COUNT(*) FROM api_tokens) + "
                       "(SELECT COUNT(*) FROM inference_keys)");
    out.instances = count(d, "SELECT COUNT(*) FROM runtime_instances");
    const char* imported = "json_extract(labels, '$.origin') IS NOT 'factory'";
    out.models = count(d, std::string("SELECT COUNT(*) FROM models WHERE ") + imported);
    d.exec(
        "DELETE FROM sessions; DELETE FROM api_tokens; DELETE FROM inference_keys;"
        "DELETE FROM users; DELETE FROM usage_hourly; DELETE FROM usage_batches;"
        "DELETE FROM runtime_events; DELETE FROM runtime_instances;");
    d.exec(std::string("DELETE FROM model_jobs WHERE model_id IN (SELECT id FROM models WHERE ") +
           imported + "); DELETE FROM models WHERE " + imported);
  });
  auto factoryConfig = paths.stateDir() / "provisioning" / "factory-aibox.conf";
  if (std::ifstream in(factoryConfig, std::ios::binary); in) {
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fs::makeDirectories(paths.configFile().parent_path(), 0755);
    fs::writeFileAtomic(paths.configFile(), text, 0644);
    out.configRestored = true;
  }
  std::error_code ec;
  std::filesystem::remove(paths.stateDir() / "initial-admin-password", ec);
  log::warning("factory reset", {{"audit_archived", std::to_string(out.auditArchived)},
                                 {"users", std::to_string(out.users)},
                                 {"tokens", std::to_string(out.tokens)},
                                 {"instances", std::to_string(out.instances)},
                                 {"models", std::to_string(out.models)}});
  return out;
}

std::optional<std::string> boxSerial(const config::Paths& paths) {
  std::ifstream in(paths.identityDir() / "serial");
  std::string serial;
  if (in && std::getline(in, serial) && !serial.empty()) {
    return serial;
  }
  return std::nullopt;
}

std::string resetConfirmation(const config::Paths& paths) {
  return boxSerial(paths).value_or("factory-reset");
}

}  // namespace aibox::agent
