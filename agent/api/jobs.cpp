// /api/v1/jobs: long work (model imports and verifications) with its progress (model:read;
// cancelling needs model:write).
#include <boost/json/array.hpp>

#include "agent/api/api.hpp"
#include "agent/models/models.hpp"

namespace aibox::agent::api {
namespace {

http::Response noJob(const std::string& id) {
  return http::error(
      http::Status::not_found, "not_found",
      "no job '" + id + "' since the agent started: list them with GET /api/v1/jobs");
}

http::Response handleJobsGet(const http::Call& /*call*/, const models::Jobs& jobs) {
  boost::json::array list;
  for (const auto& j : jobs.list()) {
    list.push_back(models::jobJson(j));
  }
  return http::json(http::Status::ok, {{"jobs", std::move(list)}});
}

http::Response handleJobGet(const http::Call& call, const models::Jobs& jobs) {
  std::string id(call.param("id"));
  auto job = jobs.find(id);
  return job ? http::json(http::Status::ok, models::jobJson(*job)) : noJob(id);
}

http::Response handleJobCancel(const http::Call& call, models::Jobs& jobs) {
  std::string id(call.param("id"));
  call.auditDetails["job"] = id;
  auto job = jobs.find(id);
  if (!job) {
    return noJob(id);
  }
  if (!jobs.cancel(id)) {
    return http::error(http::Status::conflict, "conflict",
                       "job " + id + " has ended (" + job->state + "): nothing to cancel");
  }
  return http::json(http::Status::accepted, models::jobJson(*jobs.find(id)));
}

}  // namespace

void addJobRoutes(http::Router& router, Services& services) {
  router.add(http::Verb::get, "/api/v1/jobs", "model:read",
             [&services](const http::Call& call) { return handleJobsGet(call, services.jobs); });
  router.add(http::Verb::get, "/api/v1/jobs/{id}", "model:read",
             [&services](const http::Call& call) { return handleJobGet(call, services.jobs); });
  router.add(http::Verb::delete_, "/api/v1/jobs/{id}", "model:write",
             [&services](const http::Call& call) { return handleJobCancel(call, services.jobs); });
}

}  // namespace aibox::agent::api
