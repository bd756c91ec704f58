#include "agent/runtimes/probe.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <memory>

namespace aibox::agent::runtimes::probe {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;

struct Call : std::enable_shared_from_this<Call> {
  Call(net::io_context& io, std::function<void(Answer)> then) : stream(io), done(std::move(then)) {}

  void fail(const beast::error_code& ec) {
    Answer a;
    a.error = ec == beast::error::timeout ? "no answer in time" : ec.message();
    done(std::move(a));
  }

  void run(int port, std::chrono::milliseconds timeout) {
    stream.expires_after(timeout);
    net::ip::tcp::endpoint to(net::ip::address_v4::loopback(), static_cast<unsigned short>(port));
    stream.async_connect(to, [self = shared_from_this()](const beast::error_code& ec) {
      if (ec) {
        return self->fail(ec);
      }
      beast::http::async_write(self->stream, self->request,
                               [self](const beast::error_code& e, std::size_t) {
                                 if (e) {
                                   return self->fail(e);
                                 }
                                 self->read();
                               });
    });
  }

  void read() {
    parser.body_limit(16 << 20);
    beast::http::async_read(
        stream, buffer, parser,
        [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
          if (ec) {
            return self->fail(ec);
          }
          beast::error_code ignored;
          self->stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
          auto& response = self->parser.get();
          self->done(
              Answer{static_cast<int>(response.result_int()), std::move(response.body()), ""});
        });
  }

  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  beast::http::request<beast::http::empty_body> request;
  beast::http::response_parser<beast::http::string_body> parser;
  std::function<void(Answer)> done;
};

}  // namespace

void get(net::io_context& io, int port, const std::string& path, const std::string& token,
         std::chrono::milliseconds timeout, std::function<void(Answer)> done) {
  auto call = std::make_shared<Call>(io, std::move(done));
  call->request.method(beast::http::verb::get);
  call->request.target(path);
  call->request.version(11);
  call->request.set(beast::http::field::host, "127.0.0.1:" + std::to_string(port));
  call->request.set(beast::http::field::connection, "close");
  if (!token.empty()) {
    call->request.set(beast::http::field::authorization, "Bearer " + token);
  }
  call->run(port, timeout);
}

}  // namespace aibox::agent::runtimes::probe
