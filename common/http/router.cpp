#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <stdexcept>
#include <variant>

#include "common/http/http.hpp"
#include "common/http/roles.hpp"
#include "common/log/log.hpp"

namespace aibox::http {
namespace {

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  std::size_t start = 1;  // skip the leading '/'
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

bool isParam(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// A streamed response is audited by its status and headers; the stream waits for the record.
void audit(const Auditor& auditor, const Call& call, AnyResponse res, const Reply& send) {
  if (auto* plain = std::get_if<Response>(&res)) {
    auditor.record(call, std::move(*plain), send);
    return;
  }
  auto streamed = std::make_shared<StreamedResponse>(std::get<StreamedResponse>(std::move(res)));
  Response head{streamed->status, 11};
  for (const auto& field : streamed->headers) {
    head.insert(field.name_string(), field.value());
  }
  auditor.record(call, std::move(head),
                 [send, streamed](const AnyResponse& /*head*/) { send(std::move(*streamed)); });
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

std::optional<std::string> percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) {
      return std::nullopt;
    }
    int hi = hexValue(s[i + 1]);
    int lo = hexValue(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

bool Identity::allows(std::string_view permission) const {
  if (permission == kPublic) {
    return true;
  }
  if (kind == Kind::anonymous) {
    return false;
  }
  if (permission == kAuthenticated || admin) {
    return true;
  }
  return (kind == Kind::session || kind == Kind::token) && roleAllows(role, permission);
}

Identity localPeer(uid_t uid, gid_t gid) {
  Identity id;
  id.kind = Identity::Kind::local;
  id.uid = uid;
  id.name = "uid:" + std::to_string(uid);
  if (uid == 0 || uid == geteuid()) {
    id.admin = true;
    return id;
  }
  std::array<char, 4096> buffer{};
  group grp{};
  group* found = nullptr;
  if (getgrnam_r("aibox-admin", &grp, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return id;
  }
  gid_t adminGid = found->gr_gid;
  if (gid == adminGid) {
    id.admin = true;
    return id;
  }
  passwd pw{};
  passwd* user = nullptr;
  std::array<char, 4096> pwBuffer{};
  if (getpwuid_r(uid, &pw, pwBuffer.data(), pwBuffer.size(), &user) != 0 || user == nullptr) {
    return id;
  }
  std::vector<gid_t> groups(64);
  int count = static_cast<int>(groups.size());
  if (getgrouplist(user->pw_name, gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    getgrouplist(user->pw_name, gid, groups.data(), &count);
  }
  groups.resize(static_cast<std::size_t>(std::max(count, 0)));
  id.admin = std::find(groups.begin(), groups.end(), adminGid) != groups.end();
  return id;
}

std::string_view Call::param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) {
      return value;
    }
  }
  return {};
}

void Router::add(Verb verb, std::string_view pattern, std::string_view permission,
                 Handler handler) {
  addAsync(verb, pattern, permission,
           [handler = std::move(handler)](const std::shared_ptr<const Call>& call,
                                          const Reply& reply) { reply(handler(*call)); });
}

void Router::addAsync(Verb verb, std::string_view pattern, std::string_view permission,
                      AsyncHandler handler) {
  if (pattern.empty() || pattern.front() != '/' || permission.empty()) {
    throw std::invalid_argument("route needs a path starting with '/' and a permission: " +
                                std::string(pattern));
  }
  Route route{verb, std::string(pattern), {}, std::string(permission), std::move(handler)};
  for (auto segment : splitPath(route.pattern)) {
    route.segments.emplace_back(segment);
  }
  routes_.push_back(std::move(route));
}

Router::Match Router::match(Verb verb, std::string_view target) const {
  Match result;
  std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') {
    return result;
  }
  auto segments = splitPath(path);
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) {
      continue;
    }
    std::vector<std::pair<std::string, std::string>> params;
    bool matches = true;
    for (std::size_t i = 0; i < segments.size() && matches; ++i) {
      const auto& expected = route.segments[i];
      if (isParam(expected)) {
        auto value = percentDecode(segments[i]);
        matches = value && !value->empty() && *value != "." && *value != ".." &&
                  value->find('/') == std::string::npos;
        if (matches) {
          params.emplace_back(expected.substr(1, expected.size() - 2), std::move(*value));
        }
      } else {
        matches = expected == segments[i];
      }
    }
    if (!matches) {
      continue;
    }
    if (route.verb == verb) {
      result.route = &route;
      result.params = std::move(params);
      return result;
    }
    result.allowed.push_back(route.verb);
  }
  return result;
}

void Router::setFallback(std::string_view label, std::string_view permission,
                         std::string_view exceptUnder, AsyncHandler handler) {
  fallback_ =
      Route{Verb::unknown, std::string(label), {}, std::string(permission), std::move(handler)};
  fallbackExcept_ = exceptUnder;
}

void Router::dispatch(const std::shared_ptr<Call>& call, const Reply& plainReply) const {
  auto found = match(call->request.method(), call->request.target());
  Reply reply = plainReply;
  Verb verb = call->request.method();
  if (found.route != nullptr && auditor_ != nullptr && verb != Verb::get && verb != Verb::head &&
      verb != Verb::options) {
    reply = [auditor = auditor_, call, plainReply](AnyResponse res) {
      audit(*auditor, *call, std::move(res), plainReply);
    };
  }
  std::string_view target(call->request.target().data(), call->request.target().size());
  if (found.route == nullptr && found.allowed.empty() && fallback_ &&
      !(fallbackExcept_.size() > 0 && target.starts_with(fallbackExcept_))) {
    call->route = fallback_->pattern;
    run(call, fallback_->permission, fallback_->handler, reply);
    return;
  }
  if (found.route == nullptr) {
    call->route = "unmatched";
    if (found.allowed.empty()) {
      reply(error(Status::not_found, "not_found",
                  "no such resource: " + std::string(call->request.target())));
      return;
    }
    std::string allow;
    for (auto allowed : found.allowed) {
      allow += allow.empty() ? "" : ", ";
      allow += boost::beast::http::to_string(allowed);
    }
    auto res = error(
        Status::method_not_allowed, "method_not_allowed",
        std::string(call->request.method_string()) + " is not allowed here; allowed: " + allow);
    res.set(boost::beast::http::field::allow, allow);
    reply(std::move(res));
    return;
  }
  const Route& route = *found.route;
  call->route = route.pattern;
  call->params = std::move(found.params);
  run(call, route.permission, route.handler, reply);
}

void Router::run(const std::shared_ptr<Call>& call, std::string_view permission,
                 const AsyncHandler& handler, const Reply& reply) const {
  if (authenticator_ != nullptr && call->identity.kind == Identity::Kind::anonymous) {
    if (auto refusal = authenticator_->authenticate(*call, permission)) {
      reply(std::move(*refusal));
      return;
    }
  }
  const Identity& who = call->identity;
  if (who.mustChangePassword && permission != kPublic && permission != kAuthenticated) {
    reply(error(Status::forbidden, "password_change_required",
                "change your password first: POST /api/v1/auth/password with old_password and "
                "new_password"));
    return;
  }
  if (!who.allows(permission)) {
    if (who.kind == Identity::Kind::anonymous) {
      reply(error(Status::unauthorized, "unauthenticated",
                  "log in first (POST /api/v1/auth/login); this route needs permission '" +
                      std::string(permission) + "'"));
    } else {
      reply(
          error(Status::forbidden, "forbidden",
                who.name + " lacks permission '" + std::string(permission) + "'" +
                    (who.kind == Identity::Kind::local ? ": join group aibox-admin"
                                                       : ": ask an admin for a role that has it")));
    }
    return;
  }
  try {
    handler(call, reply);
  } catch (const std::exception& e) {
    log::error("route handler failed", {{"route", std::string(call->route)}, {"error", e.what()}});
    reply(error(Status::internal_server_error, "internal",
                "internal error; the agent log has the details"));
  }
}

}  // namespace aibox::http
