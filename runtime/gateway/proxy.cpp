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
#include <boost/json/parse.hpp>
#include <boost/json/stream_parser.hpp>

#include "common/json/json.hpp"
#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;

// Silence in the middle of an answer that ends it (a hung engine; its liveness probe restarts
// it soon after).
constexpr auto kIdle = std::chrono::minutes(5);
// How much of the end of a JSON answer is kept to read its "usage".
constexpr std::size_t kTail = 64 * 1024;

std::string errorEvent(std::string_view code, const std::string& message) {
  return "data: " +
         json::serialize(boost::json::object{{"error",
                                              {{"message", message},
                                               {"type", "server_error"},
                                               {"param", nullptr},
                                               {"code", code}}}}) +
         "\n\n";
}

// The "usage" object that ends `text` (a JSON answer or its tail).
bool usageIn(std::string_view text, std::int64_t& prompt, std::int64_t& completion) {
  auto at = text.rfind("\"usage\"");
  if (at == std::string_view::npos) {
    return false;
  }
  auto colon = text.find(':', at + 7);
  if (colon == std::string_view::npos) {
    return false;
  }
  boost::json::stream_parser p;
  boost::system::error_code ec;
  auto rest = text.substr(colon + 1);
  p.write_some(rest.data(), rest.size(), ec);
  if (ec || !p.done()) {
    return false;
  }
  return readUsage(boost::json::object{{"usage", p.release()}}, prompt, completion);
}

struct Upstream : std::enable_shared_from_this<Upstream> {
  Upstream(ProxyContext& c, std::shared_ptr<Exchange> e, http::Reply r)
      : context(c), exchange(std::move(e)), stream(net::make_strand(c.io)), reply(std::move(r)) {}

  void attempt();
  void failBeforeAnswer(const beast::error_code& ec);
  void head();
  void ask(std::size_t most, http::PieceReady ready);
  void read();
  void pass(std::string piece);
  void events(std::string piece, bool last);
  void deliver(std::string piece, bool more);
  void finish();

  void close() { stream.close(); }

  ProxyContext& context;
  std::shared_ptr<Exchange> exchange;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  beast::http::request<beast::http::string_body> request;
  std::optional<beast::http::response_parser<beast::http::buffer_body>> parser;
  http::Reply reply;  // until the head is passed on
  std::optional<Instance> instance;
  Balancer::Lease lease;
  std::vector<std::string> tried;
  bool eventStream = false;
  std::array<char, 16384> chunk{};
  std::size_t max = 0;
  http::PieceReady pending;
  std::string partial;  // event-stream bytes not yet a whole event
  std::string outbox;   // passed on, more than the last ask took
  std::string tail;     // the end of a JSON answer, for its usage
  Outcome outcome;
  bool ended = false;    // the instance's answer is complete (or broken off)
  bool sawDone = false;  // the event stream's "data: [DONE]" went by
  bool finished = false;
};

// Held by the body's source: when the server drops it (the client went away, or the answer
// ended), the connection to the instance is closed, which cancels the generation there.
struct Guard {
  explicit Guard(std::shared_ptr<Upstream> u) : up(std::move(u)) {}
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  ~Guard() {
    net::dispatch(up->stream.get_executor(), [u = up] {
      u->close();
      u->finish();
    });
  }
  std::shared_ptr<Upstream> up;
};

void Upstream::attempt() {
  instance = context.balancer.pick(exchange->candidates, tried);
  tried.push_back(instance->id);
  lease = context.balancer.hold(instance->id);
  auto body = exchange->body;
  body["model"] = instance->servedName;
  if (exchange->dropUsage) {
    auto* options = body.if_contains("stream_options");
    if (options != nullptr && options->is_object()) {
      options->as_object()["include_usage"] = true;
    } else {
      body["stream_options"] = {{"include_usage", true}};
    }
  }
  request = {};
  request.method(beast::http::verb::post);
  request.target(exchange->path);
  request.version(11);
  request.set(beast::http::field::host, "127.0.0.1:" + std::to_string(instance->port));
  request.set(beast::http::field::connection, "close");
  request.set(beast::http::field::content_type, "application/json");
  if (!instance->token.empty()) {
    request.set(beast::http::field::authorization, "Bearer " + instance->token);
  }
  request.body() = json::serialize(body);
  request.prepare_payload();
  parser.emplace();
  parser->body_limit(boost::none);  // a generation's length is not known ahead
  buffer.clear();
  stream.expires_after(context.headTimeout);
  net::ip::tcp::endpoint to(net::ip::address_v4::loopback(),
                            static_cast<unsigned short>(instance->port));
  stream.async_connect(to, [self = shared_from_this()](const beast::error_code& ec) {
    if (ec) {
      return self->failBeforeAnswer(ec);
    }
    beast::http::async_write(
        self->stream, self->request, [self](const beast::error_code& e, std::size_t) {
          if (e) {
            return self->failBeforeAnswer(e);
          }
          beast::http::async_read_header(self->stream, self->buffer, *self->parser,
                                         [self](const beast::error_code& e2, std::size_t) {
                                           if (e2) {
                                             return self->failBeforeAnswer(e2);
                                           }
                                           self->head();
                                         });
        });
  });
}

void Upstream::failBeforeAnswer(const beast::error_code& ec) {
  close();
  lease.reset();
  bool timeout = ec == beast::error::timeout;
  // Nothing reached the client yet: another instance of the model may answer instead. Not
  // after a timeout, when the first one may still be generating.
  if (!timeout && tried.size() < 2 && context.balancer.pick(exchange->candidates, tried)) {
    context.metrics.retried(instance->model);
    return attempt();
  }
  outcome.status = timeout ? 504 : 502;
  outcome.error = true;
  auto r = std::move(reply);
  r(openaiError(timeout ? http::Status::gateway_timeout : http::Status::bad_gateway, "server_error",
                timeout ? "instance_timeout" : "instance_unreachable",
                timeout ? "the model's instance did not begin its answer in time"
                        : "the model's instance did not answer (" + ec.message() +
                              "); retry, or ask the box's admin to check the instance"));
  finish();
}

void Upstream::head() {
  const auto& message = parser->get();
  // An instance that is shutting down or full answers 503 before doing anything: try another.
  if (message.result() == beast::http::status::service_unavailable && tried.size() < 2 &&
      context.balancer.pick(exchange->candidates, tried)) {
    close();
    lease.reset();
    context.metrics.retried(instance->model);
    return attempt();
  }
  stream.expires_never();
  outcome.status = message.result_int();
  outcome.error = outcome.status >= 400;
  http::StreamedResponse res;
  res.status = message.result();
  std::string type(message[beast::http::field::content_type]);
  eventStream = type.starts_with("text/event-stream");
  res.headers.set(beast::http::field::content_type,
                  type.empty() ? "application/octet-stream" : type);
  res.headers.set(beast::http::field::cache_control, "no-store");
  if (exchange->ticket) {
    setRateHeaders(exchange->ticket->rate(), res.headers);
  }
  auto guard = std::make_shared<Guard>(shared_from_this());
  res.push = [guard](std::size_t most, http::PieceReady ready) {
    guard->up->ask(most, std::move(ready));
  };
  auto r = std::move(reply);
  r(std::move(res));
}

void Upstream::ask(std::size_t most, http::PieceReady ready) {
  net::dispatch(stream.get_executor(),
                [self = shared_from_this(), most, ready = std::move(ready)]() mutable {
                  self->max = std::max<std::size_t>(most, 1);
                  self->pending = std::move(ready);
                  if (!self->outbox.empty() || self->ended) {
                    return self->deliver("", !self->ended);
                  }
                  self->read();
                });
}

void Upstream::read() {
  if (exchange->ticket && exchange->ticket->revoked()) {
    outcome.error = true;
    ended = true;
    close();
    return deliver(eventStream
                       ? errorEvent("key_revoked", "the API key was revoked during this answer")
                       : std::string(),
                   false);
  }
  if (parser->is_done()) {
    ended = true;
    return deliver(std::exchange(partial, {}), false);
  }
  auto& body = parser->get().body();
  body.data = chunk.data();
  body.size = chunk.size();
  stream.expires_after(kIdle);
  beast::http::async_read_some(
      stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec == beast::http::error::need_buffer) {
          ec = {};
        }
        std::string piece(self->chunk.data(), self->chunk.size() - self->parser->get().body().size);
        if (ec) {
          self->ended = true;
          self->outcome.error = true;
          if (self->eventStream && ec != net::error::operation_aborted) {
            std::string why =
                ec == beast::error::timeout ? "it sent nothing for 5 minutes" : ec.message();
            self->events(std::move(piece), true);
            return self->deliver(errorEvent("instance_broke_off",
                                            "the model's instance broke off its answer: " + why),
                                 false);
          }
          self->pass(std::move(piece));
          return self->deliver("", false);
        }
        bool done = self->parser->is_done();
        self->ended = done;
        if (self->eventStream) {
          self->events(std::move(piece), done);
          if (done && !self->sawDone && self->outcome.status < 400) {
            // A body that ends with the connection: the instance died before its [DONE].
            self->outcome.error = true;
            self->outbox +=
                errorEvent("instance_broke_off", "the model's instance broke off its answer");
          }
        } else {
          self->pass(std::move(piece));
        }
        if (self->outbox.empty() && !done) {
          return self->read();
        }
        self->deliver("", !done);
      });
}

void Upstream::pass(std::string piece) {
  tail += piece;
  if (tail.size() > 2 * kTail) {
    tail.erase(0, tail.size() - kTail);
  }
  outbox += piece;
}

// Passes whole events on as they are; reads the usage chunk, and drops it when only the
// gateway asked for it.
void Upstream::events(std::string piece, bool last) {
  partial += piece;
  std::size_t start = 0;
  for (auto end = partial.find("\n\n"); end != std::string::npos;
       end = partial.find("\n\n", start)) {
    std::string_view event(partial.data() + start, end + 2 - start);
    start = end + 2;
    bool drop = false;
    if (event.find("\"usage\":{") != std::string_view::npos && event.starts_with("data: ")) {
      boost::system::error_code ec;
      auto v = boost::json::parse(event.substr(6), ec);
      if (!ec && readUsage(v, outcome.promptTokens, outcome.completionTokens)) {
        outcome.usageKnown = true;
        const auto* choices = v.as_object().if_contains("choices");
        drop = exchange->dropUsage && choices != nullptr && choices->is_array() &&
               choices->as_array().empty();
      }
    }
    sawDone = sawDone || event.starts_with("data: [DONE]");
    if (!drop) {
      outbox += event;
    }
  }
  partial.erase(0, start);
  if (last) {
    outbox += std::exchange(partial, {});
  }
}

void Upstream::deliver(std::string piece, bool more) {
  outbox += piece;
  std::string out;
  if (outbox.size() > max) {
    out = outbox.substr(0, max);
    outbox.erase(0, max);
    more = true;
  } else {
    out = std::exchange(outbox, {});
  }
  if (!out.empty() && !outcome.firstByteSeconds) {
    outcome.firstByteSeconds =
        std::chrono::duration<double>(Steady::now() - exchange->started).count();
  }
  if (!more) {
    finish();
  }
  auto ready = std::move(pending);
  pending = nullptr;
  if (ready) {
    ready(std::move(out), more);
  }
}

void Upstream::finish() {
  if (finished) {
    return;
  }
  finished = true;
  lease.reset();
  if (!eventStream && !outcome.usageKnown) {
    outcome.usageKnown = usageIn(tail, outcome.promptTokens, outcome.completionTokens);
  }
  if (exchange->done) {
    exchange->done(instance ? &*instance : nullptr, outcome);
  }
  exchange->ticket.reset();  // the key's and the box's place for another request
}

}  // namespace

bool readUsage(const boost::json::value& answer, std::int64_t& prompt, std::int64_t& completion) {
  const auto* usage = answer.is_object() ? answer.as_object().if_contains("usage") : nullptr;
  if (usage == nullptr || !usage->is_object()) {
    return false;
  }
  const auto* p = usage->as_object().if_contains("prompt_tokens");
  const auto* c = usage->as_object().if_contains("completion_tokens");
  if (p == nullptr || !p->is_int64()) {
    return false;
  }
  prompt = p->as_int64();
  completion = c != nullptr && c->is_int64() ? c->as_int64() : 0;
  return true;
}

void forward(ProxyContext& context, std::shared_ptr<Exchange> exchange, http::Reply reply) {
  auto up = std::make_shared<Upstream>(context, std::move(exchange), std::move(reply));
  net::dispatch(up->stream.get_executor(), [up] { up->attempt(); });
}

}  // namespace aibox::gateway
