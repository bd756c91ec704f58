// "/" and "/<file>": the web console's static files (public, so that the login page loads
// without a session). Every path no API route has comes here; /api/... keeps its JSON 404.
#include "agent/console/console.hpp"

#include "agent/api/api.hpp"

namespace aibox::agent::api {
namespace {

void handleConsoleFile(const std::shared_ptr<const http::Call>& call, const http::Reply& reply,
                       console::Files& files) {
  auto verb = call->request.method();
  if (verb != http::Verb::get && verb != http::Verb::head) {
    auto res = http::error(http::Status::method_not_allowed, "method_not_allowed",
                           std::string(call->request.method_string()) +
                               " is not allowed on a web console file; allowed: GET, HEAD");
    res.set(boost::beast::http::field::allow, "GET, HEAD");
    console::secureHeaders(res.base());
    reply(std::move(res));
    return;
  }
  files.serve(call, reply);
}

}  // namespace

void addConsoleRoutes(http::Router& router, Services& services) {
  router.setFallback(
      "/{file}", http::kPublic, "/api/",
      [&services](const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
        handleConsoleFile(call, reply, services.console);
      });
}

}  // namespace aibox::agent::api
