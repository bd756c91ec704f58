#include "agent/api/api.hpp"

namespace aibox::agent::api {
namespace {

http::Response handleHealthGet(const http::Call& /*call*/) {
  return http::json(http::Status::ok, {{"status", "ok"}});
}

}  // namespace

void addHealthRoutes(http::Router& router) {
  router.add(http::Verb::get, "/healthz", http::kPublic, handleHealthGet);
}

}  // namespace aibox::agent::api
