#include <boost/asio/ip/address.hpp>

#include "agent/security/security.hpp"

namespace aibox::agent::security {
namespace {

std::string trim(std::string_view s) {
  auto begin = s.find_first_not_of(" \t");
  auto end = s.find_last_not_of(" \t");
  return begin == std::string_view::npos ? "" : std::string(s.substr(begin, end - begin + 1));
}

}  // namespace

std::optional<std::string> parseAllowList(std::string_view text, Policy& policy) {
  policy.allow4.clear();
  policy.allow6.clear();
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) {
      continue;
    }
    if (item.find('/') == std::string::npos) {
      item += item.find(':') == std::string::npos ? "/32" : "/128";
    }
    boost::system::error_code ec;
    if (item.find(':') == std::string::npos) {
      auto net = boost::asio::ip::make_network_v4(item, ec);
      if (!ec) {
        policy.allow4.push_back(net.canonical());
        continue;
      }
    } else {
      auto net = boost::asio::ip::make_network_v6(item, ec);
      if (!ec) {
        policy.allow6.push_back(net.canonical());
        continue;
      }
    }
    return "'" + item + "' is not a network such as 10.0.0.0/8 or 2001:db8::/32";
  }
  return std::nullopt;
}

bool allowedSource(const Policy& policy, std::string_view address) {
  if (policy.allow4.empty() && policy.allow6.empty()) {
    return true;
  }
  boost::system::error_code ec;
  auto ip = boost::asio::ip::make_address(std::string(address), ec);
  if (ec) {
    return false;
  }
  if (ip.is_v6() && ip.to_v6().is_v4_mapped()) {
    ip = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, ip.to_v6());
  }
  if (ip.is_v4()) {
    for (const auto& net : policy.allow4) {
      if (boost::asio::ip::make_network_v4(ip.to_v4(), net.prefix_length()).canonical() == net) {
        return true;
      }
    }
    return false;
  }
  for (const auto& net : policy.allow6) {
    if (boost::asio::ip::make_network_v6(ip.to_v6(), net.prefix_length()).canonical() == net) {
      return true;
    }
  }
  return false;
}

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
  if (!allowedSource(policy, call.address)) {
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
