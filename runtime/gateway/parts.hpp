#pragma once
// The gateway's parts, private to runtime/gateway: the snapshot of keys and instances
// (snapshot.cpp), the agent link that keeps it current (link.cpp), limits (limits.cpp),
// instance choice (routing.cpp), usage metering (metering.cpp), metrics (metrics.cpp), the
// pass-through to an instance (proxy.cpp) and the OpenAI routes (front.cpp).

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "common/http/http.hpp"

namespace aibox::gateway {

using Clock = std::chrono::system_clock;
using Steady = std::chrono::steady_clock;

// An error in OpenAI's shape: {"error":{"message","type","param","code"}}.
http::Response openaiError(http::Status status, std::string_view type, std::string_view code,
                           std::string_view message);

// --- snapshot ------------------------------------------------------------------------------

struct Key {
  std::string id;
  std::string name;
  std::string secretHash;           // sha256 hex of the secret part
  std::vector<std::string> models;  // empty: every model
  std::optional<std::int64_t> requestsPerMinute;
  std::optional<std::int64_t> tokensPerMinute;
  std::optional<std::int64_t> maxConcurrent;
  std::optional<Clock::time_point> expires;
};

struct Instance {
  std::string id;
  std::string name;
  std::string model;               // the store's name:tag, what usage is metered under
  std::vector<std::string> names;  // what a request's "model" may say
  std::string servedName;          // what the engine calls it
  int port = 0;
  std::string token;
};

struct Snapshot {
  std::map<std::string, Key, std::less<>> keys;  // by id
  std::vector<Instance> instances;
  std::optional<std::int64_t> maxConcurrency;  // the license's cap on requests at once
  std::string generatedAt;
};

// The agent's GET /api/v1/gateway/snapshot answer (also the file kept on disk).
std::variant<Snapshot, std::string> parseSnapshot(std::string_view text);

enum class KeyProblem { missing, malformed, unknown, expired };
// The key an "Authorization: Bearer sk-aibox-<id>-<secret>" value stands for.
std::variant<const Key*, KeyProblem> checkKey(const Snapshot& snapshot,
                                              std::string_view authorization,
                                              Clock::time_point now);
// The instances a request's "model" names, and whether the key may use that model (by the
// name asked for or any name of the model's instances).
std::vector<Instance> instancesFor(const Snapshot& snapshot, std::string_view model);
bool keyAllows(const Key& key, std::string_view asked, const std::vector<Instance>& instances);

// --- the agent link ------------------------------------------------------------------------

struct AgentReply {
  long status = 0;
  std::string body;
};

// HTTP over the agent's unix socket (libcurl; blocking, for the link's own threads).
class AgentClient {
 public:
  explicit AgentClient(std::filesystem::path socket) : socket_(std::move(socket)) {}
  std::optional<AgentReply> call(const std::string& method, const std::string& path,
                                 const std::string& body, std::string& problem) const;
  // Reads a streamed body, each piece to `onData`, until the agent ends it, `stop` is set or
  // nothing (not even a heartbeat) came for `idle`; false with a problem on a failure.
  bool stream(const std::string& path, const std::function<void(std::string_view)>& onData,
              const std::atomic<bool>& stop, std::chrono::seconds idle, std::string& problem) const;

 private:
  std::filesystem::path socket_;
};

// Keeps the snapshot current: pulls it at start, again on every key, runtime or license
// event of the agent's event stream (and every `resync`), writes it to `file`, and hands each
// to `apply`. With the agent down, `apply` gets the one on disk and the link keeps retrying.
class AgentLink {
 public:
  using Apply = std::function<void(std::shared_ptr<const Snapshot>)>;
  AgentLink(const AgentClient& agent, std::filesystem::path file, std::chrono::seconds resync,
            Apply apply);
  AgentLink(const AgentLink&) = delete;
  AgentLink& operator=(const AgentLink&) = delete;
  ~AgentLink();

  void start();
  void stop();
  bool connected() const { return connected_; }

 private:
  void pullLoop();
  void eventLoop();
  bool pull();
  void wake();

  const AgentClient& agent_;
  std::filesystem::path file_;
  std::chrono::seconds resync_;
  Apply apply_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::atomic<bool> pullFailing_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool dirty_ = true;  // guarded by mutex_
  std::thread puller_;
  std::thread listener_;
};

// --- limits --------------------------------------------------------------------------------

// Holds up to `capacity` units, refilled at capacity per minute. A correction may take it
// below zero (tokens used beyond the estimate), which later requests wait out.
class TokenBucket {
 public:
  TokenBucket(double capacity, Steady::time_point now);
  void resize(double capacity, Steady::time_point now);
  double level(Steady::time_point now);
  // Takes `n` (at most the capacity) when there is that much.
  bool take(double n, Steady::time_point now);
  void add(double n, Steady::time_point now);
  double secondsUntil(double n, Steady::time_point now);
  double capacity() const { return capacity_; }

 private:
  void refill(Steady::time_point now);
  double capacity_;
  double level_;
  Steady::time_point last_;
};

// What the OpenAI rate-limit headers report of the key's buckets.
struct RateState {
  std::optional<std::int64_t> limitRequests;
  std::int64_t remainingRequests = 0;
  double resetRequests = 0;  // seconds until the bucket is full
  std::optional<std::int64_t> limitTokens;
  std::int64_t remainingTokens = 0;
  double resetTokens = 0;
};
void setRateHeaders(const RateState& state, boost::beast::http::fields& headers);

struct Rejection {
  std::string code;  // rate_limit_requests, rate_limit_tokens, concurrency_key, concurrency_box
  std::string message;
  double retryAfter = 1;  // seconds
  RateState rate;
};

class Limiter {
 public:
  struct KeyState;
  // A request admitted: holds its place in the key's and the box's concurrency until dropped.
  class Ticket {
   public:
    Ticket(Limiter& limiter, std::shared_ptr<KeyState> key, double estimate);
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket();
    // The tokens the request really used, instead of the estimate taken at admission.
    void settle(double used);
    // The key was revoked or expired since admission.
    bool revoked() const;
    const RateState& rate() const { return rate_; }

   private:
    friend class Limiter;
    Limiter& limiter_;
    std::shared_ptr<KeyState> key_;
    double estimate_;
    bool settled_ = false;
    RateState rate_;
  };

  // New limits from a snapshot; keys gone from it are revoked (their requests in flight end).
  void update(const Snapshot& snapshot);
  std::variant<std::shared_ptr<Ticket>, Rejection> admit(const Key& key, double estimate,
                                                         Steady::time_point now);
  std::int64_t inFlight() const { return inFlight_; }

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<KeyState>, std::less<>> keys_;
  std::optional<std::int64_t> boxCap_;
  std::atomic<std::int64_t> inFlight_{0};
};

// Tokens a request may use, before it ran: the prompt's text at about four characters a token,
// plus the completion's max_tokens when given.
double estimateTokens(const boost::json::object& body);

// --- routing -------------------------------------------------------------------------------

// Requests in flight per instance; the choice is the candidate with the fewest.
class Balancer {
 public:
  using Lease = std::shared_ptr<void>;  // counts the request until dropped
  std::optional<Instance> pick(const std::vector<Instance>& candidates,
                               const std::vector<std::string>& exclude);
  Lease hold(const std::string& instanceId);
  std::int64_t outstanding(const std::string& instanceId);

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<std::atomic<std::int64_t>>, std::less<>> counts_;
  std::uint64_t turn_ = 0;
};

// --- metering ------------------------------------------------------------------------------

struct UsageRecord {
  std::string key;
  std::string model;
  std::int64_t promptTokens = 0;
  std::int64_t completionTokens = 0;
  bool error = false;
  std::int64_t latencyMs = 0;
  Clock::time_point at;
};

// Each finished request is appended to the spool file first (so a gateway crash loses
// nothing); every interval the spool becomes a batch file, summed per key, model and hour, and
// sent to the agent, which records a batch id once; a batch is deleted only once recorded.
class Meter {
 public:
  Meter(const AgentClient& agent, std::filesystem::path spoolDir,
        std::chrono::milliseconds interval);
  Meter(const Meter&) = delete;
  Meter& operator=(const Meter&) = delete;
  ~Meter();

  void record(const UsageRecord& record);  // any thread
  void start();
  void stop();  // a last batch made and sent when the agent answers
  std::size_t pendingBatches() const;

 private:
  void loop();
  void rotate();
  void sendBatches();

  const AgentClient& agent_;
  std::filesystem::path dir_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;  // guards fd_, lines_
  int fd_ = -1;
  std::size_t lines_ = 0;
  std::mutex waitMutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by waitMutex_
  std::thread thread_;
};

// --- metrics -------------------------------------------------------------------------------

class Metrics {
 public:
  // A request answered (status as sent; 0 when the client went away first).
  void request(const std::string& model, unsigned status, double seconds,
               std::optional<double> firstByteSeconds);
  void rejected(const std::string& reason);
  void retried(const std::string& model);
  void render(std::string& out, std::int64_t inFlight, bool agentConnected,
              std::size_t spooledBatches) const;

 private:
  struct Histogram {
    std::vector<std::uint64_t> buckets;
    std::uint64_t count = 0;
    double sum = 0;
  };
  static void observe(Histogram& h, double seconds);
  static void renderHistogram(std::string& out, const std::string& name,
                              const std::map<std::string, Histogram>& byModel);
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, Histogram> firstByte_;
  std::map<std::string, std::uint64_t> rejected_;
  std::map<std::string, std::uint64_t> retries_;
};

// --- the pass-through ----------------------------------------------------------------------

// How one proxied request ended, for metering and metrics.
struct Outcome {
  unsigned status = 0;
  std::int64_t promptTokens = 0;
  std::int64_t completionTokens = 0;
  bool usageKnown = false;
  bool error = false;  // an error status, a broken-off answer or a revoked key
  std::optional<double> firstByteSeconds;
};

struct Exchange {
  std::string path;  // /v1/chat/completions, /v1/completions, /v1/embeddings
  boost::json::object body;
  bool dropUsage = false;  // the gateway asked for the usage chunk, the client did not
  std::vector<Instance> candidates;
  std::shared_ptr<Limiter::Ticket> ticket;
  Steady::time_point started;
  std::function<void(const Instance*, const Outcome&)> done;  // called once
};

struct ProxyContext {
  boost::asio::io_context& io;
  Balancer& balancer;
  Metrics& metrics;
  std::chrono::seconds headTimeout;
};

// Sends the request to the least busy candidate (another once when that one fails before it
// answers) and answers `reply` with its answer as it comes.
void forward(ProxyContext& context, std::shared_ptr<Exchange> exchange, http::Reply reply);

// Reads prompt and completion tokens from an answer's "usage" object.
bool readUsage(const boost::json::value& answer, std::int64_t& prompt, std::int64_t& completion);

// --- the front -----------------------------------------------------------------------------

struct Front {
  ProxyContext& proxy;
  Limiter& limiter;
  Meter& meter;
  Metrics& metrics;
  std::function<std::shared_ptr<const Snapshot>()> snapshot;
};
// /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models; OpenAI's 404 else.
void addRoutes(http::Router& router, Front& front);

}  // namespace aibox::gateway
