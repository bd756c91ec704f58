#include "common/http/server.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>
#include <mutex>
#include <stdexcept>
#include <variant>
#include <vector>

#include "common/log/log.hpp"

namespace aibox::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using UnixProtocol = net::local::stream_protocol;
using UnixStream =
    beast::basic_stream<UnixProtocol, net::any_io_executor, beast::unlimited_rate_policy>;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

class SessionBase {
 public:
  SessionBase() = default;
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;
  virtual ~SessionBase() = default;
  virtual void requestDrain() = 0;  // thread-safe
  virtual void forceClose() = 0;    // thread-safe
};

}  // namespace

struct detail::ServerShared : std::enable_shared_from_this<detail::ServerShared> {
  ServerShared(net::io_context& ioContext, const Router& r, HttpMetrics& m, ServerOptions o)
      : io(ioContext),
        router(r),
        metrics(m),
        options(o),
        drainTimer(ioContext),
        streams(std::make_unique<net::thread_pool>(std::max<std::size_t>(o.streamThreads, 1))) {}

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

  void track(const std::shared_ptr<SessionBase>& session) {
    std::lock_guard lock(mutex);
    std::erase_if(sessions, [](const auto& weak) { return weak.expired(); });
    sessions.push_back(session);
  }

  void sessionEnded() {
    if (--live != 0 || !draining) {
      return;
    }
    std::lock_guard lock(mutex);
    if (done) {  // not yet finished (and so io is still running)
      net::post(io, [self = shared_from_this()] { self->finishDrain(); });
    }
  }

  void finishDrain() {
    std::function<void()> callback;
    {
      std::lock_guard lock(mutex);
      callback = std::exchange(done, nullptr);
    }
    drainTimer.cancel();
    if (callback) {
      callback();
    }
  }

  std::vector<std::shared_ptr<SessionBase>> liveSessions() {
    std::lock_guard lock(mutex);
    std::vector<std::shared_ptr<SessionBase>> out;
    for (const auto& weak : sessions) {
      if (auto s = weak.lock()) {
        out.push_back(std::move(s));
      }
    }
    return out;
  }
};

namespace {

bool quietError(const beast::error_code& ec) {
  return ec == net::error::eof || ec == bhttp::error::end_of_stream ||
         ec == beast::error::timeout || ec == net::error::operation_aborted ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::ssl::error::stream_truncated;
}

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

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Session(Stream stream, std::shared_ptr<detail::ServerShared> shared, Identity identity,
          std::string remote, std::string address, std::shared_ptr<net::ssl::context> tls = nullptr)
      : stream_(std::move(stream)),
        shared_(std::move(shared)),
        identity_(std::move(identity)),
        remote_(std::move(remote)),
        address_(std::move(address)),
        tls_(std::move(tls)) {
    ++shared_->live;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() override {
    try {
      shared_->sessionEnded();
    } catch (const std::exception& e) {
      log::error("cannot account for a closed connection", {{"error", e.what()}});
    }
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        self->lowest().expires_after(self->shared_->options.headerTimeout);
        self->stream_.async_handshake(net::ssl::stream_base::server,
                                      [self](beast::error_code ec) { self->onHandshake(ec); });
      } else {
        self->waitForRequest();
      }
    });
  }

  void requestDrain() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->drainRequested_ = true;
      if (self->state_ == State::idle) {
        self->lowest().cancel();
      }
    });
  }

  void forceClose() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->closeNow(); });
  }

 private:
  enum class State { handshake, idle, reading, handling, writing, closing };

  auto& lowest() { return beast::get_lowest_layer(stream_); }

  void onHandshake(beast::error_code ec) {
    if (ec) {
      log::debug("TLS handshake failed", {{"remote", remote_}, {"error", ec.message()}});
      closeNow();
      return;
    }
    waitForRequest();
  }

  // Between requests: wait for the first byte of the next one, so a drain can tell an idle
  // connection (closed at once) from one whose request is on its way (answered first).
  void waitForRequest() {
    state_ = State::idle;
    if (drainRequested_ || shared_->draining) {
      closeGracefully();
      return;
    }
    if (buffer_.size() > 0) {
      readHeader();
      return;
    }
    lowest().expires_after(shared_->options.headerTimeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->onFirstBytes(ec, n);
                            });
  }

  void onFirstBytes(beast::error_code ec, std::size_t n) {
    if (ec) {
      closeNow();
      return;
    }
    buffer_.commit(n);
    readHeader();
  }

  void readHeader() {
    state_ = State::reading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_->options.maxHeaderBytes));
    parser_->body_limit(shared_->options.maxBodyBytes);
    lowest().expires_after(shared_->options.headerTimeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               self->onHeader(ec);
                             });
  }

  void onHeader(beast::error_code ec) {
    if (ec) {
      onReadError(ec);
      return;
    }
    if (parser_->is_done()) {
      onRequest();
      return;
    }
    lowest().expires_after(shared_->options.bodyTimeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code e, std::size_t) {
                        if (e) {
                          self->onReadError(e);
                        } else {
                          self->onRequest();
                        }
                      });
  }

  void onReadError(beast::error_code ec) {
    if (ec == bhttp::error::header_limit) {
      answerAndClose(error(
          Status::request_header_fields_too_large, "header_too_large",
          "request head exceeds " + std::to_string(shared_->options.maxHeaderBytes) + " bytes"));
    } else if (ec == bhttp::error::body_limit) {
      answerAndClose(error(
          Status::payload_too_large, "body_too_large",
          "request body exceeds " + std::to_string(shared_->options.maxBodyBytes) + " bytes"));
    } else if (quietError(ec)) {
      closeNow();
    } else {
      answerAndClose(error(Status::bad_request, "malformed_request",
                           "malformed HTTP request: " + ec.message()));
    }
  }

  void answerAndClose(Response res) {
    state_ = State::handling;
    drainRequested_ = true;  // the stream cannot be trusted after a bad request: close after it
    verb_ = Verb::unknown;
    started_ = std::chrono::steady_clock::now();
    send("unmatched", std::move(res));
  }

  void onRequest() {
    state_ = State::handling;
    auto call = std::make_shared<Call>();
    call->request = parser_->release();
    call->identity = identity_;
    call->remote = remote_;
    call->address = address_;
    keepAlive_ = call->request.keep_alive();
    version_ = call->request.version();
    verb_ = call->request.method();
    started_ = std::chrono::steady_clock::now();
    auto reply = [self = this->shared_from_this(), call](AnyResponse res) {
      net::dispatch(self->stream_.get_executor(), [self, call, res = std::move(res)]() mutable {
        std::visit([&self, &call](auto& answer) { self->send(call->route, std::move(answer)); },
                   res);
      });
    };
    shared_->router.dispatch(call, reply);
  }

  // Counts the answer in the metrics and moves to writing; false for a second answer.
  bool beginAnswer(std::string_view route, unsigned status) {
    if (state_ != State::handling) {
      log::error("a route answered twice; the second answer is dropped",
                 {{"route", std::string(route)}});
      return false;
    }
    state_ = State::writing;
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started_;
    shared_->metrics.observe(route, verb_, status, elapsed.count());
    return true;
  }

  template <class Body>
  void decorate(bhttp::response<Body>& res, bool keep) {
    res.version(version_);
    res.keep_alive(keep);
    res.set(bhttp::field::server, "aibox");
    res.set("X-Content-Type-Options", "nosniff");
    if constexpr (kTls) {
      res.set(bhttp::field::strict_transport_security, "max-age=31536000");
    }
  }

  bool keepAfterAnswer() const { return keepAlive_ && !drainRequested_ && !shared_->draining; }

  void send(std::string_view route, Response res) {
    if (!beginAnswer(route, res.result_int())) {
      return;
    }
    res.prepare_payload();
    if (verb_ == Verb::head) {
      res.body().clear();  // the head, Content-Length included, describes what GET sends
    }
    write(std::move(res));
  }

  // Sends a complete message as it is (its payload headers already set).
  void write(Response res) {
    bool keep = keepAfterAnswer();
    decorate(res, keep);
    auto message = std::make_shared<Response>(std::move(res));
    lowest().expires_after(shared_->options.bodyTimeout);
    bhttp::async_write(
        stream_, *message,
        [self = this->shared_from_this(), message, keep](beast::error_code ec, std::size_t) {
          if (ec) {
            self->closeNow();
          } else if (keep) {
            self->waitForRequest();
          } else {
            self->closeGracefully();
          }
        });
  }

  // The head goes out while the source makes the first piece; from then on the source makes
  // piece n+1 while piece n is on the wire, and each write renews the body deadline.
  void send(std::string_view route, StreamedResponse res) {
    if (!beginAnswer(route, static_cast<unsigned>(res.status))) {
      return;
    }
    if (verb_ == Verb::head) {
      Response head{res.status, version_};
      for (const auto& field : res.headers) {
        head.insert(field.name_string(), field.value());
      }
      if (res.contentLength) {
        head.content_length(*res.contentLength);
      }
      write(std::move(head));
      return;
    }
    auto out = std::make_shared<Outgoing>();
    out->keep = keepAfterAnswer();
    out->message.result(res.status);
    for (const auto& field : res.headers) {
      out->message.insert(field.name_string(), field.value());
    }
    if (res.contentLength) {
      out->message.content_length(*res.contentLength);
      out->owed = *res.contentLength;
    } else if (version_ >= 11) {
      out->message.chunked(true);
    } else {
      out->keep = false;  // an HTTP/1.0 body without a length ends when the connection does
    }
    decorate(out->message, out->keep);
    out->message.body().data = nullptr;
    out->message.body().more = true;
    out->serializer.emplace(out->message);
    out->source = std::move(res.source);
    out->push = std::move(res.push);
    out->route = std::string(route);
    outgoing_ = out;
    produce();
    out->onWire = true;
    lowest().expires_after(shared_->options.bodyTimeout);
    bhttp::async_write_header(stream_, *out->serializer,
                              [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                                self->onPieceWritten(ec);
                              });
  }

  void produce() {
    // A write that finished just before closeNow() must not ask a cleared source for more.
    if (state_ == State::closing) {
      return;
    }
    if (outgoing_->push) {
      outgoing_->push(kPieceBytes,
                      [self = this->shared_from_this(), out = outgoing_,
                       executor = stream_.get_executor()](std::string piece, bool more) {
                        net::post(executor, [self, out, piece = std::move(piece), more]() mutable {
                          self->onProduced(out, std::move(piece), more, std::nullopt);
                        });
                      });
      return;
    }
    if (!shared_->streams) {
      closeNow();
      return;
    }
    std::string piece = std::move(outgoing_->spare);
    piece.clear();
    net::post(*shared_->streams, [self = this->shared_from_this(), out = outgoing_,
                                  executor = stream_.get_executor(),
                                  piece = std::move(piece)]() mutable {
      std::optional<std::string> failure;
      bool more = false;
      try {
        more = out->source(piece, kPieceBytes);
      } catch (const std::exception& e) {
        failure = e.what();
      }
      net::post(executor, [self = std::move(self), out = std::move(out), piece = std::move(piece),
                           more, failure = std::move(failure)]() mutable {
        self->onProduced(out, std::move(piece), more, failure);
      });
    });
  }

  void onProduced(const std::shared_ptr<Outgoing>& out, std::string piece, bool more,
                  const std::optional<std::string>& failure) {
    if (state_ != State::writing || outgoing_ != out) {
      return;  // the connection closed meanwhile
    }
    if (failure) {
      log::warning("a streamed body failed; its connection is closed mid-body",
                   {{"route", out->route}, {"remote", remote_}, {"error", *failure}});
      closeNow();
      return;
    }
    if (out->owed) {
      if (piece.size() > *out->owed || (!more && piece.size() < *out->owed)) {
        log::error(
            "a streamed body ends short of or runs past its Content-Length; its "
            "connection is closed",
            {{"route", out->route}, {"remote", remote_}});
        closeNow();
        return;
      }
      *out->owed -= piece.size();
    }
    out->ready = std::move(piece);
    out->last = !more;
    if (!out->onWire) {
      writePiece();
    }
  }

  void writePiece() {
    auto& out = *outgoing_;
    out.writing = std::move(*out.ready);
    out.ready.reset();
    auto& body = out.message.body();
    body.data = out.writing.empty() ? nullptr : out.writing.data();
    body.size = out.writing.size();
    body.more = !out.last;
    if (!out.last) {
      produce();
    }
    out.onWire = true;
    lowest().expires_after(shared_->options.bodyTimeout);
    bhttp::async_write(stream_, *out.serializer,
                       [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                         self->onPieceWritten(ec);
                       });
  }

  void onPieceWritten(beast::error_code ec) {
    if (ec && ec != bhttp::error::need_buffer) {
      closeNow();
      return;
    }
    auto& out = *outgoing_;
    out.onWire = false;
    out.spare = std::move(out.writing);
    if (out.serializer->is_done()) {
      bool keep = out.keep;
      outgoing_.reset();
      if (keep) {
        waitForRequest();
      } else {
        closeGracefully();
      }
    } else if (out.ready) {
      writePiece();
    }
  }

  // Half-close, then read and discard what the peer still sends for a moment, so unread
  // request bytes do not turn our close into a reset that destroys the response in flight.
  void closeGracefully() {
    if (state_ == State::closing) {
      return;
    }
    state_ = State::closing;
    lowest().expires_after(std::chrono::seconds(2));
    if constexpr (kTls) {
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->closeNow(); });
    } else {
      beast::error_code ignored;
      lowest().socket().shutdown(net::socket_base::shutdown_send, ignored);
      discard();
    }
  }

  void discard() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) {
                                self->closeNow();
                              } else {
                                self->discard();
                              }
                            });
  }

  void closeNow() {
    state_ = State::closing;
    if (outgoing_) {
      // A push source holds the callback that keeps this session alive; let both go.
      outgoing_->push = nullptr;
    }
    beast::error_code ignored;
    lowest().socket().close(ignored);
  }

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

void acceptTcp(const std::shared_ptr<detail::ServerShared>& shared, tcp::acceptor& acceptor,
               const std::shared_ptr<net::ssl::context>& tls) {
  acceptor.async_accept(net::make_strand(shared->io), [shared, &acceptor, tls](beast::error_code ec,
                                                                               tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) {
      return;
    }
    if (ec) {
      log::warning("accept failed", {{"error", ec.message()}});
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto peer = socket.remote_endpoint(ignored);
      std::string remote = peer.address().to_string() + ":" + std::to_string(peer.port());
      std::string address = peer.address().to_string();
      Identity anonymous{.kind = Identity::Kind::anonymous, .name = "anonymous"};
      std::shared_ptr<SessionBase> session;
      if (tls) {
        auto s = std::make_shared<Session<TlsStream>>(
            TlsStream(beast::tcp_stream(std::move(socket)), *tls), shared, anonymous, remote,
            address, tls);
        s->start();
        session = s;
      } else {
        auto s = std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)),
                                                              shared, anonymous, remote, address);
        s->start();
        session = s;
      }
      shared->track(session);
    }
    acceptTcp(shared, acceptor, tls);
  });
}

void acceptUnix(const std::shared_ptr<detail::ServerShared>& shared,
                UnixProtocol::acceptor& acceptor) {
  acceptor.async_accept(
      net::make_strand(shared->io),
      [shared, &acceptor](beast::error_code ec, UnixProtocol::socket socket) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) {
          return;
        }
        if (ec) {
          log::warning("accept failed on the local socket", {{"error", ec.message()}});
        } else {
          ucred cred{};
          socklen_t len = sizeof(cred);
          if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            log::warning("cannot read peer credentials; connection refused");
          } else {
            Identity identity = localPeer(cred.uid, cred.gid);
            std::string remote =
                "unix:pid=" + std::to_string(cred.pid) + ",uid=" + std::to_string(cred.uid);
            auto s = std::make_shared<Session<UnixStream>>(UnixStream(std::move(socket)), shared,
                                                           identity, remote, "local");
            s->start();
            shared->track(s);
          }
        }
        acceptUnix(shared, acceptor);
      });
}

}  // namespace

Server::Server(net::io_context& io, const Router& router, HttpMetrics& metrics,
               ServerOptions options)
    : shared_(std::make_shared<detail::ServerShared>(io, router, metrics, options)) {}

Server::~Server() {
  // A source call under way finishes; the queued ones are dropped with the sessions they hold.
  shared_->streams->stop();
  shared_->streams->join();
  shared_->streams.reset();
  for (auto& a : shared_->tcpAcceptors) {
    beast::error_code ignored;
    a->close(ignored);
  }
  for (auto& a : shared_->unixAcceptors) {
    beast::error_code ignored;
    a->close(ignored);
  }
}

tcp::endpoint Server::listenTcp(const tcp::endpoint& endpoint,
                                std::shared_ptr<net::ssl::context> tls) {
  auto acceptor = std::make_unique<tcp::acceptor>(net::make_strand(shared_->io));
  beast::error_code ec;
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor->set_option(net::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor->bind(endpoint, ec);
  }
  if (!ec) {
    acceptor->listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    throw std::runtime_error("cannot listen on " + endpoint.address().to_string() + ":" +
                             std::to_string(endpoint.port()) + ": " + ec.message() +
                             " (choose another address with --listen or server.listen)");
  }
  auto bound = acceptor->local_endpoint();
  acceptTcp(shared_, *acceptor, tls);
  shared_->tcpAcceptors.push_back(std::move(acceptor));
  shared_->tlsContexts.push_back(std::move(tls));
  return bound;
}

void Server::listenUnix(const std::filesystem::path& path) {
  UnixProtocol::endpoint endpoint(path.string());
  if (std::filesystem::is_socket(path)) {
    UnixProtocol::socket probe(shared_->io);
    beast::error_code ec;
    probe.connect(endpoint, ec);
    if (!ec) {
      throw std::runtime_error("another aibox-agent is already listening on " + path.string() +
                               ": stop it first (systemctl stop aibox-agent)");
    }
    std::filesystem::remove(path);
  }
  auto acceptor = std::make_unique<UnixProtocol::acceptor>(net::make_strand(shared_->io));
  beast::error_code ec;
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor->bind(endpoint, ec);
  }
  if (!ec) {
    acceptor->listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    throw std::runtime_error("cannot listen on " + path.string() + ": " + ec.message());
  }
  ::chmod(path.c_str(), 0660);
  std::array<char, 4096> buffer{};
  group grp{};
  group* found = nullptr;
  if (getgrnam_r("aibox-admin", &grp, buffer.data(), buffer.size(), &found) == 0 &&
      found != nullptr) {
    if (::chown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) {
      log::warning("cannot give the agent socket to group aibox-admin",
                   {{"socket", path.string()}});
    }
  }
  acceptUnix(shared_, *acceptor);
  shared_->unixAcceptors.push_back(std::move(acceptor));
}

void Server::drain(std::function<void()> done) {
  auto shared = shared_;
  {
    std::lock_guard lock(shared->mutex);
    shared->done = std::move(done);
  }
  shared->draining = true;
  for (auto& a : shared->tcpAcceptors) {
    net::post(a->get_executor(), [acceptor = a.get()] {
      beast::error_code ignored;
      acceptor->close(ignored);
    });
  }
  for (auto& a : shared->unixAcceptors) {
    net::post(a->get_executor(), [acceptor = a.get()] {
      beast::error_code ignored;
      acceptor->close(ignored);
    });
  }
  for (const auto& session : shared->liveSessions()) {
    session->requestDrain();
  }
  if (shared->live == 0) {
    net::post(shared->io, [shared] { shared->finishDrain(); });
    return;
  }
  shared->drainTimer.expires_after(shared->options.drainTimeout);
  shared->drainTimer.async_wait([shared](beast::error_code ec) {
    if (ec) {
      return;
    }
    log::warning("drain timed out; closing the remaining connections",
                 {{"connections", std::to_string(shared->live)}});
    for (const auto& session : shared->liveSessions()) {
      session->forceClose();
    }
    shared->finishDrain();
  });
}

std::optional<tcp::endpoint> parseEndpoint(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find("]:");
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || port.empty() || value > 65535) {
    return std::nullopt;
  }
  beast::error_code addrEc;
  auto address = net::ip::make_address(std::string(host), addrEc);
  if (addrEc) {
    return std::nullopt;
  }
  return tcp::endpoint(address, static_cast<unsigned short>(value));
}

}  // namespace aibox::http
