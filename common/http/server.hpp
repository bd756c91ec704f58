#pragma once
// HTTP/1.1 on Boost.Beast: TCP listeners (TLS or, for benchmarks, plain) and a unix socket
// whose peers are identified by SO_PEERCRED. Keep-alive, header and body size limits (431,
// 413), a deadline for a request head (against slow clients) and a graceful drain. Streamed
// bodies (StreamedResponse) are written piece by piece as the client takes them, each write
// under bodyTimeout, so a 50 GB body neither sits in memory nor meets a deadline for the whole.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "common/http/http.hpp"
#include "common/http/metrics.hpp"

namespace aibox::http {

namespace detail {
struct ServerShared;
}

struct ServerOptions {
  std::size_t maxHeaderBytes = 16UL * 1024;
  std::uint64_t maxBodyBytes = 1024UL * 1024;
  // From the first byte of a request to the end of its head; also how long an idle
  // keep-alive connection is kept.
  std::chrono::milliseconds headerTimeout{10'000};
  // For reading a body and for writing a response (each piece of a streamed one).
  std::chrono::milliseconds bodyTimeout{60'000};
  // How long drain() waits for requests in flight (streamed bodies included) before closing
  // what is left.
  std::chrono::milliseconds drainTimeout{20'000};
  // Threads that run the sources of streamed bodies (StreamedResponse), so their disk reads
  // never block the event loop; a stream holds one only while its source runs.
  std::size_t streamThreads = 2;
};

class Server {
 public:
  Server(boost::asio::io_context& io, const Router& router, HttpMetrics& metrics,
         ServerOptions options);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Listens on `endpoint` (port 0 picks a free port) and returns the bound address. With a
  // null `tls` context the listener speaks plain HTTP.
  boost::asio::ip::tcp::endpoint listenTcp(const boost::asio::ip::tcp::endpoint& endpoint,
                                           std::shared_ptr<boost::asio::ssl::context> tls);

  // Listens on a unix socket (mode 0660, group aibox-admin when that group exists). A stale
  // socket file is replaced; a live one (another agent) is an error.
  void listenUnix(const std::filesystem::path& path);

  // Stops accepting, closes idle connections, lets requests in flight finish (their
  // responses say Connection: close) and calls `done` on the io_context when every connection
  // is gone or drainTimeout has passed.
  void drain(std::function<void()> done);

 private:
  std::shared_ptr<detail::ServerShared> shared_;
};

// "ADDR:PORT" or "[IPV6]:PORT".
std::optional<boost::asio::ip::tcp::endpoint> parseEndpoint(std::string_view text);

}  // namespace aibox::http
