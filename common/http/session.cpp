// One connection's loop: read a request head (under headerTimeout) and body, route it, write
// the answer, then wait for the next request or close. Streamed bodies are in streamed.cpp.
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <variant>

#include "common/http/server_internal.hpp"
#include "common/log/log.hpp"

namespace aibox::http {

namespace {

bool quietError(const beast::error_code& ec) {
  return ec == net::error::eof || ec == bhttp::error::end_of_stream ||
         ec == beast::error::timeout || ec == net::error::operation_aborted ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::ssl::error::stream_truncated;
}

}  // namespace

template <class Stream>
Session<Stream>::Session(Stream stream, std::shared_ptr<detail::ServerShared> shared,
                         Identity identity, std::string remote, std::string address,
                         std::shared_ptr<net::ssl::context> tls)
    : stream_(std::move(stream)),
      shared_(std::move(shared)),
      identity_(std::move(identity)),
      remote_(std::move(remote)),
      address_(std::move(address)),
      tls_(std::move(tls)) {
  ++shared_->live;
}

template <class Stream>
Session<Stream>::~Session() {
  try {
    shared_->sessionEnded();
  } catch (const std::exception& e) {
    log::error("cannot account for a closed connection", {{"error", e.what()}});
  }
}

template <class Stream>
void Session<Stream>::start() {
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

template <class Stream>
void Session<Stream>::requestDrain() {
  net::post(stream_.get_executor(), [self = this->shared_from_this()] {
    self->drainRequested_ = true;
    if (self->state_ == State::idle) {
      self->lowest().cancel();
    }
  });
}

template <class Stream>
void Session<Stream>::forceClose() {
  net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->closeNow(); });
}

template <class Stream>
void Session<Stream>::onHandshake(beast::error_code ec) {
  if (ec) {
    log::debug("TLS handshake failed", {{"remote", remote_}, {"error", ec.message()}});
    closeNow();
    return;
  }
  waitForRequest();
}

// Between requests: wait for the first byte of the next one, so a drain can tell an idle
// connection (closed at once) from one whose request is on its way (answered first).
template <class Stream>
void Session<Stream>::waitForRequest() {
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

template <class Stream>
void Session<Stream>::onFirstBytes(beast::error_code ec, std::size_t n) {
  if (ec) {
    closeNow();
    return;
  }
  buffer_.commit(n);
  readHeader();
}

template <class Stream>
void Session<Stream>::readHeader() {
  state_ = State::reading;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(shared_->options.maxHeaderBytes));
  parser_->body_limit(shared_->options.maxBodyBytes);
  lowest().expires_after(shared_->options.headerTimeout);
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->onHeader(ec); });
}

template <class Stream>
void Session<Stream>::onHeader(beast::error_code ec) {
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

template <class Stream>
void Session<Stream>::onReadError(beast::error_code ec) {
  if (ec == bhttp::error::header_limit) {
    answerAndClose(error(
        Status::request_header_fields_too_large, "header_too_large",
        "request head exceeds " + std::to_string(shared_->options.maxHeaderBytes) + " bytes"));
  } else if (ec == bhttp::error::body_limit) {
    answerAndClose(
        error(Status::payload_too_large, "body_too_large",
              "request body exceeds " + std::to_string(shared_->options.maxBodyBytes) + " bytes"));
  } else if (quietError(ec)) {
    closeNow();
  } else {
    answerAndClose(
        error(Status::bad_request, "malformed_request", "malformed HTTP request: " + ec.message()));
  }
}

template <class Stream>
void Session<Stream>::answerAndClose(Response res) {
  state_ = State::handling;
  drainRequested_ = true;  // the stream cannot be trusted after a bad request: close after it
  verb_ = Verb::unknown;
  started_ = std::chrono::steady_clock::now();
  send("unmatched", std::move(res));
}

template <class Stream>
void Session<Stream>::onRequest() {
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
      std::visit([&self, &call](auto& answer) { self->send(call->route, std::move(answer)); }, res);
    });
  };
  shared_->router.dispatch(call, reply);
}

// Counts the answer in the metrics and moves to writing; false for a second answer.
template <class Stream>
bool Session<Stream>::beginAnswer(std::string_view route, unsigned status) {
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

template <class Stream>
bool Session<Stream>::keepAfterAnswer() const {
  return keepAlive_ && !drainRequested_ && !shared_->draining;
}

template <class Stream>
void Session<Stream>::send(std::string_view route, Response res) {
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
template <class Stream>
void Session<Stream>::write(Response res) {
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

// Half-close, then read and discard what the peer still sends for a moment, so unread
// request bytes do not turn our close into a reset that destroys the response in flight.
template <class Stream>
void Session<Stream>::closeGracefully() {
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

template <class Stream>
void Session<Stream>::discard() {
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

template <class Stream>
void Session<Stream>::closeNow() {
  state_ = State::closing;
  if (outgoing_) {
    // A push source holds the callback that keeps this session alive; let both go.
    outgoing_->push = nullptr;
  }
  beast::error_code ignored;
  lowest().socket().close(ignored);
}

template class Session<TlsStream>;
template class Session<beast::tcp_stream>;
template class Session<UnixStream>;

}  // namespace aibox::http
