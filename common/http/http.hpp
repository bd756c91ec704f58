#pragma once
// Requests, responses, identities and the router: what a route handler needs. The server
// that feeds the router lives in server.hpp.

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json/json.hpp"

namespace aibox::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Verb = boost::beast::http::verb;
using Status = boost::beast::http::status;

// The permission of routes anyone may call (only /healthz and login).
inline constexpr std::string_view kPublic = "public";

// Who is calling. Until the security issue adds logins, only a unix-socket peer that is root,
// the agent's own user or a member of group aibox-admin is an admin; TCP peers are anonymous.
struct Identity {
  enum class Kind { anonymous, local };
  Kind kind = Kind::anonymous;
  std::string name;  // for logs and audit: "anonymous", "uid:1000"
  std::optional<uid_t> uid;
  bool admin = false;

  bool allows(std::string_view permission) const;
};

// Local identity from a unix socket peer's credentials.
Identity localPeer(uid_t uid, gid_t gid);

struct Call {
  Request request;
  Identity identity;
  std::string remote;      // peer address, for logs
  std::string_view route;  // the matched pattern ("/api/v1/models/{id}"), or "unmatched"
  std::vector<std::pair<std::string, std::string>> params;

  // A path parameter by name; the router guarantees the declared ones exist.
  std::string_view param(std::string_view name) const;
};

// Answers a call exactly once, from any thread.
using Reply = std::function<void(Response)>;
using AsyncHandler = std::function<void(std::shared_ptr<const Call>, Reply)>;
using Handler = std::function<Response(const Call&)>;

// JSON responses. Every error has the body {"error":{"code":...,"message":...}}.
Response json(Status status, const boost::json::value& body);
Response error(Status status, std::string_view code, std::string_view message);
Response badRequest(const json::Problem& problem);

// Method + literal path with {param} segments; each route names the permission it needs.
class Router {
 public:
  void add(Verb verb, std::string_view pattern, std::string_view permission, Handler handler);
  void addAsync(Verb verb, std::string_view pattern, std::string_view permission,
                AsyncHandler handler);

  // Finds the route, checks the caller's permission and runs the handler; answers 404, 405
  // (with Allow), 401 or 403 itself.
  void dispatch(const std::shared_ptr<Call>& call, const Reply& reply) const;

  struct Route {
    Verb verb;
    std::string pattern;
    std::vector<std::string> segments;
    std::string permission;
    AsyncHandler handler;
  };

  struct Match {
    const Route* route = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    std::vector<Verb> allowed;  // when the path exists but not for this method
  };
  Match match(Verb verb, std::string_view target) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace aibox::http
