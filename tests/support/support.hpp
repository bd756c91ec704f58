#pragma once
// Test helpers: temp roots, the real aibox-agent started as a child process with a notify
// socket (as systemd would give it), HTTP through libcurl, raw socket clients and commands.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/files.hpp"

namespace aibox::test {

struct AgentOptions {
  std::vector<std::string> args;          // appended to --root and --listen
  std::chrono::microseconds watchdog{0};  // WATCHDOG_USEC when non-zero
  bool waitReady = true;
};

// The real agent in a temp root, listening on 127.0.0.1 on a free port.
class Agent {
 public:
  explicit Agent(AgentOptions options = {});
  Agent(const std::filesystem::path& root, AgentOptions options);
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;
  ~Agent();

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path socket() const { return root_ / "run/aibox/agent.sock"; }
  std::filesystem::path certificate() const { return root_ / "var/lib/aibox/identity/https.crt"; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  // The next sd_notify message, or nullopt after `timeout`.
  std::optional<std::string> nextNotification(std::chrono::milliseconds timeout);
  // Waits for a notification containing `text`.
  bool waitNotification(const std::string& text, std::chrono::milliseconds timeout);

  void signal(int sig) const;
  // Waits for the process to end; returns its exit code (128+N for signal N), or nullopt.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  std::string log() const;

 private:
  void start(const AgentOptions& options);
  std::optional<TempDir> ownRoot_;
  std::filesystem::path root_;
  int notifyFd_ = -1;
  pid_t pid_ = -1;
  int port_ = 0;
  std::optional<int> exitCode_;
};

// The real `aibox-runtime serve` on a free loopback port, with a notify socket.
class RuntimeServer {
 public:
  // `args` follow "serve --listen 127.0.0.1:0"; waits for READY=1 when `waitReady`.
  explicit RuntimeServer(std::vector<std::string> args, bool waitReady = true);
  RuntimeServer(const RuntimeServer&) = delete;
  RuntimeServer& operator=(const RuntimeServer&) = delete;
  ~RuntimeServer();

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool waitNotification(const std::string& text, std::chrono::milliseconds timeout);
  void signal(int sig) const;
  std::optional<int> wait(std::chrono::milliseconds timeout);
  std::string log() const;

 private:
  TempDir dir_;
  int notifyFd_ = -1;
  pid_t pid_ = -1;
  int port_ = 0;
  std::optional<int> exitCode_;
};

// The real aibox-gateway in `root` (the agent's), on 127.0.0.1 on a free port, with TLS and
// the agent's certificate; `args` follow the fixture's own.
class Gateway {
 public:
  Gateway(const std::filesystem::path& root, std::vector<std::string> args = {});
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;
  ~Gateway();

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::filesystem::path certificate() const { return root_ / "var/lib/aibox/identity/https.crt"; }
  std::filesystem::path metricsSocket() const { return root_ / "run/aibox/gateway.sock"; }
  void signal(int sig) const;
  std::optional<int> wait(std::chrono::milliseconds timeout);
  std::string log() const;

 private:
  std::filesystem::path root_;
  int notifyFd_ = -1;
  pid_t pid_ = -1;
  int port_ = 0;
  std::optional<int> exitCode_;
};

struct HttpReply {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;                           // libcurl's, when the transfer failed
};

struct HttpRequest {
  std::string method = "GET";
  std::string path = "/";
  std::string body;
  std::vector<std::string> headers;
  // For a body that does not end by itself (an event stream): the transfer stops, as a
  // success, once `until` returns true for the body received so far, and fails after
  // `timeout` (the status is kept when the head has arrived).
  std::function<bool(const std::string& body)> until;
  std::chrono::milliseconds timeout{30'000};
};

// Over the agent's unix socket.
HttpReply viaSocket(const Agent& agent, const HttpRequest& request);
// Over HTTPS to 127.0.0.1, verifying the agent's certificate for the name "localhost".
HttpReply viaTls(const Agent& agent, const HttpRequest& request);

// Over HTTPS to the gateway, verifying its certificate for the name "localhost".
HttpReply viaGateway(const Gateway& gateway, const HttpRequest& request);
// Over any unix socket (the gateway's metrics socket).
HttpReply viaUnix(const std::filesystem::path& socket, const HttpRequest& request);

// Plain HTTP to 127.0.0.1:port.
HttpReply viaHttp(int port, const HttpRequest& request);

// A raw connection to a unix socket, for slow or half-sent requests.
class RawClient {
 public:
  explicit RawClient(const std::filesystem::path& socket);
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient();
  bool connected() const { return fd_ >= 0; }
  void send(const std::string& data) const;
  // Reads until the peer closes or `timeout` passes; `closed` tells which.
  std::string readAll(std::chrono::milliseconds timeout, bool& closed) const;
  // Reads one complete response head and its Content-Length body.
  std::string readResponse(std::chrono::milliseconds timeout) const;

 private:
  int fd_ = -1;
};

struct CommandResult {
  int exitCode = -1;
  std::string out;
  std::string err;
};
// Runs argv[0] with arguments, no shell; captures stdout and stderr.
CommandResult run(const std::vector<std::string>& argv, const std::string& input = "");

}  // namespace aibox::test
