#pragma once
// The parts of the HTTP server (server.hpp) that its files share, private to common/http:
// listen.cpp (listeners, TLS and peer credentials at accept), session.cpp (one connection's
// read, route and write loop), streamed.cpp (streamed and pushed bodies) and drain.cpp.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/http/server.hpp"

namespace aibox::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using UnixProtocol = net::local::stream_protocol;
using UnixStream =
    beast::basic_stream<UnixProtocol, net::any_io_executor, beast::unlimited_rate_policy>;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

class SessionBase {
 public:
  SessionBase() = default;
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;
  virtual ~SessionBase() = default;
  virtual void requestDrain() = 0;  // thread-safe
  virtual void forceClose() = 0;    // thread-safe
};

struct detail::ServerShared : std::enable_shared_from_this<detail::ServerShared> {
  ServerShared(net::io_context& ioContext, const Router& r, HttpMetrics& m, ServerOptions o);

  net::io_context& io;
  const Router& router;
  HttpMetrics& metrics;
  const ServerOptions options;

  std::mutex mutex;  // guards sessions, done
  std::vector<std::weak_ptr<SessionBase>> sessions;
  std::atomic<std::size_t> live{0};
  std::atomic<bool> draining{false};
  std::function<void()> done;
  net::steady_timer drainTimer;
  // Runs the sources of streamed bodies, off the event loop; gone once the Server is.
  std::unique_ptr<net::thread_pool> streams;

  std::vector<std::unique_ptr<tcp::acceptor>> tcpAcceptors;
  std::vector<std::shared_ptr<net::ssl::context>> tlsContexts;  // parallel to tcpAcceptors
  std::vector<std::unique_ptr<UnixProtocol::acceptor>> unixAcceptors;

  void track(const std::shared_ptr<SessionBase>& session);
  void sessionEnded();
  void finishDrain();
  std::vector<std::shared_ptr<SessionBase>> liveSessions();
};

// The largest piece asked of a streamed body's source; two are held at most.
constexpr std::size_t kPieceBytes = 1024UL * 1024;

// A streamed body on its way out. The source runs on the stream pool while a piece is on the
// wire; everything else is touched only on the session's strand.
struct Outgoing {
  bhttp::response<bhttp::buffer_body> message;
  std::optional<bhttp::response_serializer<bhttp::buffer_body>> serializer;
  BodySource source;
  PushSource push;  // instead of `source`; called on the strand only
  std::string route;
  std::optional<std::uint64_t> owed;  // what the Content-Length still promises
  std::string writing;                // the piece on the wire
  std::optional<std::string> ready;   // the next piece, waiting for the wire
  std::string spare;                  // a written piece, kept for its capacity
  bool last = false;                  // `ready` or `writing` ends the body
  bool onWire = false;
  bool keep = false;
};

// One connection. Instantiated (session.cpp, streamed.cpp) for TlsStream, beast::tcp_stream
// and UnixStream.
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Session(Stream stream, std::shared_ptr<detail::ServerShared> shared, Identity identity,
          std::string remote, std::string address,
          std::shared_ptr<net::ssl::context> tls = nullptr);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() override;

  void start();
  void requestDrain() override;
  void forceClose() override;

 private:
  enum class State { handshake, idle, reading, handling, writing, closing };

  auto& lowest() { return beast::get_lowest_layer(stream_); }

  // session.cpp: the request loop.
  void onHandshake(beast::error_code ec);
  void waitForRequest();
  void onFirstBytes(beast::error_code ec, std::size_t n);
  void readHeader();
  void onHeader(beast::error_code ec);
  void onReadError(beast::error_code ec);
  void answerAndClose(Response res);
  void onRequest();
  bool beginAnswer(std::string_view route, unsigned status);
  template <class Body>
  void decorate(bhttp::response<Body>& res, bool keep);
  bool keepAfterAnswer() const;
  void send(std::string_view route, Response res);
  void write(Response res);
  void closeGracefully();
  void discard();
  void closeNow();

  // streamed.cpp: streamed and pushed bodies.
  void send(std::string_view route, StreamedResponse res);
  void produce();
  void onProduced(const std::shared_ptr<Outgoing>& out, std::string piece, bool more,
                  const std::optional<std::string>& failure);
  void writePiece();
  void onPieceWritten(beast::error_code ec);

  Stream stream_;
  std::shared_ptr<detail::ServerShared> shared_;
  Identity identity_;
  std::string remote_;
  std::string address_;
  std::shared_ptr<net::ssl::context> tls_;  // outlives stream_'s use of it
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  State state_ = State::handshake;
  bool drainRequested_ = false;
  bool keepAlive_ = false;
  unsigned version_ = 11;
  Verb verb_ = Verb::unknown;
  std::chrono::steady_clock::time_point started_;
  std::shared_ptr<Outgoing> outgoing_;
};

template <class Stream>
template <class Body>
void Session<Stream>::decorate(bhttp::response<Body>& res, bool keep) {
  res.version(version_);
  res.keep_alive(keep);
  res.set(bhttp::field::server, "aibox");
  res.set("X-Content-Type-Options", "nosniff");
  if constexpr (kTls) {
    res.set(bhttp::field::strict_transport_security, "max-age=31536000");
  }
}

}  // namespace aibox::http
