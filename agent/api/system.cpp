#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "agent/api/api.hpp"
#include "aibox_build_info.hpp"

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

http::Response systemReport(db::Database& db, const AgentInfo& info) {
  auto stmt = db.prepare(
      "SELECT (SELECT COALESCE(MAX(version), 0) FROM schema_version), (SELECT COUNT(*) FROM "
      "agent_starts)");
  stmt.step();
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 info.startedSteady);
  boost::json::object body{
      {"hostname", hostName()},
      {"serial", optionalString(info.serial)},
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
  };
  return http::json(http::Status::ok, body);
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
}

}  // namespace aibox::agent::api
