#include "tests/support/http_file_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace aibox::test {
namespace {

constexpr std::size_t kMaxRequestBytes = 64 << 10;
constexpr std::size_t kChunkBytes = 64 << 10;

[[noreturn]] void throwErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Waits until `fd` is readable (or hung up); false when the server stops first.
bool waitReadable(int fd, int stopFd) {
  std::array<pollfd, 2> fds{{{fd, POLLIN, 0}, {stopFd, POLLIN, 0}}};
  while (::poll(fds.data(), fds.size(), -1) < 0) {
    if (errno != EINTR) {
      return false;
    }
  }
  return (fds[1].revents & POLLIN) == 0;
}

bool sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The head of a request, up to the empty line; "" when the client went away.
std::string readHead(int fd, int stopFd) {
  std::string head;
  std::array<char, 4096> buffer{};
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < kMaxRequestBytes) {
    if (!waitReadable(fd, stopFd)) {
      return {};
    }
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return {};
    }
    head.append(buffer.data(), static_cast<std::size_t>(n));
  }
  return head;
}

std::optional<std::uint64_t> parseNumber(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 416:
      return "Range Not Satisfiable";
    default:
      return "Error";
  }
}

std::string statusLine(int status) {
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason(status)) + "\r\n";
}

bool sendError(int fd, int status, bool withBody) {
  std::string body = std::string(reason(status)) + "\n";
  std::string head = statusLine(status) +
                     "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n";
  return sendAll(fd, withBody ? head + body : head);
}

HttpFileServer::Request parseRequest(const std::string& head) {
  HttpFileServer::Request request;
  std::string_view rest(head);
  std::size_t lineEnd = rest.find("\r\n");
  std::string_view first = rest.substr(0, lineEnd);
  std::size_t space = first.find(' ');
  request.method = std::string(first.substr(0, space));
  if (space != std::string_view::npos) {
    std::string_view target = first.substr(space + 1);
    request.target = std::string(target.substr(0, target.find(' ')));
  }
  rest.remove_prefix(std::min(rest.size(), lineEnd + 2));
  constexpr std::string_view kRange = "range:";
  while (!rest.empty()) {
    lineEnd = rest.find("\r\n");
    std::string_view line = rest.substr(0, lineEnd);
    if (line.size() > kRange.size() &&
        ::strncasecmp(line.data(), kRange.data(), kRange.size()) == 0) {
      std::string_view value = line.substr(kRange.size());
      value.remove_prefix(std::min(value.size(), value.find_first_not_of(' ')));
      request.range = std::string(value);
    }
    rest.remove_prefix(std::min(rest.size(), lineEnd + 2));
  }
  return request;
}

}  // namespace

HttpFileServer::HttpFileServer(std::filesystem::path root) : root_(std::move(root)) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) {
    throwErrno("socket");
  }
  int on = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(0x7f000001);  // 127.0.0.1
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener_, 16) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int error = errno;
    ::close(listener_);
    throw std::system_error(error, std::generic_category(), "cannot listen on 127.0.0.1");
  }
  port_ = ntohs(address.sin_port);
  std::array<int, 2> pipe{};
  if (::pipe2(pipe.data(), O_CLOEXEC) != 0) {
    int error = errno;
    ::close(listener_);
    throw std::system_error(error, std::generic_category(), "pipe2");
  }
  stopRead_ = pipe[0];
  stopWrite_ = pipe[1];
  thread_ = std::thread([this] { serve(); });
}

HttpFileServer::~HttpFileServer() {
  char stop = 's';
  while (::write(stopWrite_, &stop, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  ::close(stopRead_);
  ::close(stopWrite_);
  ::close(listener_);
}

std::string HttpFileServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
}

void HttpFileServer::dropAfterBytes(std::uint64_t bytes, int requests) {
  std::lock_guard lock(mutex_);
  dropAfter_ = bytes;
  dropRequests_ = requests;
}

void HttpFileServer::stallAfterBytes(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  stallAfter_ = bytes;
}

void HttpFileServer::failWith(int status, int requests) {
  std::lock_guard lock(mutex_);
  failStatus_ = status;
  failRequests_ = requests;
}

void HttpFileServer::ignoreRange(bool ignore) {
  std::lock_guard lock(mutex_);
  ignoreRange_ = ignore;
}

std::vector<HttpFileServer::Request> HttpFileServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void HttpFileServer::serve() {
  while (waitReadable(listener_, stopRead_)) {
    int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) {
      continue;
    }
    handle(connection);
    ::shutdown(connection, SHUT_WR);
    ::close(connection);
  }
}

HttpFileServer::Faults HttpFileServer::record(const Request& request) {
  std::lock_guard lock(mutex_);
  requests_.push_back(request);
  Faults faults;
  faults.ignoreRange = ignoreRange_;
  if (failRequests_ > 0) {
    --failRequests_;
    faults.status = failStatus_;
  } else if (request.method == "GET" && dropRequests_ > 0) {
    --dropRequests_;
    faults.sendLimit = dropAfter_;
  } else if (request.method == "GET" && stallAfter_) {
    faults.sendLimit = stallAfter_;
    faults.stall = true;
  }
  return faults;
}

void HttpFileServer::handle(int connection) {
  std::string head = readHead(connection, stopRead_);
  if (head.empty()) {
    return;
  }
  Request request = parseRequest(head);
  Faults faults = record(request);
  bool withBody = request.method != "HEAD";
  if (faults.status != 0) {
    sendError(connection, faults.status, withBody);
  } else if (request.method != "GET" && request.method != "HEAD") {
    sendError(connection, 405, withBody);
  } else {
    sendFile(connection, request, faults);
  }
}

void HttpFileServer::sendFile(int connection, const Request& request, const Faults& faults) {
  std::string path = request.target.substr(0, request.target.find('?'));
  std::error_code ec;
  std::filesystem::path file = root_ / std::filesystem::path(path).relative_path();
  if (path.find("..") != std::string::npos || !std::filesystem::is_regular_file(file, ec)) {
    sendError(connection, 404, request.method != "HEAD");
    return;
  }
  std::uint64_t size = std::filesystem::file_size(file, ec);
  std::uint64_t first = 0;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  bool ranged = false;
  constexpr std::string_view kBytes = "bytes=";
  std::string_view range(request.range);
  if (!faults.ignoreRange && range.starts_with(kBytes)) {
    range.remove_prefix(kBytes.size());
    std::size_t dash = range.find('-');
    auto start = parseNumber(range.substr(0, dash));
    auto end = dash == std::string_view::npos ? std::nullopt : parseNumber(range.substr(dash + 1));
    if (start) {
      ranged = true;
      first = *start;
      last = end ? std::min(*end, last) : last;
    }
  }
  if (ranged && (first >= size || first > last)) {
    std::string head = statusLine(416) + "Content-Range: bytes */" + std::to_string(size) +
                       "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    sendAll(connection, head);
    return;
  }
  std::uint64_t length = size == 0 ? 0 : last - first + 1;
  std::string head = statusLine(ranged ? 206 : 200) +
                     "Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\n"
                     "Content-Length: " +
                     std::to_string(length) + "\r\n";
  if (ranged) {
    head += "Content-Range: bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
            std::to_string(size) + "\r\n";
  }
  head += "Connection: close\r\n\r\n";
  if (!sendAll(connection, head) || request.method == "HEAD") {
    return;
  }

  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return;
  }
  std::uint64_t toSend = std::min(length, faults.sendLimit.value_or(length));
  std::string buffer(kChunkBytes, '\0');
  for (std::uint64_t sent = 0; sent < toSend;) {
    std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, toSend - sent));
    ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(first + sent));
    if (n <= 0 ||
        !sendAll(connection, std::string_view(buffer.data(), static_cast<std::size_t>(n)))) {
      break;
    }
    sent += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  if (faults.stall && toSend < length) {
    // Holds the connection open, sending nothing, until the client gives up.
    std::array<char, 4096> drain{};
    while (waitReadable(connection, stopRead_) &&
           ::recv(connection, drain.data(), drain.size(), 0) > 0) {
    }
  }
}

}  // namespace aibox::test
