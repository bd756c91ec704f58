#pragma once
// HTTP over the agent's unix socket with libcurl, for the tools that run beside the agent
// (aiboxctl, aibox-provision).

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

namespace aibox::ctl {

struct HttpResult {
  long status = 0;
  std::string body;
};

// HTTP over the agent's unix socket with libcurl. On a transport failure returns nullopt and
// fills `problem` with one line that says what to do.
class AgentClient {
 public:
  explicit AgentClient(std::filesystem::path socket) : socket_(std::move(socket)) {}
  // With a `sink`, a successful response body is written there instead of into the result.
  std::optional<HttpResult> request(const std::string& method, const std::string& path,
                                    const std::string& body, std::string& problem,
                                    std::ostream* sink = nullptr) const;

 private:
  std::filesystem::path socket_;
};

}  // namespace aibox::ctl
