// A fault-injection engine for the supervision tests: an HTTP server on 127.0.0.1:PORT that
// answers GET /health like aibox-runtime serve (503 loading with progress, then 200) and can
// misbehave on purpose. It uses plain sockets so that it has no behaviour of its own to hide.
//
//   fault_engine --port N [--load-ms N] [--no-progress] [--crash-at-start] [--crash-after-ms N]
//                [--hang-health-after-ms N] [--ignore-sigterm] [--fork-children N]
//                [--exit-code N] [--token-file F] [--notify]
//
// --notify: says READY=1 over $NOTIFY_SOCKET once loaded, and STATUS= while it loads (unless
// --no-progress), as an engine with sd_notify readiness does.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

long msSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

void answer(int fd, int status, const std::string& body) {
  std::string head = "HTTP/1.1 " + std::to_string(status) +
                     (status == 200 ? " OK" : " Service Unavailable") +
                     "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  std::string all = head + body;
  (void)!::write(fd, all.data(), all.size());
}

// One datagram to $NOTIFY_SOCKET, as sd_notify(3) sends it.
void notify(const std::string& text) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr) {
    return;
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un to{};
  to.sun_family = AF_UNIX;
  std::strncpy(to.sun_path, path, sizeof(to.sun_path) - 1);
  (void)!::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  long loadMs = 0;
  bool progress = true;
  bool crashAtStart = false;
  long crashAfterMs = -1;
  long hangAfterMs = -1;
  bool ignoreTerm = false;
  int children = 0;
  int exitCode = 3;
  bool notifies = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--port") {
      port = std::atoi(next().c_str());
    } else if (a == "--load-ms") {
      loadMs = std::atol(next().c_str());
    } else if (a == "--no-progress") {
      progress = false;
    } else if (a == "--crash-at-start") {
      crashAtStart = true;
    } else if (a == "--crash-after-ms") {
      crashAfterMs = std::atol(next().c_str());
    } else if (a == "--hang-health-after-ms") {
      hangAfterMs = std::atol(next().c_str());
    } else if (a == "--ignore-sigterm") {
      ignoreTerm = true;
    } else if (a == "--fork-children") {
      children = std::atoi(next().c_str());
    } else if (a == "--exit-code") {
      exitCode = std::atoi(next().c_str());
    } else if (a == "--notify") {
      notifies = true;
    } else if (a == "--token-file") {
      std::ifstream token(next());
      std::string text;
      if (!std::getline(token, text) || text.empty()) {
        std::fprintf(stderr, "fault engine: cannot read the token file\n");
        return 5;
      }
    }
  }
  std::printf("fault engine pid %d port %d\n", ::getpid(), port);
  std::fflush(stdout);
  if (crashAtStart) {
    std::fprintf(stderr, "fault engine: crashing at start as asked\n");
    return exitCode;
  }
  if (ignoreTerm) {
    ::signal(SIGTERM, SIG_IGN);
  }
  for (int c = 0; c < children; ++c) {
    if (::fork() == 0) {
      ::setsid();  // out of the instance's process group: only the cgroup or the marker finds it
      for (;;) {
        ::pause();
      }
    }
  }
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<unsigned short>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener, 16) != 0) {
    std::fprintf(stderr, "fault engine: cannot listen on port %d: %s\n", port,
                 std::strerror(errno));
    return 4;
  }
  auto started = Clock::now();
  bool saidReady = false;
  long saidStatusAt = -1000;
  for (;;) {
    if (notifies && !saidReady) {
      long elapsed = msSince(started);
      if (elapsed >= loadMs) {
        notify("STATUS=loaded\nREADY=1\n");
        saidReady = true;
      } else if (progress && elapsed - saidStatusAt >= 200) {
        notify("STATUS=loading " + std::to_string(elapsed * 100 / loadMs) + "%\n");
        saidStatusAt = elapsed;
      }
    }
    if (crashAfterMs >= 0 && msSince(started) >= crashAfterMs) {
      std::fprintf(stderr, "fault engine: crashing as asked\n");
      std::abort();
    }
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) {
      continue;
    }
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) {
      continue;
    }
    char buffer[4096];
    (void)!::read(fd, buffer, sizeof(buffer));
    if (hangAfterMs >= 0 && msSince(started) >= hangAfterMs) {
      continue;  // never answers, never closes: a hung health check
    }
    long elapsed = msSince(started);
    if (elapsed < loadMs) {
      std::string body = progress ? "{\"status\":\"loading\",\"progress\":" +
                                        std::to_string(static_cast<double>(elapsed) / loadMs) + "}"
                                  : "{\"status\":\"loading\"}";
      if (progress) {
        std::printf("loading %ld%%\n", elapsed * 100 / loadMs);
        std::fflush(stdout);
      }
      answer(fd, 503, body);
    } else {
      answer(fd, 200, "{\"status\":\"ok\"}");
    }
    ::close(fd);
  }
}
