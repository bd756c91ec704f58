#include <boost/json/parse.hpp>
#include <iostream>

#include "agent/ctl/ctl.hpp"

namespace aibox::ctl {

std::optional<boost::json::value> callAgent(const Options& options, const std::string& method,
                                            const std::string& path, const std::string& body,
                                            int& exitCode) {
  std::string problem;
  auto result = AgentClient(options.socket).request(method, path, body, problem);
  if (!result) {
    exitCode = agentDown(options, problem);
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto value = boost::json::parse(result->body, ec);
  if (result->status < 200 || result->status > 299) {
    if (options.json) {
      std::cout << result->body;
    } else {
      std::cerr << "aiboxctl: " << errorMessage(*result) << '\n';
    }
    exitCode = kFailed;
    return std::nullopt;
  }
  if (ec) {
    std::cerr << "aiboxctl: the agent sent an unreadable answer: " << result->body << '\n';
    exitCode = kFailed;
    return std::nullopt;
  }
  exitCode = kOk;
  return value;
}

}  // namespace aibox::ctl
