#pragma once
// The one table that maps roles to permissions. A permission is "resource:action"
// (model:read, model:write, runtime:control, user:admin, audit:read, key:admin, ...).

#include <span>
#include <string_view>

namespace aibox::http {

// admin (everything), operator (read all, model:*, runtime:*, alert:*), auditor (read all,
// audit:read), viewer (read all but audit and keys). "Read all" is every "*:read" except
// audit:read.
bool roleAllows(std::string_view role, std::string_view permission);

std::span<const std::string_view> roles();
bool isRole(std::string_view name);

}  // namespace aibox::http
