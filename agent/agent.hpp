#pragma once

#include "agent/settings.hpp"

namespace aibox::agent {

// What run() returns when the agent asked itself to restart (after a factory reset): main()
// starts the same binary again in the same process, so systemd sees no exit.
inline constexpr int kRestart = -1;

// Runs the agent until SIGTERM or SIGINT; returns the process exit code, or kRestart.
int run(const Settings& settings);

}  // namespace aibox::agent
