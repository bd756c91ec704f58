#pragma once
// Requests, responses, identities and the router: what a route handler needs. The server
// that feeds the router lives in server.hpp.

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/json/json.hpp"

namespace aibox::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Verb = boost::beast::http::verb;
using Status = boost::beast::http::status;

// The permission of routes anyone may call (only /healthz and login).
inline constexpr std::string_view kPublic = "public";
// The permission of routes any caller with an identity may call (their own session and
// password); the only routes open to a user who must change their password first.
inline constexpr std::string_view kAuthenticated = "authenticated";

// Who is calling: a unix-socket peer (root, the agent's own user or a member of group
// aibox-admin is an admin), a logged-in user (session cookie), an API token, or anonymous.
struct Identity {
  enum class Kind { anonymous, local, session, token };
  Kind kind = Kind::anonymous;
  std::string name;  // for logs and audit: "anonymous", "uid:1000", "user:alice"
  std::optional<uid_t> uid;
  bool admin = false;  // a local admin peer
  std::string role;    // a user's or token's role (roles.hpp)
  std::int64_t userId = 0;
  std::string sessionId;
  bool mustChangePassword = false;

  bool allows(std::string_view permission) const;
};

// Local identity from a unix socket peer's credentials.
Identity localPeer(uid_t uid, gid_t gid);

struct Call {
  Request request;
  Identity identity;
  std::string remote;      // peer address and port, for logs
  std::string address;     // peer IP address ("local" for the unix socket), for lock-outs
  std::string_view route;  // the matched pattern ("/api/v1/models/{id}"), or "unmatched"
  std::vector<std::pair<std::string, std::string>> params;
  // What a handler adds to the audit record of this call (never a secret), e.g. the user name
  // of a login attempt.
  mutable boost::json::object auditDetails;

  // A path parameter by name; the router guarantees the declared ones exist.
  std::string_view param(std::string_view name) const;
};

// Percent-decodes one path segment ("%2e" -> "."); nullopt when a '%' is not followed by two
// hex digits.
std::optional<std::string> percentDecode(std::string_view segment);

// Produces a streamed body piece by piece. The server calls it again and again, never on the
// event loop (so it may block on disk) and never two calls at once, each time with an empty
// `out`; it appends at most `max` bytes and returns false once the body is complete. It is
// asked for the next piece only while the previous one is being written, so at most two
// pieces are held. A throw (or, with a contentLength, a body that ends short or runs long)
// closes the connection mid-body: the client sees a truncated transfer.
using BodySource = std::function<bool(std::string& out, std::size_t max)>;

// Produces a body as things happen (server-sent events): asked for the next piece, the source
// answers later, once, by calling `ready` from any thread with at most `max` bytes and whether
// more follows. It is asked on the event loop, so it must not block; it is asked again only
// after it answered. The server drops the source (and so a `ready` it still holds) once the
// connection is closed.
using PieceReady = std::function<void(std::string piece, bool more)>;
using PushSource = std::function<void(std::size_t max, PieceReady ready)>;

// A response whose body is too large to hold in memory (a model bundle) or has no end known
// in advance (an event stream), written as its source produces it: with Content-Length when
// `contentLength` is given, else chunked. Exactly one of `source` and `push` is set. The
// status and headers are sent first, so metrics and audit see the status as for a Response.
struct StreamedResponse {
  Status status = Status::ok;
  boost::beast::http::fields headers;
  std::optional<std::uint64_t> contentLength;
  BodySource source;
  PushSource push;
};

using AnyResponse = std::variant<Response, StreamedResponse>;

// Answers a call exactly once, from any thread, with a Response or a StreamedResponse.
using Reply = std::function<void(AnyResponse)>;
using AsyncHandler = std::function<void(std::shared_ptr<const Call>, Reply)>;
using Handler = std::function<Response(const Call&)>;

// JSON responses. Every error has the body {"error":{"code":...,"message":...}}.
Response json(Status status, const boost::json::value& body);
Response error(Status status, std::string_view code, std::string_view message);
Response badRequest(const json::Problem& problem);

// Turns a request's credentials (cookie, bearer token) into an identity.
class Authenticator {
 public:
  Authenticator() = default;
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;
  virtual ~Authenticator() = default;
  // Called for a call that has no identity from its transport, with the permission of the
  // route it matched. Fills call.identity when the credentials are good; returns a response
  // to send instead when the request must be refused before routing (a source outside the
  // allow-list, a bad token, a missing or wrong CSRF token).
  virtual std::optional<Response> authenticate(Call& call, std::string_view permission) const = 0;
};

// Receives every mutating call (POST, PUT, PATCH, DELETE) that matched a route, with its
// response, whether the route answered or the router refused it. It must pass the response
// on to `send` once the call is recorded, so no change is acknowledged before it is audited.
// For a StreamedResponse it receives the status and headers with an empty body, and the
// stream starts when it calls `send`.
class Auditor {
 public:
  Auditor() = default;
  Auditor(const Auditor&) = delete;
  Auditor& operator=(const Auditor&) = delete;
  virtual ~Auditor() = default;
  virtual void record(const Call& call, Response response, const Reply& send) const = 0;
};

// Method + literal path with {param} segments; each route names the permission it needs.
class Router {
 public:
  void setAuthenticator(const Authenticator* authenticator) { authenticator_ = authenticator; }
  void setAuditor(const Auditor* auditor) { auditor_ = auditor; }

  void add(Verb verb, std::string_view pattern, std::string_view permission, Handler handler);
  void addAsync(Verb verb, std::string_view pattern, std::string_view permission,
                AsyncHandler handler);
  // Takes the calls whose path no route has, whatever their method (the web console's static
  // files), instead of the router's 404, except for paths under `exceptUnder` (the API, whose
  // unknown paths stay 404). The handler answers 404 and 405 itself. Its calls need
  // `permission`, are never audited, and are counted under the route `label`.
  void setFallback(std::string_view label, std::string_view permission,
                   std::string_view exceptUnder, AsyncHandler handler);

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
  const std::vector<Route>& routes() const { return routes_; }

 private:
  // Checks the caller of a matched route (or of the fallback) and runs its handler.
  void run(const std::shared_ptr<Call>& call, std::string_view permission,
           const AsyncHandler& handler, const Reply& reply) const;

  std::vector<Route> routes_;
  std::optional<Route> fallback_;
  std::string fallbackExcept_;
  const Authenticator* authenticator_ = nullptr;
  const Auditor* auditor_ = nullptr;
};

}  // namespace aibox::http
