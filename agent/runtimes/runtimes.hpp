#pragma once
// Runtime supervision: engine profiles (data files), placement (port, GPUs, cores), processes
// (own session, pidfd, cgroup v2 or process group) and the supervisor that starts, probes,
// restarts and re-adopts model instances. See docs/runtimes.md.

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <boost/program_options/options_description.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "agent/hardware/hardware.hpp"
#include "agent/license/license.hpp"
#include "agent/models/models.hpp"
#include "common/config/config.hpp"
#include "common/db/db.hpp"
#include "common/json/json.hpp"

namespace aibox::agent::runtimes {

struct Settings {
  int portFirst = 20000;  // the range instances listen in, on 127.0.0.1
  int portLast = 20999;
  // Where engine binaries are looked up (a profile's "binary" without a slash).
  std::vector<std::filesystem::path> enginePath{"/usr/bin", "/usr/local/bin", "/usr/sbin",
                                                "/opt/aibox/engines/bin"};
  std::filesystem::path shippedProfiles;      // <root>/usr/share/aibox/engines
  std::filesystem::path overrideProfiles;     // <root>/etc/aibox/engines
  std::filesystem::path stateDir;             // <root>/var/lib/aibox/runtimes: tokens, logs
  std::filesystem::path runDir;               // <root>/run/aibox/instances: pid files
  std::string runtimeUser = "aibox-runtime";  // when the agent runs as root
  // "auto": the agent's delegated cgroup v2 subtree when it has one; "off": process groups
  // only; or the path of a cgroup v2 directory to put the instances under.
  std::string cgroup = "auto";
  std::chrono::milliseconds probeInterval{1000};
  std::chrono::milliseconds probeTimeout{2000};
  int unhealthyProbes = 3;  // failed probes in a row before a ready instance is unhealthy
  std::chrono::seconds stallTimeout{120};  // a load with no progress for this long fails
  std::chrono::milliseconds backoffFirst{1000};
  std::chrono::milliseconds backoffMax{300'000};
  std::chrono::seconds healthyReset{600};  // ready this long: the backoff starts over
  int crashLoopFailures = 5;
  std::chrono::seconds crashLoopWindow{600};
  std::chrono::seconds gpuReleaseTimeout{60};
};
void addSettings(boost::program_options::options_description& description, Settings& settings);

extern const char* const kSchema;

// --- engine profiles -----------------------------------------------------------------------

struct Profile {
  std::string name;
  std::string description;
  std::string binary;                // a name looked up on the engine path, or an absolute path
  std::string install;               // what to install when the binary is missing
  std::vector<std::string> formats;  // "gguf", "safetensors"
  // Arguments; a group (a JSON array in the file) is left out when a placeholder in it is
  // empty, so optional settings need no special case. "{extra}" alone expands to the
  // instance's extra arguments.
  std::vector<std::vector<std::string>> args;
  std::map<std::string, std::string> env;
  // READY=1 over sd_notify (NOTIFY_SOCKET) instead of the health answer; the health path, when
  // also given, is then the liveness check, else liveness is the process staying alive.
  bool readyNotify = false;
  std::string healthPath = "/health";  // empty: no HTTP health check
  int healthStatus = 200;
  std::string metricsPath;
  int stopSignal = SIGTERM;
  std::chrono::seconds stopGrace{30};
  bool gpus = false;  // the engine runs on GPUs (placement chooses them)
  std::filesystem::path file;
  std::optional<std::filesystem::path> resolved;  // the binary found, if it was
};

// Parses one profile file's text; the problem (with the field) when it is not valid.
std::variant<Profile, std::string> parseProfile(std::string_view text, const std::string& name);
// Every profile: the shipped ones, each replaced by a file of the same name in the override
// directory. Files that do not parse are left out and listed in `problems`.
std::map<std::string, Profile> loadProfiles(const Settings& settings,
                                            std::vector<std::string>& problems);

// --- instances -----------------------------------------------------------------------------

enum class State {
  stopped,
  starting,
  loading,
  ready,
  unhealthy,
  backoff,
  crash_loop,
  stopping,
  failed
};
std::string_view stateName(State state);

struct InstanceSettings {
  std::optional<int> threads;
  std::optional<int> context;
  std::optional<int> parallel;
  std::optional<int> kvMemoryMiB;
  std::vector<std::string> gpus;  // indexes or UUIDs as given; empty: chosen
  std::optional<int> gpuCount;    // GPUs to choose when none are given (default 1)
  std::optional<int> port;        // default: chosen from the range
  std::vector<std::string> extraArgs;
  std::optional<std::int64_t> memoryLimitMiB;  // cgroup memory.max
  std::optional<double> cpuLimit;              // cgroup cpu.max, in cores
};
boost::json::object settingsJson(const InstanceSettings& settings);
// The "settings" object of a create or update request; the problem when a field is wrong.
std::variant<InstanceSettings, json::Problem> parseSettings(const boost::json::object& object);

struct Placement {
  int port = 0;
  std::vector<std::string> gpus;  // UUIDs
  std::vector<int> gpuIndexes;
  std::vector<int> cpus;
  std::uint64_t memoryEstimate = 0;  // bytes the model needs (weights + KV cache)
};

// What the API shows of an instance.
struct View {
  std::string id;
  std::string name;
  std::string modelId;
  std::string model;  // name:tag
  std::string engine;
  InstanceSettings settings;
  bool desiredRunning = false;
  State state = State::stopped;
  std::string reason;  // why it is failed, backoff or crash_loop; what the last exit was
  std::optional<double> progress;                                // loading
  std::optional<std::chrono::system_clock::time_point> nextTry;  // backoff
  std::optional<std::chrono::system_clock::time_point> readySince;
  std::optional<Placement> placement;
  pid_t pid = 0;
  std::string cgroup;
  std::int64_t restarts = 0;
  std::string createdAt;
  std::string servedName;
};
boost::json::object viewJson(const View& view);

// A change the supervisor refuses: the HTTP status (400, 402, 403, 404, 409) and the error.
struct Refusal {
  int status = 409;
  std::string code;
  std::string message;
};
template <class T>
using Result = std::variant<T, Refusal>;

struct CreateRequest {
  std::string name;
  std::string engine = "builtin";
  InstanceSettings settings;
  bool start = true;
};

// A state change, for the event stream and the event history.
struct Event {
  std::chrono::system_clock::time_point time;
  std::string instance;  // id
  std::string name;
  std::string state;
  std::string message;
};
boost::json::object eventJson(const Event& event);

// What protection (thermal, power) asks of instances.
enum class Action { stop, resume };

class Supervisor {
 public:
  struct Context {
    const hardware::State& hardware;
    const models::Store& store;
    license::Service& license;
    std::function<void(const Event&, const View&)> publish;  // any thread; must not block
  };

  Supervisor(boost::asio::io_context& io, db::Worker& database, Settings settings, Context context);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;
  ~Supervisor();

  // Reads the instances before the database moves to its worker.
  void load(db::Database& db);
  // Re-adopts the instances that still run, stops processes the database does not know and
  // starts those that should run.
  void start();
  // The agent stops: stop watching, leave the instances running (the next agent re-adopts).
  void shutdown();

  std::vector<View> list() const;
  std::optional<View> find(const std::string& idOrName) const;
  std::map<std::string, Profile> engines() const;

  // Each runs on the database worker (it reads the model and writes the row).
  Result<View> create(db::Database& db, const models::ModelRow& model, const CreateRequest& r);
  Result<View> update(db::Database& db, const std::string& id, const InstanceSettings& settings);
  Result<View> remove(db::Database& db, const std::string& id);
  Result<View> startInstance(db::Database& db, const std::string& id);
  Result<View> stopInstance(const std::string& id, const std::string& reason);
  Result<View> restartInstance(db::Database& db, const std::string& id);

  // The last lines the instance wrote (stdout and stderr), oldest first.
  std::optional<std::vector<std::string>> logs(const std::string& id, std::size_t lines) const;
  // Where a ready instance listens and its token, for the agent's own calls (the playground).
  struct Endpoint {
    int port = 0;
    std::string token;
    std::string servedName;
  };
  std::optional<Endpoint> endpoint(const std::string& id) const;

  // Protection: stops (Action::stop) the instances placed on `gpuUuid` (all CPU instances
  // when empty) with `reason`, or lets them run again (Action::resume). Returns the ids.
  std::vector<std::string> protect(Action action, const std::string& gpuUuid,
                                   const std::string& reason);

  // The license stopped allowing instances (its grace ended): stop them all.
  void licenseEnded(const std::string& why);

  // aibox_runtime_* series and, for ready instances, the engine's own series with an
  // `instance` label (scraped in the background, at most every 15 s).
  void renderMetrics(std::string& out) const;
  // The engine's own series of one instance (its last scrape), with the `instance` label.
  void renderInstanceMetrics(const std::string& id, std::string& out) const;
  std::vector<Event> history(db::Database& db, const std::string& id, int limit) const;

  struct Instance;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// For `aiboxctl runtimes ls --direct`: the instances in the database and whether their
// processes are alive (pid and start time), without the agent.
std::vector<View> readDirect(db::Database& db, const config::Paths& paths);

// --- processes (used by the supervisor; public for the tests) ------------------------------

// The start time of a process in clock ticks since boot (/proc/PID/stat field 22), or 0.
std::uint64_t processStartTime(pid_t pid);

}  // namespace aibox::agent::runtimes
