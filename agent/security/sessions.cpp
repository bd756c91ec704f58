#include <algorithm>

#include "agent/security/security.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::security {
namespace {

// The value of one cookie in a Cookie header ("a=1; aibox_session=xyz").
std::optional<std::string_view> cookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!pair.empty() && pair.front() == ' ') {
      pair.remove_prefix(1);
    }
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

bool mutating(http::Verb verb) {
  return verb != http::Verb::get && verb != http::Verb::head && verb != http::Verb::options;
}

}  // namespace

void Lockout::count(Counter& c, Clock::time_point now) const {
  ++c.failures;
  if (c.failures < policy_.lockoutThreshold) {
    return;
  }
  int doublings = std::min(c.failures - policy_.lockoutThreshold, 20);
  std::chrono::seconds wait =
      std::min<std::chrono::seconds>(policy_.lockoutBase * (1LL << doublings), policy_.lockoutMax);
  c.lockedUntil = now + wait;
}

std::optional<std::chrono::seconds> Lockout::blocked(const std::string& user,
                                                     const std::string& source,
                                                     Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  Clock::time_point until{};
  if (auto it = users_.find(user); it != users_.end()) {
    until = std::max(until, it->second.lockedUntil);
  }
  if (auto it = sources_.find(source); it != sources_.end()) {
    until = std::max(until, it->second.lockedUntil);
  }
  if (until <= now) {
    return std::nullopt;
  }
  return std::chrono::ceil<std::chrono::seconds>(until - now);
}

void Lockout::failed(const std::string& user, const std::string& source, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  count(users_[user], now);
  count(sources_[source], now);
}

void Lockout::succeeded(const std::string& user, const std::string& source) {
  std::lock_guard lock(mutex_);
  users_.erase(user);
  sources_.erase(source);
}

bool Sessions::expired(const Session& s, Clock::time_point now) const {
  return now - s.lastSeen > policy_.sessionIdle || now - s.created > policy_.sessionMax;
}

std::optional<http::Response> Sessions::authenticate(http::Call& call) const {
  auto header = call.request[boost::beast::http::field::cookie];
  auto token = cookieValue(std::string_view(header.data(), header.size()), kSessionCookie);
  if (!token || token->empty()) {
    return std::nullopt;
  }
  std::string hash = sha256Hex(*token);
  auto now = Clock::now();
  std::vector<std::string> gone;
  {
    std::lock_guard lock(mutex_);
    auto it = byHash_.find(hash);
    if (it == byHash_.end()) {
      return std::nullopt;
    }
    Session& s = it->second;
    if (expired(s, now)) {
      gone.push_back(s.id);
      byHash_.erase(it);
    } else {
      if (mutating(call.request.method())) {
        auto csrf = call.request["X-CSRF-Token"];
        if (!constantTimeEquals(std::string_view(csrf.data(), csrf.size()), s.csrfToken)) {
          return http::error(http::Status::forbidden, "csrf_failed",
                             "missing or wrong X-CSRF-Token header: send the csrf_token from "
                             "login or GET /api/v1/auth/session");
        }
      }
      s.lastSeen = now;
      call.identity.kind = http::Identity::Kind::session;
      call.identity.name = "user:" + s.user;
      call.identity.role = s.role;
      call.identity.userId = s.userId;
      call.identity.sessionId = s.id;
      call.identity.mustChangePassword = s.mustChangePassword;
      return std::nullopt;
    }
  }
  if (onExpired_) {
    onExpired_(std::move(gone));
  }
  return std::nullopt;
}

std::pair<std::string, Session> Sessions::create(std::int64_t userId, const std::string& user,
                                                 const std::string& role, bool mustChangePassword,
                                                 const std::string& source) {
  std::string token = randomToken(32);
  Session s;
  s.tokenHash = sha256Hex(token);
  s.id = s.tokenHash.substr(0, 16);
  s.userId = userId;
  s.user = user;
  s.role = role;
  s.mustChangePassword = mustChangePassword;
  s.csrfToken = randomToken(32);
  s.source = source;
  s.created = s.lastSeen = Clock::now();
  std::vector<std::string> gone;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(byHash_, [this, &gone, now = s.created](const auto& entry) {
      if (expired(entry.second, now)) {
        gone.push_back(entry.second.id);
        return true;
      }
      return false;
    });
    byHash_.emplace(s.tokenHash, s);
  }
  if (!gone.empty() && onExpired_) {
    onExpired_(std::move(gone));
  }
  return {std::move(token), std::move(s)};
}

void Sessions::restore(Session session) {
  std::lock_guard lock(mutex_);
  if (!expired(session, Clock::now())) {
    byHash_.emplace(session.tokenHash, std::move(session));
  }
}

std::optional<Session> Sessions::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  for (const auto& [hash, s] : byHash_) {
    if (s.id == id) {
      return s;
    }
  }
  return std::nullopt;
}

std::optional<Session> Sessions::active(const std::string& id) const {
  auto s = find(id);
  if (!s || expired(*s, Clock::now())) {
    return std::nullopt;
  }
  return s;
}

std::vector<Session> Sessions::list() const {
  std::lock_guard lock(mutex_);
  std::vector<Session> out;
  auto now = Clock::now();
  for (const auto& [hash, s] : byHash_) {
    if (!expired(s, now)) {
      out.push_back(s);
    }
  }
  return out;
}

std::vector<std::string> Sessions::revoke(const std::string& id) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> removed;
  std::erase_if(byHash_, [&id, &removed](const auto& entry) {
    if (entry.second.id == id) {
      removed.push_back(id);
      return true;
    }
    return false;
  });
  return removed;
}

std::vector<std::string> Sessions::revokeUser(std::int64_t userId, const std::string& exceptId) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> removed;
  std::erase_if(byHash_, [userId, &exceptId, &removed](const auto& entry) {
    if (entry.second.userId == userId && entry.second.id != exceptId) {
      removed.push_back(entry.second.id);
      return true;
    }
    return false;
  });
  return removed;
}

void Sessions::updateUser(std::int64_t userId, const std::string& role, bool mustChangePassword) {
  std::lock_guard lock(mutex_);
  for (auto& [hash, s] : byHash_) {
    if (s.userId == userId) {
      s.role = role;
      s.mustChangePassword = mustChangePassword;
    }
  }
}

}  // namespace aibox::agent::security
