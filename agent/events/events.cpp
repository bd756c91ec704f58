#include "agent/events/events.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/object.hpp>

#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "common/time/time.hpp"

namespace aibox::agent::events {

std::string format(std::string_view name, const boost::json::value& data) {
  std::string out = "event: ";
  out += name;
  out += "\ndata: ";
  out += json::serialize(data);  // one line: JSON escapes every newline
  out += "\n\n";
  return out;
}

// A stream's queue. The server asks for the next piece (pull) while it writes the last one;
// when nothing is queued the request waits here until an event or a heartbeat comes.
struct Hub::Subscriber {
  Allows allows;
  StillValid stillValid;
  std::mutex mutex;  // guards the rest
  std::deque<std::string> queue;
  std::size_t dropped = 0;  // since the last piece: announced with a "resync" event
  bool ending = false;      // send what is queued, then end the body
  http::PieceReady waiting;
  std::size_t waitingMax = 0;

  // Queues `text` (unless the stream is ending) and answers a waiting pull.
  void push(std::string text, std::size_t limit, bool last = false) {
    std::unique_lock lock(mutex);
    if (ending) {
      return;
    }
    if (queue.size() >= limit) {
      queue.pop_front();
      ++dropped;
    }
    queue.push_back(std::move(text));
    ending = last;
    answer(lock);
  }

  void pull(std::size_t max, http::PieceReady ready) {
    std::unique_lock lock(mutex);
    waiting = std::move(ready);
    waitingMax = max;
    answer(lock);
  }

  // With the lock held: when a pull waits and there is something to send, takes it and
  // answers outside the lock.
  void answer(std::unique_lock<std::mutex>& lock) {
    if (!waiting || (queue.empty() && dropped == 0 && !ending)) {
      return;
    }
    std::string piece;
    if (dropped > 0) {
      piece = format("resync", boost::json::object{{"dropped", dropped}});
      dropped = 0;
    }
    while (!queue.empty() && (piece.empty() || piece.size() + queue.front().size() <= waitingMax)) {
      piece += queue.front();
      queue.pop_front();
    }
    bool more = !(ending && queue.empty());
    auto ready = std::move(waiting);
    waiting = nullptr;
    lock.unlock();
    ready(std::move(piece), more);
  }
};

// The timer has a strand of its own: beat() re-arms it and close() cancels it, and with several
// event-loop threads those two could otherwise run at once.
Hub::Hub(boost::asio::io_context& io, Options options)
    : options_(options), timer_(boost::asio::make_strand(io)) {
  timer_.expires_after(options_.heartbeat);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      beat();
    }
  });
}

Hub::~Hub() {
  close();
}

std::vector<std::shared_ptr<Hub::Subscriber>> Hub::live() const {
  std::vector<std::shared_ptr<Subscriber>> out;
  std::lock_guard lock(mutex_);
  std::erase_if(subscribers_, [&out](const std::weak_ptr<Subscriber>& weak) {
    auto s = weak.lock();
    if (!s) {
      return true;
    }
    out.push_back(std::move(s));
    return false;
  });
  return out;
}

std::size_t Hub::subscribers() const {
  return live().size();
}

void Hub::publish(std::string_view name, std::string_view permission,
                  const boost::json::value& data) {
  auto subscribers = live();
  if (subscribers.empty()) {
    return;
  }
  auto text = format(name, data);
  for (const auto& s : subscribers) {
    if (s->allows(permission)) {
      s->push(text, options_.queueEvents);
    }
  }
}

std::optional<http::PushSource> Hub::subscribe(std::string hello, Allows allows,
                                               StillValid stillValid) {
  auto subscriber = std::make_shared<Subscriber>();
  subscriber->allows = std::move(allows);
  subscriber->stillValid = std::move(stillValid);
  // The client reconnects after 5 s when the stream breaks (EventSource's "retry").
  subscriber->queue.push_back("retry: 5000\n" + std::move(hello));
  {
    std::lock_guard lock(mutex_);
    std::erase_if(subscribers_, [](const auto& weak) { return weak.expired(); });
    if (closed_ || subscribers_.size() >= options_.maxClients) {
      return std::nullopt;
    }
    subscribers_.push_back(subscriber);
  }
  // The source owns the subscriber: it is gone, and no longer counted, with the connection.
  return [subscriber](std::size_t max, http::PieceReady ready) {
    subscriber->pull(max, std::move(ready));
  };
}

void Hub::beat() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      return;
    }
  }
  auto ended = format("end", boost::json::object{{"reason", "session_ended"}});
  for (const auto& s : live()) {
    if (s->stillValid && !s->stillValid()) {
      s->push(ended, options_.queueEvents, true);
    } else {
      s->push(":\n\n", options_.queueEvents);  // a comment: keeps proxies and the client awake
    }
  }
  timer_.expires_after(options_.heartbeat);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      beat();
    }
  });
}

void Hub::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      return;
    }
    closed_ = true;
  }
  boost::asio::dispatch(timer_.get_executor(), [this] { timer_.cancel(); });
  auto ended = format("end", boost::json::object{{"reason", "shutdown"}});
  for (const auto& s : live()) {
    s->push(ended, options_.queueEvents, true);
  }
}

// --- the feed ------------------------------------------------------------------------------

namespace {

constexpr std::string_view kHardwareRead = "hardware:read";
constexpr std::string_view kModelRead = "model:read";

// What a "hardware" event reports, without what changes at every poll.
std::string hardwareSignature(const boost::json::object& summary) {
  auto copy = summary;
  if (auto* sources = copy.if_contains("sources"); sources != nullptr && sources->is_array()) {
    for (auto& source : sources->as_array()) {
      if (source.is_object()) {
        source.as_object().erase("polled_at");
      }
    }
  }
  return json::serialize(copy);
}

boost::json::object hardwareEventJson(const hwmon::Event& e) {
  return {{"time", time::isoTime(e.time)},
          {"subject", e.subject},
          {"source", e.source},
          {"severity", hwmon::statusName(e.severity)},
          {"type", e.type},
          {"message", e.message},
          {"value", e.value ? boost::json::value(*e.value) : boost::json::value(nullptr)}};
}

}  // namespace

Feed::Feed(boost::asio::io_context& io, Hub& hub, models::Jobs& jobs)
    : strand_(boost::asio::make_strand(io)), hub_(hub), jobs_(jobs), progressTimer_(strand_) {}

hardware::Listener Feed::hardwareListener() {
  hardware::Listener listener;
  listener.reports = [this](const hardware::State& state) {
    if (hub_.subscribers() == 0) {
      return;
    }
    auto summary = hardware::summaryJson(state.reports());
    boost::asio::post(strand_, [this, summary = std::move(summary)] {
      auto signature = hardwareSignature(summary);
      if (signature != hardwareSignature_) {
        hardwareSignature_ = std::move(signature);
        hub_.publish("hardware", kHardwareRead, summary);
      }
    });
  };
  listener.event = [this](const hwmon::Event& e) {
    boost::asio::post(strand_, [this, data = hardwareEventJson(e)] {
      hub_.publish("hardware_event", kHardwareRead, data);
    });
  };
  return listener;
}

models::Listener Feed::modelsListener() {
  models::Listener listener;
  listener.job = [this](const std::string& id) {
    boost::asio::post(strand_, [this, id] { publishJob(id); });
  };
  listener.model = [this](const models::ModelChange& c) {
    boost::json::object data{
        {"id", c.id},
        {"name", c.name},
        {"tag", c.tag},
        {"state", c.state},
        {"error", c.error.empty() ? boost::json::value(nullptr) : boost::json::value(c.error)}};
    boost::asio::post(strand_,
                      [this, data = std::move(data)] { hub_.publish("model", kModelRead, data); });
  };
  return listener;
}

// On the strand: the job as it is now, so a stream never sees a job go back to running.
void Feed::publishJob(const std::string& id) {
  auto job = jobs_.find(id);
  if (!job) {
    return;
  }
  hub_.publish("job", kModelRead, models::jobJson(*job));
  bool wasIdle = running_.empty();
  if (job->state == "running") {
    running_.insert(id);
  } else {
    running_.erase(id);
  }
  if (wasIdle && !running_.empty()) {
    progressTimer_.expires_after(kProgressEvery);
    progressTimer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) {
        tick();
      }
    });
  }
}

void Feed::tick() {
  for (auto it = running_.begin(); it != running_.end();) {
    auto job = jobs_.find(*it);
    if (job && job->state == "running") {
      hub_.publish("job", kModelRead, models::jobJson(*job));
      ++it;
    } else {
      it = running_.erase(it);
    }
  }
  if (!running_.empty()) {
    progressTimer_.expires_after(kProgressEvery);
    progressTimer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) {
        tick();
      }
    });
  }
}

}  // namespace aibox::agent::events
