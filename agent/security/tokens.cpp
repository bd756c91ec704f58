#include "agent/security/security.hpp"

namespace aibox::agent::security {
std::optional<ApiToken> Tokens::check(std::string_view bearer, Clock::time_point now) {
  // aibox_<12 hex id>_<secret>
  if (!bearer.starts_with(kTokenPrefix)) {
    return std::nullopt;
  }
  bearer.remove_prefix(kTokenPrefix.size());
  auto sep = bearer.find('_');
  if (sep == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view id = bearer.substr(0, sep);
  std::string hash = sha256Hex(bearer.substr(sep + 1));
  std::lock_guard lock(mutex_);
  auto it = byId_.find(id);
  if (it == byId_.end() || !constantTimeEquals(hash, it->second.secretHash) ||
      (it->second.expires && *it->second.expires <= now)) {
    return std::nullopt;
  }
  ApiToken before = it->second;
  it->second.lastUsed = now;
  return before;
}

std::pair<std::string, ApiToken> Tokens::create(const std::string& name, const std::string& role,
                                                const std::string& createdBy,
                                                std::optional<Clock::time_point> expires) {
  ApiToken token;
  token.id = sha256Hex(randomToken(16)).substr(0, 12);
  std::string secret = randomToken(32);
  token.secretHash = sha256Hex(secret);
  token.name = name;
  token.role = role;
  token.createdBy = createdBy;
  token.created = Clock::now();
  token.expires = expires;
  {
    std::lock_guard lock(mutex_);
    byId_.emplace(token.id, token);
  }
  return {std::string(kTokenPrefix) + token.id + "_" + secret, token};
}

void Tokens::restore(ApiToken token) {
  std::lock_guard lock(mutex_);
  byId_.emplace(token.id, std::move(token));
}

std::vector<ApiToken> Tokens::list() const {
  std::lock_guard lock(mutex_);
  std::vector<ApiToken> out;
  for (const auto& [id, t] : byId_) {
    out.push_back(t);
  }
  return out;
}

bool Tokens::revoke(const std::string& id) {
  std::lock_guard lock(mutex_);
  return byId_.erase(id) > 0;
}

std::optional<http::Response> Security::authenticate(http::Call& call,
                                                     std::string_view permission) const {
  if (!policy.allow.allows(call.address)) {
    return http::error(http::Status::forbidden, "source_not_allowed",
                       call.address +
                           " may not use the admin API; the allowed networks are set "
                           "in security.admin_allow");
  }
  if (permission == http::kPublic) {
    return std::nullopt;
  }
  auto header = call.request[boost::beast::http::field::authorization];
  if (header.empty()) {
    return sessions.authenticate(call);
  }
  std::string_view value(header.data(), header.size());
  if (!value.starts_with("Bearer ")) {
    return http::error(http::Status::unauthorized, "invalid_token",
                       "the Authorization header must be 'Bearer <API token>'");
  }
  auto now = Clock::now();
  auto token = tokens.check(value.substr(7), now);
  if (!token) {
    return http::error(http::Status::unauthorized, "invalid_token",
                       "unknown, revoked or expired API token");
  }
  call.identity.kind = http::Identity::Kind::token;
  call.identity.name = "token:" + token->name;
  call.identity.role = token->role;
  if (onTokenUsed && (!token->lastUsed || now - *token->lastUsed > std::chrono::minutes(1))) {
    onTokenUsed(token->id, now);
  }
  return std::nullopt;
}

}  // namespace aibox::agent::security
