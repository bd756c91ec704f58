#include "tests/support/support.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace aibox::test {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_un unixAddress(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string p = path.string();
  if (p.size() >= sizeof(addr.sun_path)) {
    throw std::runtime_error("socket path too long: " + p);
  }
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  return addr;
}

std::vector<std::string> childEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("NOTIFY_SOCKET=") || entry.starts_with("WATCHDOG_") ||
        entry.starts_with("AIBOX_ROOT=") || entry.starts_with("JOURNAL_STREAM=")) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const std::filesystem::path& out, const std::filesystem::path& err) {
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  return pid;
}

std::optional<int> waitFor(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (r < 0 || Clock::now() > deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct BodySink {
  std::string* body;
  const std::function<bool(const std::string&)>* until;
  bool satisfied = false;
};

std::size_t collectBody(char* data, std::size_t size, std::size_t count, void* out) {
  auto* sink = static_cast<BodySink*>(out);
  sink->body->append(data, size * count);
  if (*sink->until && (*sink->until)(*sink->body)) {
    sink->satisfied = true;
    return 0;  // stops the transfer
  }
  return size * count;
}

std::size_t collectHeader(char* data, std::size_t size, std::size_t count, void* out) {
  std::string line(data, size * count);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n ") + 1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * count;
}

HttpReply perform(CURL* curl, const HttpRequest& request, const std::string& url) {
  HttpReply reply;
  curl_slist* headers = curl_slist_append(nullptr, "Expect:");
  for (const auto& h : request.headers) {
    headers = curl_slist_append(headers, h.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (!request.body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  BodySink sink{&reply.body, &request.until};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK || sink.satisfied) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  } else {
    reply.error = curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
    }
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

}  // namespace

Agent::Agent(AgentOptions options) : ownRoot_(std::in_place), root_(ownRoot_->path()) {
  start(options);
}

Agent::Agent(const std::filesystem::path& root, AgentOptions options) : root_(root) {
  start(options);
}

void Agent::start(const AgentOptions& options) {
  auto notifyPath = root_ / "notify.sock";
  std::filesystem::remove(notifyPath);
  notifyFd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto addr = unixAddress(notifyPath);
  if (::bind(notifyFd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw std::runtime_error("cannot bind the notify socket");
  }
  // The cheapest password hash the settings allow: tests log in often.
  std::vector<std::string> argv{AIBOX_AGENT_BIN, "--root",      root_.string(),
                                "--listen",      "127.0.0.1:0", "--security.scrypt_log2n=14"};
  argv.insert(argv.end(), options.args.begin(), options.args.end());
  std::vector<std::string> extra{"NOTIFY_SOCKET=" + notifyPath.string()};
  if (options.watchdog.count() > 0) {
    extra.push_back("WATCHDOG_USEC=" + std::to_string(options.watchdog.count()));
  }
  pid_ = spawn(argv, childEnvironment(extra), root_ / "agent.log", root_ / "agent.log");
  if (!options.waitReady) {
    return;
  }
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    auto message = nextNotification(std::chrono::milliseconds(100));
    if (!message) {
      if (auto code = waitFor(pid_, std::chrono::milliseconds(0))) {
        exitCode_ = code;
        throw std::runtime_error("the agent exited with " + std::to_string(*code) +
                                 " before it was ready:\n" + log());
      }
      continue;
    }
    if (message->find("READY=1") == std::string::npos) {
      continue;
    }
    auto at = message->find("127.0.0.1:");
    if (at != std::string::npos) {
      port_ = std::stoi(message->substr(at + 10));
    }
    return;
  }
  throw std::runtime_error("the agent did not become ready in 30 s:\n" + log());
}

Agent::~Agent() {
  if (pid_ > 0 && !exitCode_) {
    ::kill(pid_, SIGTERM);
    if (!waitFor(pid_, std::chrono::seconds(20))) {
      ::kill(pid_, SIGKILL);
      waitFor(pid_, std::chrono::seconds(5));
    }
  }
  if (notifyFd_ >= 0) {
    ::close(notifyFd_);
  }
}

std::optional<std::string> Agent::nextNotification(std::chrono::milliseconds timeout) {
  pollfd p{notifyFd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
    return std::nullopt;
  }
  std::array<char, 4096> buffer{};
  ssize_t n = ::recv(notifyFd_, buffer.data(), buffer.size(), 0);
  if (n <= 0) {
    return std::nullopt;
  }
  return std::string(buffer.data(), static_cast<std::size_t>(n));
}

bool Agent::waitNotification(const std::string& text, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto message = nextNotification(left);
    if (message && message->find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

void Agent::signal(int sig) const {
  ::kill(pid_, sig);
}

std::optional<int> Agent::wait(std::chrono::milliseconds timeout) {
  if (!exitCode_) {
    exitCode_ = waitFor(pid_, timeout);
  }
  return exitCode_;
}

std::string Agent::log() const {
  return readFile(root_ / "agent.log");
}

HttpReply viaSocket(const Agent& agent, const HttpRequest& request) {
  return viaUnix(agent.socket(), request);
}

namespace {

HttpReply viaLocalhostTls(int port, const std::filesystem::path& certificate,
                          const HttpRequest& request) {
  CURL* curl = curl_easy_init();
  std::string portText = std::to_string(port);
  std::string cert = certificate.string();
  curl_slist* resolve =
      curl_slist_append(nullptr, ("localhost:" + portText + ":127.0.0.1").c_str());
  curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(curl, CURLOPT_CAINFO, cert.c_str());
  auto reply = perform(curl, request, "https://localhost:" + portText + request.path);
  curl_slist_free_all(resolve);
  return reply;
}

}  // namespace

HttpReply viaTls(const Agent& agent, const HttpRequest& request) {
  return viaLocalhostTls(agent.port(), agent.certificate(), request);
}

Gateway::Gateway(const std::filesystem::path& root, std::vector<std::string> args) : root_(root) {
  auto notifyPath = root_ / "gateway-notify.sock";
  std::filesystem::remove(notifyPath);
  notifyFd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto addr = unixAddress(notifyPath);
  if (::bind(notifyFd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw std::runtime_error("cannot bind the notify socket");
  }
  std::vector<std::string> argv{AIBOX_GATEWAY_BIN, "--root", root_.string(),
                                "--gateway.listen=127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = spawn(argv, childEnvironment({"NOTIFY_SOCKET=" + notifyPath.string()}),
               root_ / "gateway.log", root_ / "gateway.log");
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    pollfd p{notifyFd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      if (auto code = waitFor(pid_, std::chrono::milliseconds(0))) {
        exitCode_ = code;
        throw std::runtime_error("the gateway exited with " + std::to_string(*code) +
                                 " before it was ready:\n" + log());
      }
      continue;
    }
    std::array<char, 4096> buffer{};
    ssize_t n = ::recv(notifyFd_, buffer.data(), buffer.size(), 0);
    std::string message(buffer.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
    auto at = message.find("127.0.0.1:");
    if (message.find("READY=1") != std::string::npos && at != std::string::npos) {
      port_ = std::stoi(message.substr(at + 10));
      return;
    }
  }
  throw std::runtime_error("the gateway did not become ready in 30 s:\n" + log());
}

Gateway::~Gateway() {
  if (pid_ > 0 && !exitCode_) {
    ::kill(pid_, SIGTERM);
    if (!waitFor(pid_, std::chrono::seconds(20))) {
      ::kill(pid_, SIGKILL);
      waitFor(pid_, std::chrono::seconds(5));
    }
  }
  if (notifyFd_ >= 0) {
    ::close(notifyFd_);
  }
}

void Gateway::signal(int sig) const {
  ::kill(pid_, sig);
}

std::optional<int> Gateway::wait(std::chrono::milliseconds timeout) {
  if (!exitCode_) {
    exitCode_ = waitFor(pid_, timeout);
  }
  return exitCode_;
}

std::string Gateway::log() const {
  return readFile(root_ / "gateway.log");
}

HttpReply viaGateway(const Gateway& gateway, const HttpRequest& request) {
  return viaLocalhostTls(gateway.port(), gateway.certificate(), request);
}

HttpReply viaUnix(const std::filesystem::path& socket, const HttpRequest& request) {
  CURL* curl = curl_easy_init();
  std::string path = socket.string();
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, path.c_str());
  return perform(curl, request, "http://localhost" + request.path);
}

HttpReply viaHttp(int port, const HttpRequest& request) {
  return perform(curl_easy_init(), request,
                 "http://127.0.0.1:" + std::to_string(port) + request.path);
}

RuntimeServer::RuntimeServer(std::vector<std::string> args, bool waitReady) {
  auto notifyPath = dir_.path() / "notify.sock";
  notifyFd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto addr = unixAddress(notifyPath);
  if (::bind(notifyFd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw std::runtime_error("cannot bind the notify socket");
  }
  std::vector<std::string> argv{AIBOX_RUNTIME_BIN, "serve", "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto logPath = dir_.path() / "runtime.log";
  pid_ = spawn(argv, childEnvironment({"NOTIFY_SOCKET=" + notifyPath.string()}), logPath, logPath);
  // The bound port is in the first log line: "listening address=127.0.0.1:PORT".
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (port_ == 0 && Clock::now() < deadline) {
    auto text = log();
    auto at = text.find("address=127.0.0.1:");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      port_ = std::stoi(text.substr(at + 18));
      break;
    }
    if (auto code = waitFor(pid_, std::chrono::milliseconds(0))) {
      exitCode_ = code;
      throw std::runtime_error("aibox-runtime serve exited with " + std::to_string(*code) + ":\n" +
                               log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (port_ == 0) {
    throw std::runtime_error("aibox-runtime serve did not listen in 30 s:\n" + log());
  }
  if (waitReady && !waitNotification("READY=1", std::chrono::seconds(60))) {
    throw std::runtime_error("aibox-runtime serve was not ready in 60 s:\n" + log());
  }
}

RuntimeServer::~RuntimeServer() {
  if (pid_ > 0 && !exitCode_) {
    ::kill(pid_, SIGKILL);
    waitFor(pid_, std::chrono::seconds(5));
  }
  if (notifyFd_ >= 0) {
    ::close(notifyFd_);
  }
}

bool RuntimeServer::waitNotification(const std::string& text, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{notifyFd_, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 1))) <= 0) {
      continue;
    }
    std::array<char, 4096> buffer{};
    ssize_t n = ::recv(notifyFd_, buffer.data(), buffer.size(), 0);
    if (n > 0 && std::string_view(buffer.data(), static_cast<std::size_t>(n)).find(text) !=
                     std::string_view::npos) {
      return true;
    }
  }
  return false;
}

void RuntimeServer::signal(int sig) const {
  ::kill(pid_, sig);
}

std::optional<int> RuntimeServer::wait(std::chrono::milliseconds timeout) {
  if (!exitCode_) {
    exitCode_ = waitFor(pid_, timeout);
  }
  return exitCode_;
}

std::string RuntimeServer::log() const {
  return readFile(dir_.path() / "runtime.log");
}

RawClient::RawClient(const std::filesystem::path& socket) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto addr = unixAddress(socket);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawClient::~RawClient() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void RawClient::send(const std::string& data) const {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

std::string RawClient::readAll(std::chrono::milliseconds timeout, bool& closed) const {
  std::string out;
  closed = false;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      break;
    }
    std::array<char, 4096> buffer{};
    ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n <= 0) {
      closed = true;
      break;
    }
    out.append(buffer.data(), static_cast<std::size_t>(n));
  }
  return out;
}

std::string RawClient::readResponse(std::chrono::milliseconds timeout) const {
  std::string out;
  auto deadline = Clock::now() + timeout;
  std::size_t needed = std::string::npos;
  while (Clock::now() < deadline && (needed == std::string::npos || out.size() < needed)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      break;
    }
    std::array<char, 4096> buffer{};
    ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n <= 0) {
      break;
    }
    out.append(buffer.data(), static_cast<std::size_t>(n));
    auto end = out.find("\r\n\r\n");
    if (end != std::string::npos && needed == std::string::npos) {
      auto cl = out.find("Content-Length: ");
      std::size_t length =
          cl != std::string::npos && cl < end ? std::stoul(out.substr(cl + 16)) : 0;
      needed = end + 4 + length;
    }
  }
  return out;
}

CommandResult run(const std::vector<std::string>& argv, const std::string& input) {
  TempDir dir;
  auto outPath = dir.path() / "out";
  auto errPath = dir.path() / "err";
  std::vector<std::string> args = argv;
  CommandResult result;
  if (!input.empty()) {
    writeFile(dir.path() / "in", input);
    args = {"/bin/sh", "-c", "exec \"$0\" \"$@\" < " + (dir.path() / "in").string()};
    args.insert(args.end(), argv.begin(), argv.end());
  }
  pid_t pid = spawn(args, childEnvironment({}), outPath, errPath);
  result.exitCode = waitFor(pid, std::chrono::seconds(120)).value_or(-1);
  result.out = readFile(outPath);
  result.err = readFile(errPath);
  return result;
}

}  // namespace aibox::test
