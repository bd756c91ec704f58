// aibox-agent: the control-plane daemon. See docs/agent.md.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "agent/agent.hpp"
#include "agent/settings.hpp"

int main(int argc, char** argv) {
  std::optional<aibox::agent::Settings> settings;
  try {
    settings = aibox::agent::loadSettings(argc, argv);
  } catch (const aibox::config::Error& e) {
    std::cerr << "aibox-agent: " << e.what() << '\n';
    return 2;
  }
  if (!settings) {
    return 0;  // --help or --version
  }
  int code = aibox::agent::run(*settings);
  if (code == aibox::agent::kRestart) {
    ::execv("/proc/self/exe", argv);
    std::cerr << "aibox-agent: cannot start again: " << std::strerror(errno) << '\n';
    return 1;
  }
  return code;
}
