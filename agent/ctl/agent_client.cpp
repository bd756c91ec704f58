#include "agent/ctl/agent_client.hpp"

#include <curl/curl.h>
#include <unistd.h>

#include <memory>
#include <ostream>

namespace aibox::ctl {
namespace {

// Where a response body goes: a successful body to `sink` when there is one, anything else
// into `body` (an error's JSON).
struct Target {
  CURL* curl;
  std::string* body;
  std::ostream* sink;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
  auto* target = static_cast<Target*>(out);
  long status = 0;
  curl_easy_getinfo(target->curl, CURLINFO_RESPONSE_CODE, &status);
  if (target->sink != nullptr && status >= 200 && status <= 299) {
    target->sink->write(data, static_cast<std::streamsize>(size * count));
    return *target->sink ? size * count : 0;
  }
  target->body->append(data, size * count);
  return size * count;
}

}  // namespace

std::optional<HttpResult> AgentClient::request(const std::string& method, const std::string& path,
                                               const std::string& body, std::string& problem,
                                               std::ostream* sink) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    problem = "cannot initialise libcurl";
    return std::nullopt;
  }
  HttpResult result;
  std::string url = "http://localhost" + path;
  std::string socket = socket_.string();
  curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  Target target{curl.get(), &result.body, sink};
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &target);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  if (sink == nullptr) {
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 30000L);
  } else {  // a large download: no total limit, but not stalled for a minute
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);
  }
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
      curl_slist_append(nullptr, "Content-Type: application/json"), curl_slist_free_all);
  if (!body.empty()) {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  }
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    if (std::filesystem::exists(socket_) && ::access(socket.c_str(), R_OK | W_OK) != 0) {
      problem =
          "permission denied on " + socket + ": run as root or as a member of group aibox-admin";
    } else if (rc == CURLE_COULDNT_CONNECT) {
      problem = "the agent is not running: nothing listens on " + socket +
                " (check: systemctl status aibox-agent; start: systemctl start aibox-agent)";
    } else {
      problem = "the agent did not answer on " + socket + ": " + curl_easy_strerror(rc) +
                " (check: systemctl status aibox-agent)";
    }
    return std::nullopt;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &result.status);
  return result;
}

}  // namespace aibox::ctl
