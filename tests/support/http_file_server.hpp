#pragma once
// A small HTTP/1.1 file server on 127.0.0.1 for tests of downloads: one connection at a time,
// each closed after its answer; GET and HEAD, Range: bytes=N- (206, or 416 past the end), and
// faults to inject: dropped connections, stalls, error statuses and a server that ignores Range.
// No dependency on the agent.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace aibox::test {

class HttpFileServer {
 public:
  struct Request {
    std::string method;
    std::string target;
    std::string range;  // the Range header; "" when there is none
  };

  // Serves the files under `root` on a free port.
  explicit HttpFileServer(std::filesystem::path root);
  HttpFileServer(const HttpFileServer&) = delete;
  HttpFileServer& operator=(const HttpFileServer&) = delete;
  ~HttpFileServer();

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:<port>/<path>"
  std::string url(const std::string& path) const;

  // Closes the connection after `bytes` of body in the next `requests` GETs.
  void dropAfterBytes(std::uint64_t bytes, int requests);
  // Stops sending after `bytes` of body, until the client hangs up, in every GET.
  void stallAfterBytes(std::uint64_t bytes);
  // Answers `status` to the next `requests` requests.
  void failWith(int status, int requests);
  // Answers 200 and the whole file to ranged requests.
  void ignoreRange(bool ignore);

  // Every request so far, in order.
  std::vector<Request> requests() const;

 private:
  struct Faults {
    std::optional<std::uint64_t> sendLimit;  // body bytes sent before the fault
    bool stall = false;                      // at the limit: wait, rather than close
    int status = 0;                          // answer this instead of the file
    bool ignoreRange = false;
  };

  void serve();
  void handle(int connection);
  Faults record(const Request& request);
  void sendFile(int connection, const Request& request, const Faults& faults);

  std::filesystem::path root_;
  int listener_ = -1;
  int stopRead_ = -1;
  int stopWrite_ = -1;
  std::uint16_t port_ = 0;

  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::uint64_t dropAfter_ = 0;
  int dropRequests_ = 0;
  std::optional<std::uint64_t> stallAfter_;
  int failStatus_ = 0;
  int failRequests_ = 0;
  bool ignoreRange_ = false;

  std::thread thread_;  // last: started once the rest is set
};

}  // namespace aibox::test
