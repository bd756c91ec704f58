#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <cstring>
#include <fstream>
#include <tuple>

#include "common/fs/fs.hpp"
#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "common/random/random.hpp"
#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {
namespace {

constexpr const char* kCurrent = "current.jsonl";

std::int64_t unixSeconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

void syncDirectory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// The batch file's lines summed per hour, key and model, as the agent takes them.
boost::json::array sumBatch(const std::filesystem::path& file) {
  struct Sum {
    std::int64_t requests = 0, prompt = 0, completion = 0, errors = 0, latency = 0;
  };
  std::map<std::tuple<std::int64_t, std::string, std::string>, Sum> sums;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) {
      continue;  // a line cut short by a crash
    }
    const auto& o = v.as_object();
    auto number = [&o](const char* name) {
      const auto* n = o.if_contains(name);
      return n != nullptr && n->is_int64() ? n->as_int64() : 0;
    };
    const auto* key = o.if_contains("key");
    const auto* model = o.if_contains("model");
    if (key == nullptr || !key->is_string() || model == nullptr || !model->is_string()) {
      continue;
    }
    auto at = number("at");
    auto& s =
        sums[{at - at % 3600, std::string(key->as_string()), std::string(model->as_string())}];
    ++s.requests;
    s.prompt += number("prompt_tokens");
    s.completion += number("completion_tokens");
    s.errors += number("error");
    s.latency += number("latency_ms");
  }
  boost::json::array rows;
  for (const auto& [k, s] : sums) {
    rows.push_back({{"hour", std::get<0>(k)},
                    {"key", std::get<1>(k)},
                    {"model", std::get<2>(k)},
                    {"requests", s.requests},
                    {"prompt_tokens", s.prompt},
                    {"completion_tokens", s.completion},
                    {"errors", s.errors},
                    {"latency_ms", s.latency}});
  }
  return rows;
}

}  // namespace

Meter::Meter(const AgentClient& agent, std::filesystem::path spoolDir,
             std::chrono::milliseconds interval)
    : agent_(agent), dir_(std::move(spoolDir)), interval_(interval) {
  fs::makeDirectories(dir_, 0700);
  if (std::filesystem::exists(dir_ / kCurrent)) {
    lines_ = 1;  // what the last run appended: made a batch at the first tick
  }
}

Meter::~Meter() {
  stop();
}

void Meter::record(const UsageRecord& r) {
  std::string line = json::serialize(boost::json::object{{"key", r.key},
                                                         {"model", r.model},
                                                         {"prompt_tokens", r.promptTokens},
                                                         {"completion_tokens", r.completionTokens},
                                                         {"error", r.error ? 1 : 0},
                                                         {"latency_ms", r.latencyMs},
                                                         {"at", unixSeconds(r.at)}}) +
                     "\n";
  std::lock_guard lock(mutex_);
  if (fd_ < 0) {
    fd_ = ::open((dir_ / kCurrent).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      log::error("cannot write the usage spool; this request is not metered",
                 {{"file", (dir_ / kCurrent).string()}, {"error", std::strerror(errno)}});
      return;
    }
  }
  // One write per line: the kernel keeps it across a crash of the gateway.
  if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    log::error("cannot write the usage spool; this request is not metered",
               {{"error", std::strerror(errno)}});
  }
  ++lines_;
}

void Meter::start() {
  thread_ = std::thread([this] { loop(); });
}

void Meter::stop() {
  {
    std::lock_guard lock(waitMutex_);
    if (stop_) {
      return;
    }
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  rotate();
  sendBatches();
}

std::size_t Meter::pendingBatches() const {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    n += e.path().filename().string().starts_with("batch-") ? 1 : 0;
  }
  return n;
}

void Meter::loop() {
  std::unique_lock lock(waitMutex_);
  while (!stop_) {
    wake_.wait_for(lock, interval_, [this] { return stop_; });
    if (stop_) {
      return;
    }
    lock.unlock();
    rotate();
    sendBatches();
    lock.lock();
  }
}

void Meter::rotate() {
  std::lock_guard lock(mutex_);
  if (lines_ == 0) {
    return;
  }
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  lines_ = 0;
  auto name = "batch-" +
              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 Clock::now().time_since_epoch())
                                 .count()) +
              "-" + random::hex(6) + ".jsonl";
  std::error_code ec;
  std::filesystem::rename(dir_ / kCurrent, dir_ / name, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    log::error("cannot make a usage batch", {{"error", ec.message()}});
  }
  syncDirectory(dir_);
}

void Meter::sendBatches() {
  std::vector<std::filesystem::path> batches;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    auto name = e.path().filename().string();
    if (name.starts_with("batch-") && name.ends_with(".jsonl")) {
      batches.push_back(e.path());
    }
  }
  std::sort(batches.begin(), batches.end());
  for (const auto& file : batches) {
    auto rows = sumBatch(file);
    std::string id = file.stem().string().substr(6);
    std::string problem;
    auto reply = rows.empty() ? std::optional(AgentReply{200, ""})
                              : agent_.call("POST", "/api/v1/gateway/usage",
                                            json::serialize(boost::json::object{
                                                {"batch", id}, {"rows", std::move(rows)}}),
                                            problem);
    if (!reply) {
      return;  // the agent is down: the batch waits on disk
    }
    if (reply->status == 200) {
      std::filesystem::remove(file, ec);
      continue;
    }
    if (reply->status == 400) {  // never recordable: set aside, so it does not block the rest
      log::error("the agent refused a usage batch; kept aside",
                 {{"file", file.string()}, {"answer", reply->body}});
      std::filesystem::rename(file, file.string() + ".refused", ec);
      continue;
    }
    return;  // busy or failing: try again at the next tick
  }
}

}  // namespace aibox::gateway
