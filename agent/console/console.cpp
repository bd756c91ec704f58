#include "agent/console/console.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <utility>

#include "common/log/log.hpp"

namespace aibox::agent::console {
namespace {

namespace bhttp = boost::beast::http;

// A file descriptor closed when the last owner lets go.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

// A decoded path segment that names an ordinary, visible file or directory: no control
// characters, no encoded separators, not empty and not a dotfile (nor "." or "..").
std::optional<std::string> decodeSegment(std::string_view raw) {
  auto out = http::percentDecode(raw);
  if (!out || out->empty() || out->front() == '.') {
    return std::nullopt;
  }
  for (char c : *out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/' || c == '\\') {
      return std::nullopt;
    }
  }
  return out;
}

std::string_view extension(std::string_view path) {
  auto slash = path.rfind('/');
  auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto dot = name.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
}

http::Response notFound(std::string_view target) {
  auto res = http::error(http::Status::not_found, "not_found",
                         "no such file in the web console: " + std::string(target));
  secureHeaders(res.base());
  return res;
}

std::string hex(std::uint64_t value) {
  std::array<char, 16> text{};
  auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(), value, 16);
  return {text.data(), end};
}

// Size, modification time (ns) and inode: a file replaced or rewritten gets a new tag.
std::string etagOf(const struct stat& st) {
  auto mtime = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000ULL +
               static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
  return "\"" + hex(static_cast<std::uint64_t>(st.st_size)) + "-" + hex(mtime) + "-" +
         hex(static_cast<std::uint64_t>(st.st_ino)) + "\"";
}

// Opens `relative` below the directory `dir` one component at a time, never following a link,
// and only when it is a regular file.
Fd openBelow(const std::filesystem::path& dir, const std::string& relative, struct stat& st) {
  Fd current(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!current) {
    if (errno != ENOENT) {
      log::warning("cannot open the web console directory",
                   {{"dir", dir.string()}, {"errno", std::to_string(errno)}});
    }
    return Fd(-1);
  }
  std::size_t start = 0;
  while (true) {
    auto slash = relative.find('/', start);
    std::string name = relative.substr(start, slash - start);
    if (slash == std::string::npos) {
      if (::fstatat(current.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(st.st_mode)) {
        return Fd(-1);
      }
      // O_NONBLOCK: should the file be swapped for a FIFO meanwhile, the open does not hang.
      Fd file(
          ::openat(current.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!file || ::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return Fd(-1);
      }
      return file;
    }
    Fd next(::openat(current.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) {
      return Fd(-1);
    }
    current = std::move(next);
    start = slash + 1;
  }
}

// Reads up to `max` bytes at the file's offset; throws on an error.
bool readPiece(int fd, std::string& out, std::size_t max) {
  out.resize(max);
  std::size_t filled = 0;
  while (filled < max) {
    ssize_t n = ::read(fd, out.data() + filled, max - filled);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw std::system_error(errno, std::generic_category(), "cannot read a web console file");
    }
    if (n == 0) {
      break;
    }
    filled += static_cast<std::size_t>(n);
  }
  out.resize(filled);
  return filled == max;
}

void describe(bhttp::fields& fields, std::string_view type, std::string_view path,
              const std::string& etag) {
  fields.set(bhttp::field::content_type, type);
  fields.set(bhttp::field::cache_control, cacheControl(path));
  fields.set(bhttp::field::etag, etag);
  secureHeaders(fields);
}

}  // namespace

std::optional<std::string> filePath(std::string_view target) {
  auto path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/' || path.size() > 1024) {
    return std::nullopt;
  }
  if (path == "/") {
    return "index.html";
  }
  std::string out;
  std::size_t start = 1;
  while (true) {
    auto slash = path.find('/', start);
    auto segment = decodeSegment(path.substr(start, slash - start));
    if (!segment) {
      return std::nullopt;
    }
    out += *segment;
    if (slash == std::string_view::npos) {
      return out;
    }
    out += '/';
    start = slash + 1;
  }
}

std::optional<std::string_view> contentType(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 13> kTypes{{
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"woff2", "font/woff2"},
      {"txt", "text/plain; charset=utf-8"},
      {"map", "application/json"},
  }};
  auto ext = extension(path);
  for (const auto& [known, type] : kTypes) {
    if (ext == known) {
      return type;
    }
  }
  return std::nullopt;
}

std::string_view cacheControl(std::string_view path) {
  auto ext = extension(path);
  if (ext == "html" || ext == "js" || ext == "mjs" || ext == "css" || ext == "json" ||
      ext == "map" || ext == "txt") {
    return "no-cache";
  }
  return "max-age=86400";
}

bool etagMatches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
      item.remove_suffix(1);
    }
    if (item.starts_with("W/")) {
      item.remove_prefix(2);  // If-None-Match compares weakly
    }
    if (item == "*" || item == etag) {
      return true;
    }
  }
  return false;
}

void secureHeaders(bhttp::fields& fields) {
  fields.set("Content-Security-Policy",
             "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
             "base-uri 'none'; form-action 'self'");
  fields.set("X-Content-Type-Options", "nosniff");
  fields.set("Referrer-Policy", "no-referrer");
  fields.set("X-Frame-Options", "DENY");
  fields.set("Cross-Origin-Opener-Policy", "same-origin");
}

Files::Files(std::filesystem::path dir) : dir_(std::move(dir)) {}

Files::~Files() {
  thread_.join();
}

void Files::serve(const std::shared_ptr<const http::Call>& call, const http::Reply& reply) {
  boost::asio::post(thread_, [this, call, reply] {
    try {
      reply(answer(*call));
    } catch (const std::exception& e) {
      log::warning("a web console file cannot be read",
                   {{"target", std::string(call->request.target())}, {"error", e.what()}});
      reply(notFound(call->request.target()));
    }
  });
}

http::AnyResponse Files::answer(const http::Call& call) const {
  std::string_view target(call.request.target().data(), call.request.target().size());
  auto relative = filePath(target);
  auto type = relative ? contentType(*relative) : std::nullopt;
  if (!type) {
    return notFound(target);
  }
  struct stat st {};
  Fd file = openBelow(dir_, *relative, st);
  if (!file) {
    return notFound(target);
  }
  auto etag = etagOf(st);
  auto ifNoneMatch = call.request[bhttp::field::if_none_match];
  if (etagMatches(std::string_view(ifNoneMatch.data(), ifNoneMatch.size()), etag)) {
    http::Response res{http::Status::not_modified, 11};
    describe(res.base(), *type, *relative, etag);
    res.erase(bhttp::field::content_type);
    return res;
  }
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > kWholeFileBytes || call.request.method() == http::Verb::head) {
    // Streamed from the file as the client takes it; for HEAD only the head is sent.
    http::StreamedResponse res;
    describe(res.headers, *type, *relative, etag);
    res.contentLength = size;
    auto shared = std::make_shared<Fd>(std::move(file));
    res.source = [shared](std::string& out, std::size_t max) {
      return readPiece(shared->get(), out, max);
    };
    return res;
  }
  http::Response res{http::Status::ok, 11};
  describe(res.base(), *type, *relative, etag);
  readPiece(file.get(), res.body(), static_cast<std::size_t>(size));
  return res;
}

}  // namespace aibox::agent::console
