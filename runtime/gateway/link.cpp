#include <curl/curl.h>

#include <fstream>
#include <sstream>

#include "common/fs/fs.hpp"
#include "common/log/log.hpp"
#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {
namespace {

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

CurlHandle open(const std::string& path, const std::string& socketText) {
  CurlHandle curl(curl_easy_init(), curl_easy_cleanup);
  if (curl) {
    std::string url = "http://localhost" + path;
    curl_easy_setopt(curl.get(), CURLOPT_UNIX_SOCKET_PATH, socketText.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  }
  return curl;
}

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

struct StreamState {
  const std::function<void(std::string_view)>* onData;
  const std::atomic<bool>* stop;
};

std::size_t deliver(char* data, std::size_t size, std::size_t count, void* out) {
  auto* state = static_cast<StreamState*>(out);
  (*state->onData)(std::string_view(data, size * count));
  return size * count;
}

int progress(void* out, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<StreamState*>(out)->stop->load() ? 1 : 0;
}

}  // namespace

std::optional<AgentReply> AgentClient::call(const std::string& method, const std::string& path,
                                            const std::string& body, std::string& problem) const {
  auto socket = socket_.string();
  auto curl = open(path, socket);
  if (!curl) {
    problem = "cannot initialise libcurl";
    return std::nullopt;
  }
  AgentReply reply;
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 30000L);
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
    problem = "the agent did not answer on " + socket + ": " + curl_easy_strerror(rc);
    return std::nullopt;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

bool AgentClient::stream(const std::string& path,
                         const std::function<void(std::string_view)>& onData,
                         const std::atomic<bool>& stop, std::chrono::seconds idle,
                         std::string& problem) const {
  auto socket = socket_.string();
  auto curl = open(path, socket);
  if (!curl) {
    problem = "cannot initialise libcurl";
    return false;
  }
  StreamState state{&onData, &stop};
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, deliver);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &state);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, static_cast<long>(idle.count()));
  CURLcode rc = curl_easy_perform(curl.get());
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK && !stop) {
    problem = "the agent's event stream on " + socket + " ended: " + curl_easy_strerror(rc);
    return false;
  }
  if (status != 200 && !stop) {
    problem = "the agent refused its event stream (HTTP " + std::to_string(status) + ")";
    return false;
  }
  return true;
}

AgentLink::AgentLink(const AgentClient& agent, std::filesystem::path file,
                     std::chrono::seconds resync, Apply apply)
    : agent_(agent), file_(std::move(file)), resync_(resync), apply_(std::move(apply)) {}

AgentLink::~AgentLink() {
  stop();
}

void AgentLink::start() {
  std::ifstream in(file_);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = parseSnapshot(text.str());
    if (auto* s = std::get_if<Snapshot>(&parsed)) {
      log::info("serving with the last snapshot until the agent answers",
                {{"file", file_.string()}, {"generated_at", s->generatedAt}});
      apply_(std::make_shared<const Snapshot>(std::move(*s)));
    } else {
      log::warning("the snapshot on disk is unusable; waiting for the agent",
                   {{"file", file_.string()}, {"problem", std::get<std::string>(parsed)}});
    }
  }
  puller_ = std::thread([this] { pullLoop(); });
  listener_ = std::thread([this] { eventLoop(); });
}

void AgentLink::stop() {
  if (stop_.exchange(true)) {
    return;
  }
  wake();
  if (puller_.joinable()) {
    puller_.join();
  }
  if (listener_.joinable()) {
    listener_.join();
  }
}

void AgentLink::wake() {
  {
    std::lock_guard lock(mutex_);
    dirty_ = true;
  }
  changed_.notify_all();
}

bool AgentLink::pull() {
  std::string problem;
  auto reply = agent_.call("GET", "/api/v1/gateway/snapshot", "", problem);
  if (!reply || reply->status != 200) {
    if (!pullFailing_.exchange(true)) {  // once, not every second the agent is down
      log::warning("cannot pull the snapshot from the agent; serving with the last one",
                   {{"problem", reply ? "HTTP " + std::to_string(reply->status) + " " + reply->body
                                      : problem}});
    }
    return false;
  }
  if (pullFailing_.exchange(false)) {
    log::info("the agent answers again; snapshot pulled");
  }
  auto parsed = parseSnapshot(reply->body);
  if (auto* s = std::get_if<Snapshot>(&parsed)) {
    try {
      fs::writeFileAtomic(file_, reply->body, 0600);
    } catch (const std::exception& e) {
      log::warning("cannot keep the snapshot on disk", {{"error", e.what()}});
    }
    apply_(std::make_shared<const Snapshot>(std::move(*s)));
    return true;
  }
  log::warning("the agent's snapshot is unusable", {{"problem", std::get<std::string>(parsed)}});
  return false;
}

void AgentLink::pullLoop() {
  while (!stop_) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, resync_, [this] { return dirty_ || stop_.load(); });
      dirty_ = false;
    }
    if (stop_) {
      return;
    }
    if (!pull()) {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_.load(); });
      dirty_ = true;
    }
  }
}

void AgentLink::eventLoop() {
  std::string pending;
  auto onData = [this, &pending](std::string_view piece) {
    connected_ = true;
    pending += piece;
    std::size_t start = 0;
    for (auto end = pending.find('\n'); end != std::string::npos; end = pending.find('\n', start)) {
      std::string_view line(pending.data() + start, end - start);
      start = end + 1;
      if (line.starts_with("event: ")) {
        auto name = line.substr(7);
        if (name == "hello" || name == "resync" || name == "key" || name == "runtime" ||
            name == "license") {
          wake();
        }
      }
    }
    pending.erase(0, start);
  };
  std::string lastProblem;
  while (!stop_) {
    std::string problem;
    pending.clear();
    bool ok = agent_.stream("/api/v1/events", onData, stop_, std::chrono::seconds(60), problem);
    if (connected_.exchange(false)) {
      log::warning("lost the agent's event stream; serving with the last snapshot",
                   {{"problem", problem.empty() ? std::string("the agent ended it") : problem}});
    } else if (!ok && problem != lastProblem) {
      log::warning("cannot open the agent's event stream; retrying every second",
                   {{"problem", problem}});
    }
    lastProblem = problem;
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_.load(); });
  }
}

}  // namespace aibox::gateway
