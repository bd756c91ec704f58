// aibox-gateway: the OpenAI-compatible front door for applications. See docs/gateway.md.
#include <iostream>

#include "runtime/gateway/gateway.hpp"

int main(int argc, char** argv) {
  std::optional<aibox::gateway::Settings> settings;
  try {
    settings = aibox::gateway::loadSettings(argc, argv);
  } catch (const aibox::config::Error& e) {
    std::cerr << "aibox-gateway: " << e.what() << '\n';
    return 2;
  }
  if (!settings) {
    return 0;  // --help or --version
  }
  return aibox::gateway::run(*settings);
}
