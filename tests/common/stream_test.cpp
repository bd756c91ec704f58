// Streamed responses through a real Server on a unix socket and plain TCP, fetched with libcurl.

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/http/http.hpp"
#include "common/http/metrics.hpp"
#include "common/http/server.hpp"
#include "tests/support/files.hpp"

namespace aibox::http {
namespace {

namespace net = boost::asio;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMiB = 1024UL * 1024;
constexpr std::uint64_t kLarge = 64 * kMiB;

// The test body: 64-bit words of splitmix64 over their index, so every byte depends on where
// it is and a reordered, repeated or dropped piece changes the digest.
std::uint64_t patternWord(std::uint64_t index) {
  std::uint64_t z = index * 0x9E3779B97F4A7C15ULL + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31U);
}

// Appends `n` pattern bytes from `offset`; both are multiples of 8.
void appendPattern(std::string& out, std::uint64_t offset, std::size_t n) {
  auto start = out.size();
  out.resize(start + n);
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t word = patternWord((offset + i) / 8);
    std::copy_n(reinterpret_cast<const char*>(&word), 8, out.data() + start + i);
  }
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void update(const char* data, std::size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned size = 0;
    EVP_DigestFinal_ex(ctx_.get(), md.data(), &size);
    std::string out;
    for (unsigned i = 0; i < size; ++i) {
      constexpr std::string_view kHex = "0123456789abcdef";
      out += kHex[md[i] >> 4U];
      out += kHex[md[i] & 15U];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

std::string patternDigest(std::uint64_t size) {
  Sha256 sha;
  std::string piece;
  for (std::uint64_t offset = 0; offset < size; offset += piece.size()) {
    piece.clear();
    appendPattern(piece, offset, std::min<std::uint64_t>(kMiB, size - offset));
    sha.update(piece.data(), piece.size());
  }
  return sha.hex();
}

// What the sources of one test saw.
struct Probe {
  std::atomic<int> calls{0};
  std::atomic<bool> ranOnLoop{false};
  std::atomic<bool> finished{false};
  std::thread::id loop;
};

struct SourceSpec {
  std::uint64_t size = kLarge;
  std::size_t pieceLimit = kMiB;  // appends min(max, pieceLimit) bytes a call
  milliseconds delay{0};          // a slow disk
  std::optional<std::uint64_t> failAt;
};

// A body source over the pattern that records its calls in `probe`.
BodySource patternSource(SourceSpec spec, const std::shared_ptr<Probe>& probe) {
  return [spec, probe, offset = std::uint64_t{0}](std::string& out, std::size_t max) mutable {
    ++probe->calls;
    if (std::this_thread::get_id() == probe->loop) {
      probe->ranOnLoop = true;
    }
    std::this_thread::sleep_for(spec.delay);
    if (spec.failAt && offset >= *spec.failAt) {
      throw std::runtime_error("disk read failed");
    }
    auto n = std::min<std::uint64_t>({max, spec.pieceLimit, spec.size - offset});
    appendPattern(out, offset, n);
    offset += n;
    probe->finished = offset == spec.size;
    return offset < spec.size;
  };
}

StreamedResponse patternResponse(SourceSpec spec, std::shared_ptr<Probe> probe, bool sized) {
  StreamedResponse res;
  res.headers.set(boost::beast::http::field::content_type, "application/octet-stream");
  if (sized) {
    res.contentLength = spec.size;
  }
  res.source = patternSource(spec, std::move(probe));
  return res;
}

struct Fetched {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::uint64_t bytes = 0;
  std::string digest;
  std::map<std::string, std::string> headers;  // lower-case names
  long connects = 0;
  std::string body;  // the first KiB
};

// A libcurl handle that keeps its connection between requests.
class Client {
 public:
  explicit Client(std::string unixSocket = {}) : unixSocket_(std::move(unixSocket)) {}
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { curl_easy_cleanup(curl_); }

  // `onFirstData` runs inside the first write callback, while curl reads nothing more.
  Fetched get(const std::string& url, const std::function<void()>& onFirstData = {}) {
    Transfer t{{}, {}, onFirstData};
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    if (!unixSocket_.empty()) {
      curl_easy_setopt(curl_, CURLOPT_UNIX_SOCKET_PATH, unixSocket_.c_str());
    }
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Client::onData);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Client::onHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 60L);
    t.fetched.code = curl_easy_perform(curl_);
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &t.fetched.status);
    curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &t.fetched.connects);
    t.fetched.digest = t.sha.hex();
    return t.fetched;
  }

 private:
  struct Transfer {
    Fetched fetched;
    Sha256 sha;
    std::function<void()> onFirstData;
  };

  static std::size_t onData(char* data, std::size_t size, std::size_t count, void* user) {
    auto& t = *static_cast<Transfer*>(user);
    if (t.fetched.bytes == 0 && t.onFirstData) {
      t.onFirstData();
    }
    std::size_t n = size * count;
    t.sha.update(data, n);
    t.fetched.bytes += n;
    t.fetched.body.append(data, std::min<std::size_t>(n, 1024 - t.fetched.body.size()));
    return n;
  }

  static std::size_t onHeader(char* data, std::size_t size, std::size_t count, void* user) {
    auto& t = *static_cast<Transfer*>(user);
    std::string line(data, size * count);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      value.erase(value.find_last_not_of("\r\n") + 1);
      t.fetched.headers[name] = value;
    }
    return size * count;
  }

  std::string unixSocket_;
  CURL* curl_ = curl_easy_init();
};

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.add(Verb::get, "/ping", kPublic, [](const Call&) { return json(Status::ok, "pong"); });
  }

  void TearDown() override {
    work.reset();
    io.stop();
    if (loop.joinable()) {
      loop.join();
    }
    server.reset();
  }

  // Serves `spec` at `path`, with a Content-Length when `sized`.
  void serve(const std::string& path, SourceSpec spec, bool sized) {
    router.addAsync(Verb::get, path, kPublic,
                    [spec, sized, probe = probe](const std::shared_ptr<const Call>& /*call*/,
                                                 const Reply& reply) {
                      reply(patternResponse(spec, probe, sized));
                    });
  }

  void start(ServerOptions options = {}) {
    server.emplace(io, router, metrics, options);
    port = server->listenTcp({net::ip::make_address("127.0.0.1"), 0}, nullptr).port();
    server->listenUnix(socket());
    std::promise<std::thread::id> id;
    loop = std::thread([this, &id] {
      id.set_value(std::this_thread::get_id());
      io.run();
    });
    probe->loop = id.get_future().get();
  }

  std::filesystem::path socket() const { return dir.path() / "agent.sock"; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }

  test::TempDir dir;
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work{
      net::make_work_guard(io)};
  Router router;
  HttpMetrics metrics;
  std::optional<Server> server;
  std::thread loop;
  unsigned short port = 0;
  std::shared_ptr<Probe> probe = std::make_shared<Probe>();
};

TEST_F(StreamTest, SixtyFourMiBWithContentLengthArriveIntactAndKeepTheConnection) {
  serve("/bundle", {}, true);
  start();
  Client client(socket().string());
  auto fetched = client.get("http://localhost/bundle");
  ASSERT_EQ(fetched.code, CURLE_OK) << curl_easy_strerror(fetched.code);
  EXPECT_EQ(fetched.status, 200);
  EXPECT_EQ(fetched.bytes, kLarge);
  EXPECT_EQ(fetched.digest, patternDigest(kLarge));
  EXPECT_EQ(fetched.headers["content-length"], std::to_string(kLarge));
  EXPECT_EQ(fetched.headers.count("transfer-encoding"), 0U);
  EXPECT_EQ(fetched.headers["content-type"], "application/octet-stream");
  EXPECT_EQ(probe->calls, 64);
  EXPECT_FALSE(probe->ranOnLoop);

  auto next = client.get("http://localhost/ping");
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.connects, 0) << "the connection was not kept after the stream";
}

TEST_F(StreamTest, WithoutALengthTheBodyIsChunked) {
  serve("/bundle", {}, false);
  start();
  Client client;
  auto fetched = client.get(url("/bundle"));
  ASSERT_EQ(fetched.code, CURLE_OK) << curl_easy_strerror(fetched.code);
  EXPECT_EQ(fetched.status, 200);
  EXPECT_EQ(fetched.bytes, kLarge);
  EXPECT_EQ(fetched.digest, patternDigest(kLarge));
  EXPECT_EQ(fetched.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(fetched.headers.count("content-length"), 0U);

  auto next = client.get(url("/ping"));
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.connects, 0);
}

TEST_F(StreamTest, ASourceThatFailsTruncatesTheBodyAndTheServerGoesOn) {
  SourceSpec failing{.size = 8 * kMiB, .failAt = 3 * kMiB};
  serve("/failing-sized", failing, true);
  serve("/failing-chunked", failing, false);
  router.addAsync(Verb::get, "/short-sized", kPublic,
                  [probe = probe](const std::shared_ptr<const Call>&, const Reply& reply) {
                    auto res = patternResponse({.size = 2 * kMiB}, probe, false);
                    res.contentLength = 3 * kMiB;  // promises more than the source has
                    reply(std::move(res));
                  });
  start();
  for (const auto* path : {"/failing-sized", "/failing-chunked", "/short-sized"}) {
    Client client;
    auto fetched = client.get(url(path));
    EXPECT_NE(fetched.code, CURLE_OK) << path;
    EXPECT_EQ(fetched.status, 200) << path;
    EXPECT_LE(fetched.bytes, 3 * kMiB) << path;
    Client other;
    EXPECT_EQ(other.get(url("/ping")).status, 200) << path;
  }
}

TEST_F(StreamTest, ASlowClientIsFedPieceByPiece) {
  serve("/bundle", {}, true);
  start();
  Client client(socket().string());
  int callsWhilePaused = 0;
  auto fetched = client.get("http://localhost/bundle", [this, &callsWhilePaused] {
    std::this_thread::sleep_for(milliseconds(500));
    callsWhilePaused = probe->calls;
  });
  ASSERT_EQ(fetched.code, CURLE_OK) << curl_easy_strerror(fetched.code);
  EXPECT_EQ(fetched.digest, patternDigest(kLarge));
  // One piece on the wire and one waiting; a buffered body would have taken all 64.
  EXPECT_GE(callsWhilePaused, 1);
  EXPECT_LE(callsWhilePaused, 4);
  EXPECT_EQ(probe->calls, 64);
}

TEST_F(StreamTest, TheEventLoopAnswersWhileASourceIsSlowAndNoDeadlineCutsTheStream) {
  SourceSpec slow{.size = 512UL * 1024, .pieceLimit = 128UL * 1024, .delay = milliseconds(300)};
  serve("/slow", slow, false);
  ServerOptions options;
  options.headerTimeout = milliseconds(200);
  options.bodyTimeout = milliseconds(200);
  start(options);  // one event loop thread
  auto streamed = std::async(std::launch::async, [this] { return Client().get(url("/slow")); });
  while (probe->calls == 0) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  Clock::duration slowest{};
  int answered = 0;
  while (!probe->finished) {
    auto before = Clock::now();
    answered += Client().get(url("/ping")).status == 200 ? 1 : 0;
    slowest = std::max(slowest, Clock::now() - before);
    std::this_thread::sleep_for(milliseconds(20));
  }
  auto fetched = streamed.get();
  ASSERT_EQ(fetched.code, CURLE_OK) << curl_easy_strerror(fetched.code);
  EXPECT_EQ(fetched.digest, patternDigest(slow.size));  // 1.2 s, past both deadlines
  EXPECT_FALSE(probe->ranOnLoop);
  EXPECT_GE(answered, 10);
  EXPECT_LT(slowest, milliseconds(150)) << "a source call (300 ms) held up the event loop";
}

TEST_F(StreamTest, AStreamInFlightHoldsTheDrainUntilItEnds) {
  serve("/slow", {.size = kMiB, .pieceLimit = 128UL * 1024, .delay = milliseconds(50)}, true);
  start();
  auto streamed = std::async(std::launch::async, [this] { return Client().get(url("/slow")); });
  while (probe->calls == 0) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  std::promise<bool> drained;
  net::post(io, [this, &drained] {
    server->drain([this, &drained] { drained.set_value(probe->finished); });
  });
  auto fetched = streamed.get();
  ASSERT_EQ(fetched.code, CURLE_OK) << curl_easy_strerror(fetched.code);
  EXPECT_EQ(fetched.digest, patternDigest(kMiB));
  auto done = drained.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(done.get()) << "the drain ended before the stream";
}

}  // namespace
}  // namespace aibox::http
