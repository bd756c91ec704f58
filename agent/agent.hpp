#pragma once

#include "agent/settings.hpp"

namespace aibox::agent {

// Runs the agent until SIGTERM or SIGINT; returns the process exit code.
int run(const Settings& settings);

}  // namespace aibox::agent
