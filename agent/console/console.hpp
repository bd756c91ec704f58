#pragma once
// The web console's static files (HTML, CSS, JS modules, images, fonts), served from one
// directory by the agent under "/": paths that could leave the directory, hidden files,
// links and anything but regular files of a known type answer 404. Files are read on the
// console's own thread, never on the event loop.

#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/fields.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/http/http.hpp"

namespace aibox::agent::console {

// The file a request target names inside the directory, relative: "index.html" for "/", else
// the percent-decoded path. nullopt for a target that is not a plain path below "/" (an empty,
// "." or ".." segment, a segment starting with '.', an encoded '/' or '\', a control
// character, a malformed escape, a trailing '/').
std::optional<std::string> filePath(std::string_view target);

// The Content-Type of the served types, by extension (html, js, mjs, css, json, svg, png,
// jpg, webp, ico, woff2, txt); nullopt for any other file, which is not served.
std::optional<std::string_view> contentType(std::string_view path);

// Cache-Control by type: pages, scripts, styles and translations are revalidated on every use
// (their names carry no version, so an upgrade must never mix old and new modules); images and
// fonts are kept a day.
std::string_view cacheControl(std::string_view path);

// Whether an If-None-Match header value ("*", or a list of weak or strong tags) matches `etag`.
bool etagMatches(std::string_view ifNoneMatch, std::string_view etag);

// The headers every console response carries: a strict Content-Security-Policy (own origin
// only, no inline script or style, no framing), nosniff, no referrer, no framing.
void secureHeaders(boost::beast::http::fields& fields);

class Files {
 public:
  // Files larger than this are streamed instead of read whole.
  static constexpr std::uint64_t kWholeFileBytes = 1024UL * 1024;

  explicit Files(std::filesystem::path dir);
  Files(const Files&) = delete;
  Files& operator=(const Files&) = delete;
  ~Files();  // waits for a read under way

  const std::filesystem::path& dir() const { return dir_; }

  // Answers a GET or HEAD of a console file (200, 304 for a matching If-None-Match, 404), from
  // the console's thread.
  void serve(const std::shared_ptr<const http::Call>& call, const http::Reply& reply);

 private:
  http::AnyResponse answer(const http::Call& call) const;

  std::filesystem::path dir_;
  boost::asio::thread_pool thread_{1};
};

}  // namespace aibox::agent::console
