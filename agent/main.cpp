// aibox-agent: the control-plane daemon. See docs/agent.md.
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
  return aibox::agent::run(*settings);
}
