#include "agent/models/download.hpp"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "agent/models/models.hpp"

namespace aibox::agent::models {
namespace {

constexpr long kMaxRedirects = 10;
constexpr long kLowSpeedBytesPerSecond = 1024;
constexpr long kConnectTimeoutSeconds = 30;
constexpr std::chrono::milliseconds kMaxBackoff = std::chrono::seconds(30);

// Why an attempt failed, and whether another one may do better.
struct Failure {
  std::string what;    // "the server answered HTTP 404 for https://host/file"
  std::string detail;  // libcurl's explanation, if any
  std::string advice;  // what the admin can do
  bool retryable = false;

  std::string text(int attempts) const {
    std::string out = what;
    if (attempts > 1) {
      out += " (" + std::to_string(attempts) + " attempts)";
    }
    if (!detail.empty()) {
      out += ": " + detail;
    }
    return out + ": " + advice;
  }
};

// Where the user:password of a URL sits.
struct UserInfo {
  std::size_t begin = 0;
  std::size_t end = 0;  // the '@' after it
};
std::optional<UserInfo> findUserInfo(const std::string& url) {
  std::size_t scheme = url.find("://");
  std::size_t begin = scheme == std::string::npos ? 0 : scheme + 3;
  std::size_t authorityEnd = url.find_first_of("/?#", begin);
  std::string_view authority = std::string_view(url).substr(begin, authorityEnd - begin);
  std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  return UserInfo{begin, begin + at};
}

// libcurl's messages do not quote URLs, but a credential must never reach a log even if one did.
std::string scrub(std::string text, const std::string& url, const std::string& proxy) {
  for (const std::string* source : {&url, &proxy}) {
    auto info = findUserInfo(*source);
    if (!info || info->end == info->begin) {
      continue;
    }
    std::string secret = source->substr(info->begin, info->end - info->begin);
    for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

Failure httpFailure(long status, const std::string& shownUrl) {
  Failure failure{"the server answered HTTP " + std::to_string(status) + " for " + shownUrl};
  if (status == 401 || status == 403) {
    failure.advice =
        "the file is private or the link has expired: check the URL and the access it needs";
  } else if (status == 408 || status == 429 || status >= 500) {
    failure.advice = "the server is unavailable or overloaded: try again later";
    failure.retryable = true;
  } else {
    failure.advice = "check the URL";
  }
  return failure;
}

Failure curlFailure(CURLcode rc, const char* errorBuffer, const std::string& url,
                    const DownloadOptions& options) {
  std::string detail =
      scrub(errorBuffer[0] != '\0' ? errorBuffer : curl_easy_strerror(rc), url, options.proxy);
  std::string shownUrl = redactUrl(url);
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return {"cannot verify the TLS certificate of " + shownUrl, detail,
              "check the URL, the CA bundle and the system clock", false};
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
      return {"cannot download " + shownUrl, detail, "check the URL (http and https only)", false};
    default:
      return {"cannot download " + shownUrl, detail, "check the URL, the network and the proxy",
              true};
  }
}

using Curl = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using ErrorBuffer = std::array<char, CURL_ERROR_SIZE>;

Curl openCurl(const std::string& url, const DownloadOptions& options, ErrorBuffer& errorBuffer) {
  static std::once_flag initialised;
  std::call_once(initialised, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  Curl curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    throw std::runtime_error("cannot initialise libcurl");
  }
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(handle, CURLOPT_MAXREDIRS, kMaxRedirects);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "aibox-agent");
  curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, kLowSpeedBytesPerSecond);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.lowSpeedTime.count()));
  curl_easy_setopt(handle, CURLOPT_FAILONERROR, 0L);
  errorBuffer.fill('\0');
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, errorBuffer.data());
  if (options.caBundle) {
    curl_easy_setopt(handle, CURLOPT_CAINFO, options.caBundle->c_str());
  }
  if (!options.proxy.empty()) {
    curl_easy_setopt(handle, CURLOPT_PROXY, options.proxy.c_str());
  }
  return curl;
}

void sleepUnlessCancelled(std::chrono::milliseconds delay, const std::atomic<bool>& cancel) {
  constexpr std::chrono::milliseconds kSlice{50};
  auto until = std::chrono::steady_clock::now() + delay;
  while (!cancel.load()) {
    auto left = until - std::chrono::steady_clock::now();
    if (left <= left.zero()) {
      return;
    }
    std::this_thread::sleep_for(
        std::min(std::chrono::duration_cast<std::chrono::milliseconds>(left), kSlice));
  }
  throw std::runtime_error("cancelled");
}

// Runs `attempt` until it succeeds, its failure is final or the retries are spent. An attempt
// that made progress resets the count, so a long download survives many brief outages.
void withRetries(const DownloadOptions& options, const std::atomic<bool>& cancel,
                 const std::function<std::optional<Failure>(bool& progressed)>& attempt) {
  auto delay = options.backoff;
  int failures = 0;
  for (int attempts = 1;; ++attempts) {
    bool progressed = false;
    auto failure = attempt(progressed);
    if (!failure) {
      return;
    }
    if (progressed) {
      failures = 0;
      delay = options.backoff;
    }
    if (!failure->retryable) {
      throw std::runtime_error(failure->text(1));
    }
    if (failures >= options.retries) {
      throw std::runtime_error(failure->text(attempts));
    }
    ++failures;
    sleepUnlessCancelled(delay, cancel);
    delay = std::min(delay * 2, kMaxBackoff);
  }
}

std::optional<std::uint64_t> parseNumber(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// One GET of the body from `offset` on.
struct Transfer {
  const std::string& url;
  HashingWriter& writer;
  const std::atomic<bool>& cancel;
  std::atomic<std::uint64_t>& done;
  std::atomic<std::uint64_t>& total;
  CURL* curl = nullptr;
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> rangeStart;  // Content-Range of the last response
  std::optional<std::uint64_t> rangeSize;
  bool checked = false;   // the status of the response was checked
  bool complete = false;  // 416 at the end of the file: the writer has it all already
  std::optional<Failure> failure;
  std::exception_ptr writeError;
};

// "bytes 100-199/1000", "bytes 100-199/*" or "bytes */1000".
void parseContentRange(std::string_view value, Transfer& transfer) {
  std::size_t begin = value.find_first_not_of(" \t");
  std::size_t end = value.find_last_not_of(" \t\r\n");
  if (begin == std::string_view::npos) {
    return;
  }
  value = value.substr(begin, end - begin + 1);
  if (!value.starts_with("bytes ")) {
    return;
  }
  value.remove_prefix(6);
  std::size_t slash = value.find('/');
  if (slash == std::string_view::npos) {
    return;
  }
  transfer.rangeSize = parseNumber(value.substr(slash + 1));
  std::string_view range = value.substr(0, slash);
  if (range != "*") {
    transfer.rangeStart = parseNumber(range.substr(0, range.find('-')));
  }
}

std::size_t onHeader(char* data, std::size_t size, std::size_t count, void* opaque) {
  auto& transfer = *static_cast<Transfer*>(opaque);
  std::string_view line(data, size * count);
  constexpr std::string_view kContentRange = "content-range:";
  if (line.starts_with("HTTP/")) {
    transfer.rangeStart.reset();
    transfer.rangeSize.reset();
  } else if (line.size() > kContentRange.size() &&
             ::strncasecmp(line.data(), kContentRange.data(), kContentRange.size()) == 0) {
    parseContentRange(line.substr(kContentRange.size()), transfer);
  }
  return size * count;
}

std::optional<Failure> checkResponse(Transfer& transfer) {
  transfer.checked = true;
  long status = 0;
  curl_easy_getinfo(transfer.curl, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t length = -1;
  curl_easy_getinfo(transfer.curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  std::string shownUrl = redactUrl(transfer.url);
  std::string offset = std::to_string(transfer.offset);
  if (status == 200 && transfer.offset == 0) {
    if (length >= 0) {
      transfer.total = static_cast<std::uint64_t>(length);
    }
    return std::nullopt;
  }
  if (status == 200) {
    return Failure{"the server of " + shownUrl + " ignored the Range request to resume at byte " +
                       offset + " (it answered 200, not 206)",
                   "", "restart the download from zero", false};
  }
  if (status == 206 && transfer.rangeStart != transfer.offset) {
    return Failure{"the server of " + shownUrl + " sent a range that does not start at byte " +
                       offset + " when asked to resume there",
                   "", "restart the download from zero", false};
  }
  if (status == 206) {
    if (transfer.rangeSize) {
      transfer.total = *transfer.rangeSize;
    } else if (length >= 0) {
      transfer.total = transfer.offset + static_cast<std::uint64_t>(length);
    }
    return std::nullopt;
  }
  if (status == 416 && transfer.offset > 0 && transfer.rangeSize == transfer.offset) {
    transfer.complete = true;
    transfer.total = transfer.offset;
    return std::nullopt;
  }
  return httpFailure(status, shownUrl);
}

std::size_t onBody(char* data, std::size_t size, std::size_t count, void* opaque) {
  auto& transfer = *static_cast<Transfer*>(opaque);
  std::size_t bytes = size * count;
  if (!transfer.checked) {
    transfer.failure = checkResponse(transfer);
  }
  if (transfer.failure || transfer.complete || transfer.cancel.load()) {
    return 0;  // stops the transfer; the body of an error page is not the model
  }
  try {
    transfer.writer.append({data, bytes});
  } catch (...) {
    transfer.writeError = std::current_exception();
    return 0;
  }
  transfer.done += bytes;
  return bytes;
}

int onProgress(void* opaque, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(opaque)->cancel.load() ? 1 : 0;
}

std::optional<Failure> attemptDownload(Transfer& transfer, const DownloadOptions& options) {
  ErrorBuffer errorBuffer;
  Curl curl = openCurl(transfer.url, options, errorBuffer);
  transfer.curl = curl.get();
  transfer.offset = transfer.writer.bytes();
  transfer.checked = false;
  transfer.complete = false;
  transfer.failure.reset();
  std::string range = std::to_string(transfer.offset) + "-";
  if (transfer.offset > 0) {
    curl_easy_setopt(curl.get(), CURLOPT_RANGE, range.c_str());
  }
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, onProgress);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &transfer);

  CURLcode rc = curl_easy_perform(curl.get());
  if (transfer.writeError) {
    std::rethrow_exception(transfer.writeError);
  }
  if (transfer.complete) {
    return std::nullopt;
  }
  if (rc != CURLE_OK && transfer.cancel.load()) {
    throw std::runtime_error("cancelled");
  }
  if (transfer.failure) {
    return transfer.failure;
  }
  if (rc != CURLE_OK) {
    return curlFailure(rc, errorBuffer.data(), transfer.url, options);
  }
  if (!transfer.checked) {  // an empty body
    return checkResponse(transfer);
  }
  return std::nullopt;
}

}  // namespace

std::string redactUrl(const std::string& url) {
  auto info = findUserInfo(url);
  if (!info) {
    return url;
  }
  return url.substr(0, info->begin) + url.substr(info->end + 1);
}

std::optional<std::uint64_t> remoteSize(const std::string& url, const DownloadOptions& options) {
  static const std::atomic<bool> kNeverCancelled{false};
  std::optional<std::uint64_t> size;
  withRetries(options, kNeverCancelled, [&url, &options, &size](bool&) -> std::optional<Failure> {
    ErrorBuffer errorBuffer;
    Curl curl = openCurl(url, options, errorBuffer);
    curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
    CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK) {
      return curlFailure(rc, errorBuffer.data(), url, options);
    }
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    if (status == 405 || status == 501) {  // no HEAD here: the size is not known before the GET
      return std::nullopt;
    }
    if (status < 200 || status > 299) {
      return httpFailure(status, redactUrl(url));
    }
    curl_off_t length = -1;
    curl_easy_getinfo(curl.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (length >= 0) {
      size = static_cast<std::uint64_t>(length);
    }
    return std::nullopt;
  });
  return size;
}

void download(const std::string& url, HashingWriter& writer, const DownloadOptions& options,
              const std::atomic<bool>& cancel, std::atomic<std::uint64_t>& done,
              std::atomic<std::uint64_t>& total) {
  Transfer transfer{url, writer, cancel, done, total};
  withRetries(options, cancel, [&transfer, &options](bool& progressed) {
    std::uint64_t before = transfer.writer.bytes();
    auto failure = attemptDownload(transfer, options);
    progressed = transfer.writer.bytes() > before;
    return failure;
  });
}

}  // namespace aibox::agent::models
