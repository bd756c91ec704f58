// HTTP downloads for model imports, against a local file server with injected faults: hashing
// while writing, resuming with Range after dropped connections, retries of server errors,
// errors that say what to do (and never show credentials), cancel, and the HEAD size.
#include "agent/models/download.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <future>
#include <random>
#include <thread>

#include "agent/models/models.hpp"
#include "tests/support/files.hpp"
#include "tests/support/http_file_server.hpp"

namespace aibox::agent::models {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kFileBytes = 3 * kMiB;

std::string randomBytes(std::uint64_t size) {
  std::mt19937_64 random(42);
  std::string bytes(size, '\0');
  for (auto& byte : bytes) {
    byte = static_cast<char>(random());
  }
  return bytes;
}

// A file the test downloads into, with the HashingWriter on it.
class Sink {
 public:
  explicit Sink(const stdfs::path& path)
      : file_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)),
        writer_(file_.fd) {}
  HashingWriter& writer() { return writer_; }

 private:
  struct File {
    explicit File(int descriptor) : fd(descriptor) {}
    File(const File&) = delete;
    File& operator=(const File&) = delete;
    ~File() { ::close(fd); }
    int fd;
  };
  File file_;  // closed after the writer has stopped
  HashingWriter writer_;
};

class DownloadTest : public ::testing::Test {
 protected:
  DownloadTest() : server_(dir_.path() / "www") {
    test::writeFile(source(), randomBytes(kFileBytes));
    options_.retries = 3;
    options_.backoff = 10ms;
    options_.lowSpeedTime = 5s;
  }

  stdfs::path source() const { return dir_.path() / "www" / "model.gguf"; }
  stdfs::path target() const { return dir_.path() / "model.partial"; }

  // Downloads `url` into target() and returns the digest.
  std::string fetch(const std::string& url) {
    Sink sink(target());
    download(url, sink.writer(), options_, cancel_, done_, total_);
    return sink.writer().finish();
  }

  std::string errorOf(const std::function<void()>& action) {
    try {
      action();
    } catch (const std::runtime_error& error) {
      return error.what();
    }
    ADD_FAILURE() << "no error";
    return {};
  }

  std::vector<std::string> ranges() const {
    std::vector<std::string> out;
    for (const auto& request : server_.requests()) {
      out.push_back(request.range);
    }
    return out;
  }

  test::TempDir dir_;
  test::HttpFileServer server_;
  DownloadOptions options_;
  std::atomic<bool> cancel_{false};
  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::uint64_t> total_{0};
};

TEST_F(DownloadTest, HashesAndWritesTheWholeFile) {
  EXPECT_EQ(fetch(server_.url("model.gguf")), hashFile(source()));
  EXPECT_TRUE(test::readFile(target()) == test::readFile(source()));
  EXPECT_EQ(done_, kFileBytes);
  EXPECT_EQ(total_, kFileBytes);
  ASSERT_EQ(server_.requests().size(), 1U);
  EXPECT_EQ(server_.requests()[0].method, "GET");
  EXPECT_EQ(server_.requests()[0].target, "/model.gguf");
  EXPECT_EQ(server_.requests()[0].range, "");
}

TEST_F(DownloadTest, ResumesDroppedConnectionsWithRange) {
  server_.dropAfterBytes(kMiB, 2);
  EXPECT_EQ(fetch(server_.url("model.gguf")), hashFile(source()));
  EXPECT_TRUE(test::readFile(target()) == test::readFile(source()));
  EXPECT_EQ(ranges(), (std::vector<std::string>{"", "bytes=1048576-", "bytes=2097152-"}));
  EXPECT_EQ(done_, kFileBytes);
  EXPECT_EQ(total_, kFileBytes);
}

TEST_F(DownloadTest, StartsFromWhatTheWriterHas) {
  std::string bytes = test::readFile(source());
  {
    Sink sink(target());
    sink.writer().append(std::string_view(bytes).substr(0, kMiB));
    download(server_.url("model.gguf"), sink.writer(), options_, cancel_, done_, total_);
    EXPECT_EQ(sink.writer().finish(), hashFile(source()));
  }
  EXPECT_EQ(ranges(), (std::vector<std::string>{"bytes=1048576-"}));
  EXPECT_EQ(done_, kFileBytes - kMiB);
  EXPECT_EQ(total_, kFileBytes);
}

TEST_F(DownloadTest, AWriterWithTheWholeFileIsDone) {
  Sink sink(target());
  sink.writer().append(test::readFile(source()));
  download(server_.url("model.gguf"), sink.writer(), options_, cancel_, done_, total_);
  EXPECT_EQ(sink.writer().finish(), hashFile(source()));
  EXPECT_EQ(ranges(), (std::vector<std::string>{"bytes=3145728-"}));  // answered 416
}

TEST_F(DownloadTest, RetriesServerErrors) {
  server_.failWith(503, 2);
  EXPECT_EQ(fetch(server_.url("model.gguf")), hashFile(source()));
  EXPECT_EQ(server_.requests().size(), 3U);
}

TEST_F(DownloadTest, GivesUpWhenTheRetriesAreSpent) {
  server_.failWith(503, 100);
  options_.retries = 2;
  std::string error = errorOf([this] { fetch(server_.url("model.gguf")); });
  EXPECT_NE(error.find("HTTP 503"), std::string::npos) << error;
  EXPECT_NE(error.find("3 attempts"), std::string::npos) << error;
  EXPECT_NE(error.find("try again later"), std::string::npos) << error;
  EXPECT_EQ(server_.requests().size(), 3U);
}

TEST_F(DownloadTest, NotFoundIsNotRetried) {
  std::string url = server_.url("missing.gguf");
  std::string error = errorOf([this, &url] { fetch(url); });
  EXPECT_NE(error.find("404"), std::string::npos) << error;
  EXPECT_NE(error.find(url), std::string::npos) << error;
  EXPECT_NE(error.find("check the URL"), std::string::npos) << error;
  EXPECT_EQ(server_.requests().size(), 1U);
  EXPECT_EQ(done_, 0U);
}

TEST_F(DownloadTest, AServerIgnoringRangeWhenResumingIsAnError) {
  server_.dropAfterBytes(kMiB, 1);
  server_.ignoreRange(true);
  std::string error = errorOf([this] { fetch(server_.url("model.gguf")); });
  EXPECT_NE(error.find("ignored the Range request to resume at byte 1048576"), std::string::npos)
      << error;
  EXPECT_NE(error.find("restart the download from zero"), std::string::npos) << error;
  EXPECT_EQ(ranges(), (std::vector<std::string>{"", "bytes=1048576-"}));
  EXPECT_EQ(done_, kMiB);  // the body of the 200 was not appended
}

TEST_F(DownloadTest, CancelStopsTheDownload) {
  server_.stallAfterBytes(kMiB);
  Sink sink(target());
  auto running = std::async(std::launch::async, [this, &sink] {
    download(server_.url("model.gguf"), sink.writer(), options_, cancel_, done_, total_);
  });
  for (int i = 0; i < 500 && done_ < kMiB; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(done_, kMiB);
  auto cancelledAt = std::chrono::steady_clock::now();
  cancel_ = true;
  ASSERT_EQ(running.wait_for(3s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - cancelledAt, 3s);
  std::string error = errorOf([&running] { running.get(); });
  EXPECT_EQ(error, "cancelled");
  EXPECT_EQ(server_.requests().size(), 1U);
}

TEST_F(DownloadTest, AStalledTransferIsAbortedAndRetried) {
  server_.stallAfterBytes(0);
  options_.lowSpeedTime = 1s;
  options_.retries = 1;
  std::string error = errorOf([this] { fetch(server_.url("model.gguf")); });
  EXPECT_NE(error.find("cannot download"), std::string::npos) << error;
  EXPECT_NE(error.find("2 attempts"), std::string::npos) << error;
  EXPECT_EQ(server_.requests().size(), 2U);
}

TEST_F(DownloadTest, RemoteSizeAsksWithHead) {
  EXPECT_EQ(remoteSize(server_.url("model.gguf"), options_), kFileBytes);
  ASSERT_EQ(server_.requests().size(), 1U);
  EXPECT_EQ(server_.requests()[0].method, "HEAD");
  std::string error = errorOf([this] { remoteSize(server_.url("missing.gguf"), options_); });
  EXPECT_NE(error.find("404"), std::string::npos) << error;
}

TEST_F(DownloadTest, AnUnreachableServerIsAClearError) {
  std::string url;
  {
    test::HttpFileServer gone(dir_.path());
    url = gone.url("model.gguf");
  }
  options_.retries = 1;
  for (const auto& error : {errorOf([this, &url] { fetch(url); }),
                            errorOf([this, &url] { remoteSize(url, options_); })}) {
    EXPECT_NE(error.find("cannot download " + url + " (2 attempts)"), std::string::npos) << error;
    EXPECT_NE(error.find("check the URL, the network and the proxy"), std::string::npos) << error;
  }
}

TEST_F(DownloadTest, CredentialsNeverAppearInErrors) {
  std::string missing = server_.url("missing.gguf");
  std::string withCredentials = "http://reader:s3cret@" + missing.substr(7);
  std::string unreachable = "http://reader:s3cret@127.0.0.1:1/model.gguf";
  options_.retries = 0;
  for (const auto& error :
       {errorOf([this, &withCredentials] { fetch(withCredentials); }),
        errorOf([this, &withCredentials] { remoteSize(withCredentials, options_); }),
        errorOf([this, &unreachable] { fetch(unreachable); })}) {
    EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
    EXPECT_EQ(error.find("reader"), std::string::npos) << error;
  }
  EXPECT_NE(errorOf([this, &withCredentials] { fetch(withCredentials); }).find(missing),
            std::string::npos);
}

TEST(RedactUrl, DropsTheUserInfoOnly) {
  EXPECT_EQ(redactUrl("https://u:p@host:8443/a@b?c=d@e"), "https://host:8443/a@b?c=d@e");
  EXPECT_EQ(redactUrl("https://host/a@b"), "https://host/a@b");
  EXPECT_EQ(redactUrl("http://token@host"), "http://host");
}

}  // namespace
}  // namespace aibox::agent::models
