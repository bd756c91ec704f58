// The server's shared state (the live connections) and the graceful drain: stop accepting,
// close idle connections, let requests in flight finish, force the rest after drainTimeout.
#include <boost/asio/post.hpp>

#include "common/http/server_internal.hpp"
#include "common/log/log.hpp"

namespace aibox::http {

detail::ServerShared::ServerShared(net::io_context& ioContext, const Router& r, HttpMetrics& m,
                                   ServerOptions o)
    : io(ioContext),
      router(r),
      metrics(m),
      options(o),
      drainTimer(ioContext),
      streams(std::make_unique<net::thread_pool>(std::max<std::size_t>(o.streamThreads, 1))) {}

void detail::ServerShared::track(const std::shared_ptr<SessionBase>& session) {
  std::lock_guard lock(mutex);
  std::erase_if(sessions, [](const auto& weak) { return weak.expired(); });
  sessions.push_back(session);
}

void detail::ServerShared::sessionEnded() {
  if (--live != 0 || !draining) {
    return;
  }
  std::lock_guard lock(mutex);
  if (done) {  // not yet finished (and so io is still running)
    net::post(io, [self = shared_from_this()] { self->finishDrain(); });
  }
}

void detail::ServerShared::finishDrain() {
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

std::vector<std::shared_ptr<SessionBase>> detail::ServerShared::liveSessions() {
  std::lock_guard lock(mutex);
  std::vector<std::shared_ptr<SessionBase>> out;
  for (const auto& weak : sessions) {
    if (auto s = weak.lock()) {
      out.push_back(std::move(s));
    }
  }
  return out;
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

}  // namespace aibox::http
