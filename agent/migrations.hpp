#pragma once

#include <span>

#include "common/db/db.hpp"

namespace aibox::agent {

// The agent's schema, oldest first. Append only: a released migration never changes.
std::span<const db::Migration> migrations();

}  // namespace aibox::agent
