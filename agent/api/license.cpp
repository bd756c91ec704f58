// /api/v1/license: the installed license, its state and entitlements with their usage, the
// box's fingerprint (license:read); installing a renewal (license:write). docs/licensing.md.
#include <boost/json/array.hpp>
#include <set>

#include "agent/api/api.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::api {
namespace {

boost::json::object usageJson(db::Database& db, const runtimes::Supervisor& supervisor) {
  std::int64_t instances = 0;
  std::set<std::string> gpus;
  for (const auto& v : supervisor.list()) {
    if (v.desiredRunning && v.state != runtimes::State::failed &&
        v.state != runtimes::State::crash_loop) {
      ++instances;
      if (v.placement) {
        gpus.insert(v.placement->gpus.begin(), v.placement->gpus.end());
      }
    }
  }
  return {
      {"models", models::listModels(db).size()}, {"instances", instances}, {"gpus", gpus.size()}};
}

boost::json::array eventsJson(db::Database& db) {
  boost::json::array out;
  for (const auto& e : license::Service::events(db, 20)) {
    out.push_back(
        boost::json::object{{"time", isoTime(e.time)}, {"type", e.type}, {"message", e.message}});
  }
  return out;
}

void handleLicenseGet(const http::Reply& reply, Services& services) {
  services.database.post([reply, &services](db::Database& db) {
    try {
      auto out = license::licenseJson(services.license.status());
      out["usage"] = usageJson(db, services.runtimes);
      out["events"] = eventsJson(db);
      reply(http::json(http::Status::ok, out));
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

void handleLicensePut(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                      Services& services) {
  // The body is the license file as the vendor sent it. Installing writes a file: not on the
  // event loop.
  services.database.post([call, reply, &services](db::Database&) {
    try {
      auto result = services.license.install(call->request.body());
      if (auto* problem = std::get_if<std::string>(&result)) {
        call->auditDetails["refused"] = *problem;
        reply(http::error(http::Status::bad_request, "invalid_license", *problem));
        return;
      }
      auto status = std::get<license::Status>(std::move(result));
      call->auditDetails["license"] = status.file->license.id;
      // After the events the install posted, so that the answer lists them.
      services.database.post([reply, &services, status = std::move(status)](db::Database& d) {
        try {
          auto out = license::licenseJson(status);
          out["usage"] = usageJson(d, services.runtimes);
          out["events"] = eventsJson(d);
          reply(http::json(http::Status::ok, out));
        } catch (const db::Error& e) {
          databaseFailed(reply, e);
        }
      });
    } catch (const db::Error& e) {
      databaseFailed(reply, e);
    }
  });
}

}  // namespace

void addLicenseRoutes(http::Router& router, Services& services) {
  router.addAsync(http::Verb::get, "/api/v1/license", "license:read",
                  [&services](const std::shared_ptr<const http::Call>&, const http::Reply& reply) {
                    handleLicenseGet(reply, services);
                  });
  router.addAsync(
      http::Verb::put, "/api/v1/license", "license:write",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleLicensePut(call, reply, services);
      });
  router.add(http::Verb::get, "/api/v1/license/fingerprint", "license:read",
             [&services](const http::Call&) {
               auto status = services.license.status();
               auto out = license::fingerprintJson(status.fingerprint);
               out["gpus_pending"] = status.gpusPending;
               return http::json(http::Status::ok, out);
             });
}

void renderLicenseMetrics(license::Service& service, std::string& out) {
  auto status = service.status();
  out += "# HELP aibox_license_state The license state: 1 for the current one.\n";
  out += "# TYPE aibox_license_state gauge\n";
  for (auto state : {license::State::valid, license::State::grace, license::State::expired,
                     license::State::invalid, license::State::none}) {
    out += "aibox_license_state{state=\"" + std::string(license::stateName(state)) + "\"} " +
           (status.evaluation.state == state ? "1" : "0") + "\n";
  }
  if (status.file) {
    out +=
        "# HELP aibox_license_expiry_seconds Seconds until the license expires (negative "
        "once it has; the grace period follows).\n";
    out += "# TYPE aibox_license_expiry_seconds gauge\n";
    out +=
        "aibox_license_expiry_seconds " + std::to_string(status.evaluation.secondsToExpiry) + "\n";
    const auto& l = status.file->license;
    out += "# HELP aibox_license_grace_end_seconds Seconds until the grace period ends.\n";
    out += "# TYPE aibox_license_grace_end_seconds gauge\n";
    out += "aibox_license_grace_end_seconds " +
           std::to_string(status.evaluation.secondsToExpiry + l.graceSeconds) + "\n";
  }
}

}  // namespace aibox::agent::api
