#include "agent/runtimes/relay.hpp"

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <memory>

namespace aibox::agent::runtimes::relay {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;

// Silence in the middle of an answer that ends it (a hung engine; the liveness probe restarts
// it soon after).
constexpr auto kIdle = std::chrono::minutes(5);
// Room kept in a piece for the error event that ends a broken-off stream.
constexpr std::size_t kErrorRoom = 512;

struct Upstream : std::enable_shared_from_this<Upstream> {
  Upstream(net::io_context& io, http::Reply r)
      : stream(net::make_strand(io)), reply(std::move(r)) {}

  void start(int port, std::chrono::milliseconds headTimeout);
  void failHead(const beast::error_code& ec);
  void head();
  void ask(std::size_t most, http::PieceReady ready);
  void read();
  void answer(std::string piece, bool more);

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    stream.close();
  }

  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  beast::http::request<beast::http::string_body> request;
  beast::http::response_parser<beast::http::buffer_body> parser;
  http::Reply reply;  // until the head is passed on
  bool eventStream = false;
  std::array<char, 16384> chunk{};
  std::size_t max = 0;
  http::PieceReady pending;
};

// Held by the body's source: when the server drops it (the caller went away, or the body
// ended), the connection to the instance is closed, which cancels the generation there.
struct Guard {
  explicit Guard(std::shared_ptr<Upstream> u) : up(std::move(u)) {}
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  ~Guard() {
    net::dispatch(up->stream.get_executor(), [u = up] { u->close(); });
  }
  std::shared_ptr<Upstream> up;
};

void Upstream::start(int port, std::chrono::milliseconds headTimeout) {
  stream.expires_after(headTimeout);
  net::ip::tcp::endpoint to(net::ip::address_v4::loopback(), static_cast<unsigned short>(port));
  stream.async_connect(to, [self = shared_from_this()](const beast::error_code& ec) {
    if (ec) {
      return self->failHead(ec);
    }
    beast::http::async_write(
        self->stream, self->request, [self](const beast::error_code& e, std::size_t) {
          if (e) {
            return self->failHead(e);
          }
          self->parser.body_limit(boost::none);  // a generation's length is not known ahead
          beast::http::async_read_header(self->stream, self->buffer, self->parser,
                                         [self](const beast::error_code& e2, std::size_t) {
                                           if (e2) {
                                             return self->failHead(e2);
                                           }
                                           self->head();
                                         });
        });
  });
}

void Upstream::failHead(const beast::error_code& ec) {
  close();
  std::string why = ec == beast::error::timeout ? "no answer in time" : ec.message();
  auto r = std::move(reply);
  r(http::error(
      http::Status::bad_gateway, "instance_unreachable",
      "the instance did not answer (" + why + "); see its logs with aiboxctl runtimes logs NAME"));
}

void Upstream::head() {
  stream.expires_never();
  const auto& message = parser.get();
  http::StreamedResponse res;
  res.status = message.result();
  std::string type(message[beast::http::field::content_type]);
  eventStream = type.starts_with("text/event-stream");
  res.headers.set(beast::http::field::content_type,
                  type.empty() ? "application/octet-stream" : type);
  res.headers.set(beast::http::field::cache_control, "no-store");
  auto guard = std::make_shared<Guard>(shared_from_this());
  res.push = [guard](std::size_t most, http::PieceReady ready) {
    guard->up->ask(most, std::move(ready));
  };
  auto r = std::move(reply);
  r(std::move(res));
}

void Upstream::ask(std::size_t most, http::PieceReady ready) {
  net::dispatch(
      stream.get_executor(), [self = shared_from_this(), most, ready = std::move(ready)]() mutable {
        self->max = std::min(most > kErrorRoom * 2 ? most - kErrorRoom : most, self->chunk.size());
        self->pending = std::move(ready);
        self->read();
      });
}

void Upstream::read() {
  if (parser.is_done()) {
    return answer("", false);
  }
  auto& body = parser.get().body();
  body.data = chunk.data();
  body.size = max;
  stream.expires_after(kIdle);
  beast::http::async_read_some(
      stream, buffer, parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec == beast::http::error::need_buffer) {
          ec = {};
        }
        std::size_t got = self->max - self->parser.get().body().size;
        std::string piece(self->chunk.data(), got);
        if (ec) {
          if (self->eventStream && ec != net::error::operation_aborted) {
            std::string why =
                ec == beast::error::timeout ? "it sent nothing for 5 minutes" : ec.message();
            piece += "event: error\ndata: " +
                     json::serialize(boost::json::object{
                         {"error",
                          {{"code", "instance_broke_off"},
                           {"message", "the instance broke off its answer: " + why}}}}) +
                     "\n\n";
          }
          return self->answer(std::move(piece), false);
        }
        if (got == 0 && !self->parser.is_done()) {
          return self->read();
        }
        self->answer(std::move(piece), !self->parser.is_done());
      });
}

void Upstream::answer(std::string piece, bool more) {
  auto ready = std::move(pending);
  pending = nullptr;
  if (ready) {
    ready(std::move(piece), more);
  }
}

}  // namespace

void post(net::io_context& io, const Target& target, std::string body,
          std::chrono::milliseconds headTimeout, http::Reply reply) {
  auto up = std::make_shared<Upstream>(io, std::move(reply));
  auto& request = up->request;
  request.method(beast::http::verb::post);
  request.target(target.path);
  request.version(11);
  request.set(beast::http::field::host, "127.0.0.1:" + std::to_string(target.port));
  request.set(beast::http::field::connection, "close");
  request.set(beast::http::field::content_type, "application/json");
  request.set(beast::http::field::accept, "text/event-stream, application/json");
  if (!target.token.empty()) {
    request.set(beast::http::field::authorization, "Bearer " + target.token);
  }
  request.body() = std::move(body);
  request.prepare_payload();
  net::dispatch(up->stream.get_executor(),
                [up, port = target.port, headTimeout] { up->start(port, headTimeout); });
}

}  // namespace aibox::agent::runtimes::relay
