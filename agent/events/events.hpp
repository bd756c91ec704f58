#pragma once
// Live updates for the web console: an in-process publish/subscribe hub whose subscribers are
// server-sent event streams (GET /api/v1/events), and the feed that publishes the changes of
// the hardware service, the model store and its jobs. See docs/api.md, "Events".

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/hardware/hardware.hpp"
#include "agent/models/models.hpp"
#include "common/http/http.hpp"

namespace aibox::agent::events {

struct Options {
  std::size_t maxClients = 32;         // streams at once; more get 503
  std::chrono::seconds heartbeat{15};  // a comment line, and the session check
  std::size_t queueEvents = 256;       // per stream; a slow client loses the oldest
};

// One event in the text/event-stream format: "event: NAME\ndata: JSON\n\n".
std::string format(std::string_view name, const boost::json::value& data);

class Hub {
 public:
  // Whether the subscriber may receive events that need `permission`.
  using Allows = std::function<bool(std::string_view permission)>;
  // Whether the subscriber may still listen (its session is live); asked at every heartbeat.
  using StillValid = std::function<bool()>;

  Hub(boost::asio::io_context& io, Options options);
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;
  ~Hub();

  const Options& options() const { return options_; }

  // Sends an event to every subscriber allowed `permission`. Any thread; never blocks on a
  // client.
  void publish(std::string_view name, std::string_view permission, const boost::json::value& data);

  // The body of a new stream, which starts with `hello` (an already formatted event); nullopt
  // when maxClients streams are open or the hub is closed.
  std::optional<http::PushSource> subscribe(std::string hello, Allows allows,
                                            StillValid stillValid);
  std::size_t subscribers() const;

  // Ends every stream with an "end" event (reason "shutdown") and refuses new ones.
  void close();

 private:
  struct Subscriber;
  void beat();
  std::vector<std::shared_ptr<Subscriber>> live() const;

  const Options options_;
  boost::asio::steady_timer timer_;
  mutable std::mutex mutex_;  // guards subscribers_, closed_
  mutable std::vector<std::weak_ptr<Subscriber>> subscribers_;
  bool closed_ = false;
};

// Publishes to the hub: "hardware" when the overall health, the counts by status or a
// source's problem change; "hardware_event" for each new hardware event; "job" when a job
// changes state, and once a second while it runs; "model" when a model changes state or is
// deleted. Each change is published from one strand, so a stream sees them in order.
class Feed {
 public:
  static constexpr std::chrono::seconds kProgressEvery{1};

  Feed(boost::asio::io_context& io, Hub& hub, models::Jobs& jobs);
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;

  // What the services call (any thread).
  hardware::Listener hardwareListener();
  models::Listener modelsListener();

 private:
  void publishJob(const std::string& id);
  void tick();

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  Hub& hub_;
  models::Jobs& jobs_;
  boost::asio::steady_timer progressTimer_;
  std::string hardwareSignature_;  // on the strand
  std::set<std::string> running_;  // jobs whose progress is published; on the strand
};

}  // namespace aibox::agent::events
