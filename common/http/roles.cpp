#include "common/http/roles.hpp"

#include <algorithm>
#include <array>

namespace aibox::http {
namespace {

constexpr std::array<std::string_view, 4> kRoles{"admin", "operator", "auditor", "viewer"};

struct Grant {
  std::string_view role;
  std::string_view pattern;  // "*", "resource:*", "*:read" or an exact permission
};

// Order does not matter; a permission is allowed when any grant of the role matches it.
constexpr std::array kGrants{
    Grant{"admin", "*"},
    Grant{"operator", "*:read"},
    Grant{"operator", "model:*"},
    Grant{"operator", "runtime:*"},
    Grant{"operator", "alert:*"},
    Grant{"auditor", "*:read"},
    Grant{"auditor", "audit:read"},
    Grant{"viewer", "*:read"},
};

bool matches(std::string_view pattern, std::string_view permission) {
  if (pattern == "*") {
    return true;
  }
  auto colon = permission.find(':');
  if (colon == std::string_view::npos) {
    return pattern == permission;
  }
  std::string_view resource = permission.substr(0, colon);
  std::string_view action = permission.substr(colon + 1);
  if (pattern == "*:read") {
    return action == "read" && resource != "audit";
  }
  if (pattern.ends_with(":*")) {
    return pattern.substr(0, pattern.size() - 2) == resource;
  }
  return pattern == permission;
}

}  // namespace

bool roleAllows(std::string_view role, std::string_view permission) {
  if (role == "viewer" && permission.starts_with("key:")) {
    return false;
  }
  // What aibox-gateway pulls (key hashes, instance tokens): local peers on the unix socket
  // only, never a user or a token, whatever the role.
  if (permission == "gateway:sync") {
    return false;
  }
  return std::any_of(kGrants.begin(), kGrants.end(), [role, permission](const Grant& g) {
    return g.role == role && matches(g.pattern, permission);
  });
}

std::span<const std::string_view> roles() {
  return kRoles;
}

bool isRole(std::string_view name) {
  return std::find(kRoles.begin(), kRoles.end(), name) != kRoles.end();
}

}  // namespace aibox::http
