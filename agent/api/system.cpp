#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <fstream>

#include "agent/api/api.hpp"
#include "agent/reset.hpp"
#include "aibox_build_info.hpp"
#include "common/json/json.hpp"

namespace aibox::agent::api {
namespace {

std::string hostName() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) {
    return "unknown";
  }
  return name.data();
}

std::string kernelRelease() {
  utsname name{};
  return ::uname(&name) == 0 ? std::string(name.release) : std::string("unknown");
}

boost::json::value tlsJson(const std::optional<http::CertificateInfo>& tls) {
  if (!tls) {
    return nullptr;
  }
  boost::json::array names;
  for (const auto& n : tls->names) {
    names.emplace_back(n);
  }
  return boost::json::object{{"subject", tls->subject},       {"issuer", tls->issuer},
                             {"serial", tls->serial},         {"not_before", tls->notBefore},
                             {"not_after", tls->notAfter},    {"sha256_fingerprint", tls->sha256},
                             {"key_type", tls->keyType},      {"names", std::move(names)},
                             {"self_signed", tls->selfSigned}};
}

boost::json::value optionalString(const std::optional<std::string>& text) {
  return text ? boost::json::value(*text) : boost::json::value(nullptr);
}

// What the last provisioning report says (aibox-provision writes it; `aibox-provision report
// --verify` checks its signature).
boost::json::object provisioningJson(const config::Paths& paths) {
  auto file = paths.stateDir() / "provisioning" / "report.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return {{"state", "not_provisioned"}, {"report", nullptr}};
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  const auto* report = !ec && value.is_object() ? value.as_object().if_contains("report") : nullptr;
  if (report == nullptr || !report->is_object()) {
    return {{"state", "unreadable"}, {"report", nullptr}, {"file", file.string()}};
  }
  const auto& r = report->as_object();
  boost::json::array steps;
  if (const auto* list = r.if_contains("steps"); list != nullptr && list->is_array()) {
    for (const auto& step : list->as_array()) {
      if (!step.is_object()) {
        continue;
      }
      boost::json::object s;
      for (const char* key : {"step", "status", "message", "seconds"}) {
        if (const auto* v = step.as_object().if_contains(key)) {
          s[key] = *v;
        }
      }
      steps.push_back(std::move(s));
    }
  }
  boost::json::object summary{{"steps", steps},
                              {"signed", value.as_object().contains("signature")},
                              {"file", file.string()}};
  for (const char* key : {"serial", "station", "sku", "started_at", "finished_at", "status"}) {
    if (const auto* v = r.if_contains(key)) {
      summary[key] = *v;
    }
  }
  bool passed = r.if_contains("status") != nullptr && r.at("status") == "PASSED";
  return {{"state", passed ? "provisioned" : "failed"}, {"report", summary}};
}

boost::json::value deviceCertificateJson(const config::Paths& paths) {
  if (!std::filesystem::exists(paths.deviceCertificate())) {
    return nullptr;
  }
  try {
    return tlsJson(http::certificateInfo(paths.deviceCertificate()));
  } catch (const std::exception& e) {
    return boost::json::object{{"error", e.what()}};
  }
}

http::Response systemReport(db::Database& db, const AgentInfo& info) {
  auto stmt = db.prepare(
      "SELECT (SELECT COALESCE(MAX(version), 0) FROM schema_version), (SELECT COUNT(*) FROM "
      "agent_starts)");
  stmt.step();
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 info.startedSteady);
  boost::json::object body{
      {"hostname", hostName()},
      // Read each time: aibox-provision writes it while the agent runs.
      {"serial", optionalString(boxSerial(info.paths))},
      {"machine_id", optionalString(info.machineId)},
      {"kernel", kernelRelease()},
      {"time", isoTime(std::chrono::system_clock::now())},
      {"version", build::kVersion},
      {"build_id", build::kBuildId},
      {"started_at", isoTime(info.startedAt)},
      {"uptime_seconds", uptime.count()},
      {"root", info.paths.root().string()},
      {"schema_version", stmt.integer(0)},
      {"starts", stmt.integer(1)},
      {"tls", tlsJson(info.tls)},
      {"device_certificate", deviceCertificateJson(info.paths)},
      {"provisioning", provisioningJson(info.paths)},
  };
  return http::json(http::Status::ok, body);
}

// Stops the instances, resets the database (agent/reset.hpp) and restarts the agent, which
// then makes a new one-time admin password. The admin types the box's serial to confirm.
void handleFactoryReset(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                        Services& services) {
  auto body = bodyObject(*call, reply);
  if (!body) {
    return;
  }
  json::Reader reader(*body);
  auto confirm = reader.string("confirm");
  reader.rejectUnknown();
  if (!reader.ok()) {
    reply(http::badRequest(*reader.problem()));
    return;
  }
  auto expected = resetConfirmation(services.info.paths);
  if (*confirm != expected) {
    reply(http::badRequest(
        {"invalid_field", "confirm",
         expected == "factory-reset"
             ? "type 'factory-reset' in 'confirm' to reset this box"
             : "type the box's serial number (GET /api/v1/system: serial) in 'confirm' to reset "
               "this box"}));
    return;
  }
  for (const auto& view : services.runtimes.list()) {
    services.runtimes.stopInstance(view.id, "factory reset");
  }
  services.database.post([reply, &services](db::Database& db) {
    try {
      auto done = factoryReset(db, services.info.paths);
      reply(http::json(http::Status::accepted,
                       {{"audit_archived", done.auditArchived},
                        {"users_removed", done.users},
                        {"tokens_removed", done.tokens},
                        {"instances_removed", done.instances},
                        {"models_removed", done.models},
                        {"config_restored", done.configRestored},
                        {"restarting", true},
                        {"admin_password_file",
                         (services.info.paths.stateDir() / "initial-admin-password").string()}}));
      boost::asio::post(services.io, [&services] { services.info.restart(); });
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    } catch (const std::exception& e) {  // the factory config could not be put back
      reply(http::error(http::Status::service_unavailable, "reset_incomplete",
                        std::string("the reset did not finish: ") + e.what() +
                            "; fix it and reset again (nothing more is removed)"));
    }
  });
}

}  // namespace

void addSystemRoutes(http::Router& router, Services& services) {
  router.addAsync(
      http::Verb::get, "/api/v1/system", "system:read",
      [&services](const std::shared_ptr<const http::Call>& /*call*/, const http::Reply& reply) {
        services.database.post([reply, &services](db::Database& db) {
          try {
            reply(systemReport(db, services.info));
          } catch (const db::Error& e) {
            databaseFailed(reply, e);
          }
        });
      });
  router.addAsync(
      http::Verb::post, "/api/v1/system/factory-reset", "system:admin",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleFactoryReset(call, reply, services);
      });
}

}  // namespace aibox::agent::api
