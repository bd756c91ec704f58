// Streamed and pushed bodies (StreamedResponse): the head goes out first, then the body piece
// by piece, each write under bodyTimeout, with at most two pieces held.
#include <boost/asio/post.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>

#include "common/http/server_internal.hpp"
#include "common/log/log.hpp"

namespace aibox::http {

// The head goes out while the source makes the first piece; from then on the source makes
// piece n+1 while piece n is on the wire, and each write renews the body deadline.
template <class Stream>
void Session<Stream>::send(std::string_view route, StreamedResponse res) {
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

template <class Stream>
void Session<Stream>::produce() {
  // A write that finished just before closeNow() must not ask a cleared source for more.
  if (state_ == State::closing) {
    return;
  }
  if (outgoing_->push) {
    outgoing_->push(kPieceBytes, [self = this->shared_from_this(), out = outgoing_,
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
  net::post(
      *shared_->streams, [self = this->shared_from_this(), out = outgoing_,
                          executor = stream_.get_executor(), piece = std::move(piece)]() mutable {
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

template <class Stream>
void Session<Stream>::onProduced(const std::shared_ptr<Outgoing>& out, std::string piece, bool more,
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

template <class Stream>
void Session<Stream>::writePiece() {
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

template <class Stream>
void Session<Stream>::onPieceWritten(beast::error_code ec) {
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

template void Session<TlsStream>::send(std::string_view, StreamedResponse);
template void Session<beast::tcp_stream>::send(std::string_view, StreamedResponse);
template void Session<UnixStream>::send(std::string_view, StreamedResponse);

}  // namespace aibox::http
