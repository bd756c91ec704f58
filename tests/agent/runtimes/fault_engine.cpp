// A fault-injection engine for the supervision tests: an HTTP server on 127.0.0.1:PORT that
// answers GET /health like aibox-runtime serve (503 loading with progress, then 200) and can
// misbehave on purpose. It uses plain sockets so that it has no behaviour of its own to hide.
//
//   fault_engine --port N [--load-ms N] [--no-progress] [--crash-at-start] [--crash-after-ms N]
//                [--hang-health-after-ms N] [--ignore-sigterm] [--fork-children N]
//                [--exit-code N] [--token-file F] [--notify]
//                [--chat-chunks N] [--chunk-ms N] [--break-after N] [--events-file F]
//                [--busy-chats]
//
// --notify: says READY=1 over $NOTIFY_SOCKET once loaded, and STATUS= while it loads (unless
// --no-progress), as an engine with sd_notify readiness does.
//
// --chat-chunks N: answers POST /v1/... (in a child process per request) with N chunks of an
// OpenAI chat stream, one every --chunk-ms, then the usage chunk when the request asked for
// it (stream_options.include_usage) and [DONE]; a request without "stream":true gets one JSON
// answer after the same time. --break-after N closes the stream after N chunks. Each request
// appends "start", then "done", "cancelled" (the caller went away) or "broke" to
// --events-file: the gateway tests read what reached the engine. --busy-chats answers every
// POST /v1/... 503 at once (an instance that is full or shutting down) and appends "busy".
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

void event(const std::string& file, const std::string& what) {
  if (!file.empty()) {
    std::ofstream(file, std::ios::app) << what << "\n";
  }
}

bool send(int fd, const std::string& text) {
  return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

struct Chat {
  int chunks = 0;
  long chunkMs = 0;
  int breakAfter = -1;
  std::string eventsFile;
};

// Reads the rest of a request whose start is in `request`, up to its Content-Length.
void readBody(int fd, std::string& request) {
  auto headEnd = request.find("\r\n\r\n");
  auto lengthAt = request.find("Content-Length: ");
  std::size_t length =
      lengthAt == std::string::npos ? 0 : std::stoul(request.substr(lengthAt + 16));
  char buffer[4096];
  while (headEnd != std::string::npos && request.size() < headEnd + 4 + length) {
    auto n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) {
      break;
    }
    request.append(buffer, static_cast<std::size_t>(n));
  }
}

// One chat request, in its own process: the listener goes on answering health checks.
[[noreturn]] void serveChat(int fd, std::string request, const Chat& chat) {
  readBody(fd, request);
  bool stream = request.find("\"stream\":true") != std::string::npos;
  bool usage = request.find("\"include_usage\":true") != std::string::npos;
  event(chat.eventsFile, "start");
  const std::string usageJson =
      "{\"prompt_tokens\":7,\"completion_tokens\":" + std::to_string(chat.chunks) +
      ",\"total_tokens\":" + std::to_string(7 + chat.chunks) + "}";
  if (!stream) {
    ::usleep(static_cast<useconds_t>(chat.chunks * chat.chunkMs * 1000));
    std::string body =
        "{\"id\":\"fault-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"fault\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"tok\"},"
        "\"finish_reason\":\"stop\"}],\"usage\":" +
        usageJson + "}";
    send(fd,
         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
         "Content-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body);
    event(chat.eventsFile, "done");
    ::_exit(0);
  }
  if (!send(fd,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")) {
    event(chat.eventsFile, "cancelled");
    ::_exit(0);
  }
  for (int i = 0; i < chat.chunks; ++i) {
    ::usleep(static_cast<useconds_t>(chat.chunkMs * 1000));
    if (i == chat.breakAfter) {
      event(chat.eventsFile, "broke");
      ::_exit(0);
    }
    std::string chunk =
        "data: {\"id\":\"fault-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        "\"model\":\"fault\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t" +
        std::to_string(i) + " \"},\"finish_reason\":null}]}\n\n";
    if (!send(fd, chunk)) {
      event(chat.eventsFile, "cancelled");
      ::_exit(0);
    }
  }
  std::string tail;
  if (usage) {
    tail +=
        "data: {\"id\":\"fault-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        "\"model\":\"fault\",\"choices\":[],\"usage\":" +
        usageJson + "}\n\n";
  }
  tail += "data: [DONE]\n\n";
  event(chat.eventsFile, send(fd, tail) ? "done" : "cancelled");
  ::_exit(0);
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
  Chat chat;
  bool busyChats = false;
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
    } else if (a == "--chat-chunks") {
      chat.chunks = std::atoi(next().c_str());
    } else if (a == "--chunk-ms") {
      chat.chunkMs = std::atol(next().c_str());
    } else if (a == "--break-after") {
      chat.breakAfter = std::atoi(next().c_str());
    } else if (a == "--busy-chats") {
      busyChats = true;
    } else if (a == "--events-file") {
      chat.eventsFile = next();
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
  ::signal(SIGCHLD, SIG_IGN);  // chat children are reaped by the kernel
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
    auto got = ::read(fd, buffer, sizeof(buffer));
    std::string request(buffer, got > 0 ? static_cast<std::size_t>(got) : 0);
    if (busyChats && request.starts_with("POST /v1/")) {
      readBody(fd, request);
      event(chat.eventsFile, "busy");
      answer(fd, 503, R"({"error":{"message":"busy","type":"server_error","code":"busy"}})");
      ::close(fd);
      continue;
    }
    if (chat.chunks > 0 && request.starts_with("POST /v1/")) {
      if (::fork() == 0) {
        ::close(listener);
        serveChat(fd, std::move(request), chat);
      }
      ::close(fd);
      continue;
    }
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
