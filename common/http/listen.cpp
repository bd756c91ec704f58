// The listeners: TCP (TLS, or plain for benchmarks) and the unix socket whose peers are named
// by SO_PEERCRED; each accepted connection becomes a Session (session.cpp).
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/strand.hpp>
#include <charconv>
#include <stdexcept>

#include "common/http/server_internal.hpp"
#include "common/log/log.hpp"

namespace aibox::http {

namespace {

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
