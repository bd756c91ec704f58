// The supervisor: each instance's state machine (docs/runtimes.md, "States"), its probes, the
// restart backoff, the crash loop, stops that leave nothing behind, and re-adoption at start.
#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/datagram_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "agent/runtimes/placement.hpp"
#include "agent/runtimes/probe.hpp"
#include "agent/runtimes/process.hpp"
#include "agent/runtimes/runtimes.hpp"
#include "common/fs/fs.hpp"
#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "common/random/random.hpp"
#include "common/time/time.hpp"

namespace aibox::agent::runtimes {
namespace {

namespace stdfs = std::filesystem;
using Steady = std::chrono::steady_clock;
using System = std::chrono::system_clock;
using namespace std::chrono_literals;

constexpr std::size_t kLogLines = 200;
constexpr std::uintmax_t kLogRotateBytes = 16 << 20;
constexpr auto kStartProbeEvery = 100ms;  // while starting: ready is seen quickly
constexpr auto kMetricsEvery = 15s;

std::string joinInts(const std::vector<int>& v) {
  std::string out;
  for (int i : v) {
    out += (out.empty() ? "" : ",") + std::to_string(i);
  }
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) {
      out.push_back(item);
    }
  }
  return out;
}

bool isRunningState(State s) {
  return s == State::starting || s == State::loading || s == State::ready ||
         s == State::unhealthy || s == State::stopping;
}

// Adds instance="ID" to every sample of a Prometheus text page; HELP and TYPE lines are kept
// once per metric family in `families`.
void relabel(const std::string& page, const std::string& id,
             std::map<std::string, std::pair<std::string, std::string>>& families) {
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      continue;
    }
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name;
      words >> name;
      auto& family = families[name];
      if (family.first.find(line.substr(0, 7)) == std::string::npos) {
        family.first += line + "\n";
      }
      continue;
    }
    if (line[0] == '#') {
      continue;
    }
    auto nameEnd = line.find_first_of("{ ");
    if (nameEnd == std::string::npos) {
      continue;
    }
    std::string name = line.substr(0, nameEnd);
    std::string label = "instance=\"" + id + "\"";
    std::string sample = line[nameEnd] == '{' ? name + "{" + label + "," + line.substr(nameEnd + 1)
                                              : name + "{" + label + "}" + line.substr(nameEnd);
    // Histogram and summary series belong to the family without their suffix.
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count", "_total"}) {
      if (family.ends_with(suffix) &&
          families.contains(family.substr(0, family.size() - std::strlen(suffix)))) {
        family.resize(family.size() - std::strlen(suffix));
        break;
      }
    }
    families[family].second += sample + "\n";
  }
}

}  // namespace

struct Supervisor::Instance {
  // What the admin chose.
  std::string id;
  std::string name;
  std::string modelId;
  std::string model;
  std::string engine;
  InstanceSettings settings;
  bool desiredRunning = false;
  std::string createdAt;
  // What the model is.
  std::string modelState;
  std::string format;
  stdfs::path modelPath;
  stdfs::path modelDir;
  models::Metadata metadata;
  std::string servedName;
  // What runs.
  State state = State::stopped;
  std::string reason;
  std::optional<double> progress;
  std::optional<System::time_point> nextTry;
  std::optional<System::time_point> readySince;
  Steady::time_point readySteady;
  std::optional<Placement> placement;
  pid_t pid = 0;
  std::uint64_t startTime = 0;
  std::optional<stdfs::path> cgroup;
  std::int64_t restarts = 0;
  std::unique_ptr<boost::asio::posix::stream_descriptor> pidfd;
  // NOTIFY_SOCKET of a profile that says it is ready over sd_notify, while it runs.
  std::unique_ptr<boost::asio::local::datagram_protocol::socket> notify;
  std::uint64_t generation = 0;  // a new process each time: late callbacks of old ones are dropped
  Steady::time_point startedAt;
  Steady::time_point lastProgress;
  Steady::time_point exitSeen;
  int missedProbes = 0;
  std::deque<Steady::time_point> failures;  // within the crash-loop window
  int consecutive = 0;                      // failures since the last healthy stretch
  std::string pendingFailure;               // why the supervisor killed it
  bool restartAfterStop = false;
  std::string protection;  // the reason protection stopped it; empty when it did not
  std::unique_ptr<boost::asio::steady_timer> probeTimer;
  std::unique_ptr<boost::asio::steady_timer> actionTimer;
  std::string token;
  // The output log.
  stdfs::path logFile;
  std::uintmax_t logOffset = 0;
  std::string logPartial;
  std::deque<std::string> logLines;
  // The engine's metrics, relabelled.
  std::string metricsPage;
  Steady::time_point metricsAt;
};

struct Supervisor::Impl {
  Impl(boost::asio::io_context& ioContext, db::Worker& worker, Settings given, Context services)
      : io(ioContext), database(worker), settings(std::move(given)), context(std::move(services)) {}

  boost::asio::io_context& io;
  db::Worker& database;
  const Settings settings;
  Context context;
  mutable std::mutex mutex;  // guards everything below
  std::map<std::string, std::shared_ptr<Instance>> instances;
  std::map<std::string, Profile> profiles;
  process::Cgroups cgroups;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  bool stopped = false;

  // --- helpers (mutex held) ----------------------------------------------------------------

  std::shared_ptr<Instance> lookup(const std::string& idOrName) const {
    if (auto it = instances.find(idOrName); it != instances.end()) {
      return it->second;
    }
    for (const auto& [id, inst] : instances) {
      if (inst->name == idOrName) {
        return inst;
      }
    }
    return nullptr;
  }

  View view(const Instance& i) const {
    View v;
    v.id = i.id;
    v.name = i.name;
    v.modelId = i.modelId;
    v.model = i.model;
    v.engine = i.engine;
    v.settings = i.settings;
    v.desiredRunning = i.desiredRunning;
    v.state = i.state;
    v.reason = i.reason;
    v.progress = i.state == State::loading ? i.progress : std::nullopt;
    v.nextTry = i.state == State::backoff ? i.nextTry : std::nullopt;
    v.readySince = i.state == State::ready ? i.readySince : std::nullopt;
    v.placement = i.placement;
    v.pid = i.pid;
    v.cgroup = i.cgroup ? i.cgroup->string() : "";
    v.restarts = i.restarts;
    v.createdAt = i.createdAt;
    v.servedName = i.servedName;
    return v;
  }

  stdfs::path instanceDir(const std::string& id) const { return settings.stateDir / id; }
  // The agent's own copy of the instance's token: the engine's copy in the instance directory
  // belongs to the runtime user, which an agent that is not root cannot read back.
  stdfs::path agentToken(const std::string& id) const {
    return settings.stateDir / (id + ".token");
  }
  stdfs::path pidFile(const std::string& id) const { return settings.runDir / (id + ".pid"); }
  stdfs::path notifyPath(const std::string& id) const { return settings.runDir / (id + ".notify"); }

  void persist(const Instance& i) {
    std::string gpus;
    for (const auto& g : i.placement ? i.placement->gpus : std::vector<std::string>{}) {
      gpus += (gpus.empty() ? "" : ",") + g;
    }
    database.post([id = i.id, settings = json::serialize(settingsJson(i.settings)),
                   desired = i.desiredRunning, state = std::string(stateName(i.state)),
                   reason = i.reason, port = i.placement ? i.placement->port : 0, gpus,
                   cpus = i.placement ? joinInts(i.placement->cpus) : std::string(), pid = i.pid,
                   start = i.startTime, cgroup = i.cgroup ? i.cgroup->string() : std::string(),
                   restarts = i.restarts](db::Database& db) {
      try {
        db.prepare(
              "UPDATE runtime_instances SET settings = ?, desired = ?, state = ?, reason = ?, "
              "port = ?, gpus = ?, cpus = ?, pid = ?, pid_start = ?, cgroup = ?, restarts = ?, "
              "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ?")
            .bind(1, settings)
            .bind(2, desired ? "running" : "stopped")
            .bind(3, state)
            .bind(4, reason)
            .bind(5, port)
            .bind(6, gpus)
            .bind(7, cpus)
            .bind(8, static_cast<std::int64_t>(pid))
            .bind(9, static_cast<std::int64_t>(start))
            .bind(10, cgroup)
            .bind(11, restarts)
            .bind(12, id)
            .step();
      } catch (const db::Error& e) {
        log::error("cannot record an instance's state", {{"error", e.what()}});
      }
    });
  }

  void setState(Instance& i, State state, const std::string& message) {
    bool changed = i.state != state || i.reason != message;
    i.state = state;
    i.reason = message;
    persist(i);
    if (!changed) {
      return;
    }
    Event e{System::now(), i.id, i.name, std::string(stateName(state)), message};
    log::info("instance " + e.state + (message.empty() ? "" : ": " + message),
              {{"instance", i.name}, {"instance_id", i.id}, {"state", e.state}});
    record(e, i);
  }

  // An event into the instance's history and onto the event stream.
  void record(const Event& e, const Instance& i) {
    database.post([e](db::Database& db) {
      try {
        db.prepare(
              "INSERT INTO runtime_events(time, instance, name, state, message) "
              "VALUES (?, ?, ?, ?, ?)")
            .bind(1, time::isoTime(e.time))
            .bind(2, e.instance)
            .bind(3, e.name)
            .bind(4, e.state)
            .bind(5, e.message)
            .step();
      } catch (const db::Error& err) {
        log::error("cannot record an instance event", {{"error", err.what()}});
      }
    });
    if (context.publish) {
      context.publish(e, view(i));
    }
  }

  placement::Taken taken(const Instance& except) const {
    placement::Taken t;
    for (const auto& [id, other] : instances) {
      if (other.get() == &except || !other->placement ||
          !(isRunningState(other->state) || other->state == State::backoff)) {
        continue;
      }
      const auto& p = *other->placement;
      t.ports.insert(p.port);
      for (const auto& g : p.gpus) {
        t.gpuBytes[g] += p.gpus.empty() ? 0 : p.memoryEstimate / p.gpus.size();
      }
      for (int c : p.cpus) {
        ++t.cpuUse[c];
      }
      if (p.gpus.empty()) {
        t.cpuBytes += p.memoryEstimate;
      }
    }
    return t;
  }

  // Why the instance cannot start now (failed), or nullopt.
  std::optional<std::string> launchProblem(const Instance& i) const {
    auto profile = profiles.find(i.engine);
    if (profile == profiles.end()) {
      return "engine profile '" + i.engine + "' does not exist (see aiboxctl engines)";
    }
    if (!profile->second.resolved) {
      return "the " + i.engine + " engine's binary '" + profile->second.binary +
             "' is not installed" +
             (profile->second.install.empty() ? "" : ": " + profile->second.install);
    }
    if (i.modelState != "ready") {
      return "model " + i.model + " is " + i.modelState +
             (i.modelState == "corrupt" ? ": re-import it or run aiboxctl models verify" : "");
    }
    const auto& formats = profile->second.formats;
    if (std::find(formats.begin(), formats.end(), i.format) == formats.end()) {
      return "the " + i.engine + " engine does not take " + i.format + " models";
    }
    return std::nullopt;
  }

  std::variant<Placement, std::string> placeInstance(const Instance& i) const {
    const auto& profile = profiles.at(i.engine);
    placement::Request request{i.settings, profile.gpus,
                               placement::memoryEstimate(i.metadata, i.settings)};
    return placement::place(request, taken(i), settings, context.hardware.reports());
  }

  std::vector<std::string> expand(const Instance& i, const Profile& profile) const {
    const auto& p = *i.placement;
    std::string gpus;
    for (const auto& g : p.gpus) {
      gpus += (gpus.empty() ? "" : ",") + g;
    }
    auto opt = [](const std::optional<int>& v) { return v ? std::to_string(*v) : std::string(); };
    const std::map<std::string, std::string> values{
        {"model", i.modelPath.string()},
        {"model_dir", i.modelDir.string()},
        {"host", "127.0.0.1"},
        {"port", std::to_string(p.port)},
        {"threads", p.cpus.empty() ? opt(i.settings.threads) : std::to_string(p.cpus.size())},
        {"context", opt(i.settings.context)},
        {"parallel", opt(i.settings.parallel)},
        {"kv_memory_mib", opt(i.settings.kvMemoryMiB)},
        {"served_name", i.servedName},
        {"token_file", (instanceDir(i.id) / "token").string()},
        {"token", i.token},
        {"gpus", gpus},
        {"gpu_indexes", joinInts(p.gpuIndexes)},
        {"gpu_count", p.gpus.empty() ? "" : std::to_string(p.gpus.size())},
        {"cpus", joinInts(p.cpus)},
    };
    auto fill = [&values](const std::string& text, bool& empty) {
      std::string out;
      for (std::size_t pos = 0; pos < text.size();) {
        auto open = text.find('{', pos);
        auto close = open == std::string::npos ? open : text.find('}', open);
        if (close == std::string::npos) {
          out += text.substr(pos);
          break;
        }
        out += text.substr(pos, open - pos);
        auto key = text.substr(open + 1, close - open - 1);
        auto it = values.find(key);
        if (it == values.end()) {
          out += text.substr(open, close - open + 1);
        } else {
          empty = empty || it->second.empty();
          out += it->second;
        }
        pos = close + 1;
      }
      return out;
    };
    std::vector<std::string> args;
    for (const auto& group : profile.args) {
      if (group.size() == 1 && group[0] == "{extra}") {
        args.insert(args.end(), i.settings.extraArgs.begin(), i.settings.extraArgs.end());
        continue;
      }
      bool empty = false;
      std::vector<std::string> filled;
      for (const auto& a : group) {
        filled.push_back(fill(a, empty));
      }
      if (!empty) {
        args.insert(args.end(), filled.begin(), filled.end());
      }
    }
    return args;
  }

  std::vector<std::string> environment(const Instance& i, const Profile& profile) const {
    std::vector<std::string> env{"PATH=/usr/local/bin:/usr/bin:/bin",
                                 "HOME=" + instanceDir(i.id).string(), "LANG=C.UTF-8"};
    std::string gpus;
    for (const auto& g : i.placement->gpus) {
      gpus += (gpus.empty() ? "" : ",") + g;
    }
    for (const auto& [key, value] : profile.env) {
      std::string v = value;
      for (auto [from, to] : {std::pair<std::string, std::string>{"{gpus}", gpus},
                              {"{token}", i.token},
                              {"{cpus}", joinInts(i.placement->cpus)}}) {
        for (auto pos = v.find(from); pos != std::string::npos; pos = v.find(from)) {
          v.replace(pos, from.size(), to);
        }
      }
      env.push_back(key + "=" + v);
    }
    return env;
  }

  // Starts the process; the instance is starting, or failed with the reason.
  void launch(const std::shared_ptr<Instance>& inst) {
    auto& i = *inst;
    i.actionTimer->cancel();
    i.nextTry.reset();
    if (auto problem = launchProblem(i)) {
      setState(i, State::failed, *problem);
      return;
    }
    auto placed = placeInstance(i);
    if (auto* problem = std::get_if<std::string>(&placed)) {
      // What fit at creation may not fit any more (another process took the port): a
      // failure that backs off, so it is tried again.
      failure(inst, "cannot be placed: " + *problem);
      return;
    }
    i.placement = std::get<Placement>(std::move(placed));
    const auto& profile = profiles.at(i.engine);
    process::Spec spec;
    spec.instanceId = i.id;
    spec.binary = *profile.resolved;
    spec.args = expand(i, profile);
    spec.env = environment(i, profile);
    if (profile.readyNotify) {
      try {
        openNotify(inst);
      } catch (const std::exception& e) {
        setState(i, State::failed,
                 "cannot make the notify socket " + notifyPath(i.id).string() + ": " + e.what());
        return;
      }
      spec.env.push_back("NOTIFY_SOCKET=" + notifyPath(i.id).string());
    }
    spec.logFile = i.logFile;
    spec.workDir = instanceDir(i.id);
    if (!cgroups.base.empty()) {
      spec.cgroup = cgroups.base / i.id;
      if (cgroups.memory && i.settings.memoryLimitMiB) {
        spec.memoryLimitBytes = *i.settings.memoryLimitMiB << 20;
      }
      if (cgroups.cpu) {
        spec.cpuLimit = i.settings.cpuLimit;
      }
    }
    spec.cpus = i.placement->cpus;
    spec.uid = uid;
    spec.gid = gid;
    try {
      auto started = process::spawn(spec);
      i.pid = started.pid;
      i.startTime = started.startTime;
      i.cgroup = spec.cgroup;
      process::writePidFile(pidFile(i.id), {i.pid, i.startTime});
      watch(inst, started.pidfd);
    } catch (const std::exception& e) {
      setState(i, State::failed, e.what());
      return;
    }
    i.startedAt = Steady::now();
    i.lastProgress = i.startedAt;
    i.progress.reset();
    i.missedProbes = 0;
    i.pendingFailure.clear();
    setState(i, State::starting,
             "pid " + std::to_string(i.pid) + ", port " + std::to_string(i.placement->port));
    scheduleProbe(inst, kStartProbeEvery);
  }

  void watch(const std::shared_ptr<Instance>& inst, int pidfd) {
    auto& i = *inst;
    ++i.generation;
    i.pidfd = std::make_unique<boost::asio::posix::stream_descriptor>(io, pidfd);
    i.pidfd->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                        [this, weak = std::weak_ptr(inst),
                         generation = i.generation](const boost::system::error_code& ec) {
                          if (ec) {
                            return;
                          }
                          std::lock_guard lock(mutex);
                          auto live = weak.lock();
                          if (live && live->generation == generation && !stopped) {
                            exited(live);
                          }
                        });
  }

  // The process ended: clean up after it, then stopped, restarted or backed off.
  void exited(const std::shared_ptr<Instance>& inst) {
    auto& i = *inst;
    i.exitSeen = Steady::now();
    std::string status = process::reap(i.pidfd->native_handle());
    i.pidfd.reset();
    ++i.generation;
    i.probeTimer->cancel();
    cleanUp(i);
    if (i.state == State::stopping) {
      i.actionTimer->cancel();
      stoppedNow(inst);
      return;
    }
    std::string why = i.pendingFailure.empty() ? status : i.pendingFailure + " (" + status + ")";
    failure(inst, why);
  }

  // Kills what is left of the instance (children that outlived it) and forgets the process.
  void cleanUp(Instance& i) {
    closeNotify(i);
    int left = process::killAll(i.cgroup, i.pid, i.id);
    if (left > 0) {
      log::warning("killed processes the instance left behind",
                   {{"instance", i.name}, {"count", std::to_string(left)}});
    }
    if (i.cgroup) {
      process::removeCgroup(*i.cgroup);
      i.cgroup.reset();
    }
    std::error_code ec;
    stdfs::remove(pidFile(i.id), ec);
    i.pid = 0;
    i.startTime = 0;
  }

  void failure(const std::shared_ptr<Instance>& inst, const std::string& why) {
    auto& i = *inst;
    auto now = Steady::now();
    if (i.readySince && now - i.readySteady >= settings.healthyReset) {
      i.consecutive = 0;
    }
    i.readySince.reset();
    i.failures.push_back(now);
    while (!i.failures.empty() && now - i.failures.front() > settings.crashLoopWindow) {
      i.failures.pop_front();
    }
    ++i.restarts;
    if (!i.desiredRunning) {
      setState(i, State::stopped, why);
      return;
    }
    if (static_cast<int>(i.failures.size()) >= settings.crashLoopFailures) {
      setState(i, State::crash_loop,
               std::to_string(i.failures.size()) + " failures within " +
                   std::to_string(settings.crashLoopWindow.count()) + " s; the last: " + why +
                   ". Start it again once fixed");
      return;
    }
    auto delay = settings.backoffFirst * (1LL << std::min(i.consecutive, 30));
    if (delay > settings.backoffMax) {
      delay = std::chrono::duration_cast<std::chrono::milliseconds>(settings.backoffMax);
    }
    ++i.consecutive;
    i.nextTry = System::now() + delay;
    setState(i, State::backoff, why);
    i.actionTimer->expires_after(delay);
    i.actionTimer->async_wait(
        [this, weak = std::weak_ptr(inst)](const boost::system::error_code& ec) {
          if (ec) {
            return;
          }
          std::lock_guard lock(mutex);
          auto live = weak.lock();
          if (live && live->state == State::backoff && !stopped) {
            launch(live);
          }
        });
  }

  void stoppedNow(const std::shared_ptr<Instance>& inst) {
    auto& i = *inst;
    auto gpus = i.placement ? i.placement->gpus : std::vector<std::string>{};
    bool restart = i.restartAfterStop;
    i.restartAfterStop = false;
    setState(i, State::stopped, i.protection.empty() ? "" : "protection: " + i.protection);
    if (!gpus.empty()) {
      awaitGpuRelease(inst, gpus, Steady::now());
    }
    if (restart && i.desiredRunning) {
      launch(inst);
    }
  }

  // On a GPU box a stop is complete when NVML shows the instance's memory given back: each of
  // its GPUs at most what the other instances placed there hold, plus 5 %.
  void awaitGpuRelease(const std::shared_ptr<Instance>& inst, std::vector<std::string> gpus,
                       Steady::time_point since) {
    auto reports = context.hardware.reports();
    auto nvml = reports.find("nvml");
    auto held = taken(*inst).gpuBytes;
    std::vector<std::string> waiting;
    if (nvml != reports.end()) {
      for (const auto& gpu : nvml->second->gpus) {
        if (std::find(gpus.begin(), gpus.end(), gpu.uuid) == gpus.end() || !gpu.memoryUsedBytes ||
            !gpu.memoryTotalBytes) {
          continue;
        }
        auto allowed =
            (held.contains(gpu.uuid) ? held.at(gpu.uuid) : 0) + *gpu.memoryTotalBytes / 20;
        if (*gpu.memoryUsedBytes > allowed) {
          waiting.push_back(std::to_string(gpu.index));
        }
      }
    }
    if (waiting.empty()) {
      return;
    }
    if (Steady::now() - since >= settings.gpuReleaseTimeout) {
      std::string list;
      for (const auto& w : waiting) {
        list += (list.empty() ? "" : ", ") + w;
      }
      Event e{System::now(), inst->id, inst->name, "stopped",
              "GPU memory not released " + std::to_string(settings.gpuReleaseTimeout.count()) +
                  " s after the stop on GPU " + list + " (see nvidia-smi)"};
      log::warning(e.message, {{"instance", inst->name}});
      record(e, *inst);
      return;
    }
    auto timer = std::make_shared<boost::asio::steady_timer>(io, 1s);
    timer->async_wait([this, timer, weak = std::weak_ptr(inst), gpus = std::move(gpus),
                       since](const boost::system::error_code& ec) {
      std::lock_guard lock(mutex);
      auto live = weak.lock();
      if (!ec && live && !stopped && live->state == State::stopped) {
        awaitGpuRelease(live, gpus, since);
      }
    });
  }

  void stop(const std::shared_ptr<Instance>& inst, const std::string& reason) {
    auto& i = *inst;
    i.actionTimer->cancel();
    if (i.pid == 0 || !i.pidfd) {
      if (i.state != State::stopped) {
        setState(i, State::stopped, reason);
      }
      return;
    }
    if (i.state == State::stopping) {
      return;
    }
    const auto& profile = profiles.count(i.engine) ? profiles.at(i.engine) : Profile{};
    setState(i, State::stopping, reason);
    i.probeTimer->cancel();
    process::signalProcess(i.pidfd->native_handle(), profile.stopSignal);
    i.actionTimer->expires_after(profile.stopGrace);
    i.actionTimer->async_wait([this,
                               weak = std::weak_ptr(inst)](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      std::lock_guard lock(mutex);
      auto live = weak.lock();
      if (live && live->state == State::stopping && live->pid > 0) {
        log::warning("instance ignored its stop signal: killing it", {{"instance", live->name}});
        process::killAll(live->cgroup, live->pid, live->id);
      }
    });
  }

  // --- sd_notify -----------------------------------------------------------------------------

  // The instance's NOTIFY_SOCKET: a datagram socket whose messages count only when they come
  // from the instance's own processes (the sender's pid, from its credentials, is the
  // instance's or in its process group), so no other process can say it is ready.
  void openNotify(const std::shared_ptr<Instance>& inst) {
    auto& i = *inst;
    closeNotify(i);
    auto path = notifyPath(i.id);
    std::error_code ec;
    stdfs::remove(path, ec);
    auto socket = std::make_unique<boost::asio::local::datagram_protocol::socket>(io);
    socket->open();
    socket->bind(boost::asio::local::datagram_protocol::endpoint(path.string()));
    int one = 1;
    ::setsockopt(socket->native_handle(), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
    ::chmod(path.c_str(), 0600);
    if (uid && ::chown(path.c_str(), *uid, gid ? *gid : static_cast<gid_t>(-1)) != 0) {
      throw std::runtime_error(std::string("chown: ") + std::strerror(errno));
    }
    i.notify = std::move(socket);
    awaitNotify(inst);
  }

  void closeNotify(Instance& i) {
    if (!i.notify) {
      return;
    }
    boost::system::error_code ignored;
    i.notify->close(ignored);
    i.notify.reset();
    std::error_code ec;
    stdfs::remove(notifyPath(i.id), ec);
  }

  void awaitNotify(const std::shared_ptr<Instance>& inst) {
    inst->notify->async_wait(
        boost::asio::local::datagram_protocol::socket::wait_read,
        [this, weak = std::weak_ptr(inst)](const boost::system::error_code& ec) {
          if (ec) {
            return;
          }
          std::lock_guard lock(mutex);
          auto live = weak.lock();
          if (live && live->notify && !stopped) {
            notified(live);
            if (live->notify) {
              awaitNotify(live);
            }
          }
        });
  }

  // Reads the waiting messages: READY=1 makes a starting instance ready, STATUS= is progress
  // (the stall time starts again). Descriptors sent along are closed; other keys are ignored.
  void notified(const std::shared_ptr<Instance>& inst) {
    auto& i = *inst;
    for (;;) {
      std::array<char, 4096> text{};
      alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)>
          control{};
      iovec part{text.data(), text.size()};
      msghdr message{};
      message.msg_iov = &part;
      message.msg_iovlen = 1;
      message.msg_control = control.data();
      message.msg_controllen = control.size();
      ssize_t n = ::recvmsg(i.notify->native_handle(), &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0) {
        return;
      }
      pid_t sender = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level != SOL_SOCKET) {
          continue;
        }
        if (c->cmsg_type == SCM_CREDENTIALS) {
          ucred credentials{};
          std::memcpy(&credentials, CMSG_DATA(c), sizeof(credentials));
          sender = credentials.pid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
          std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          for (std::size_t k = 0; k < count; ++k) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
            ::close(fd);
          }
        }
      }
      if (sender <= 0 || (sender != i.pid && ::getpgid(sender) != i.pid)) {
        log::warning("ignored a notification from a process that is not the instance's",
                     {{"instance", i.name}, {"sender_pid", std::to_string(sender)}});
        continue;
      }
      std::istringstream lines(std::string(text.data(), static_cast<std::size_t>(n)));
      for (std::string line; std::getline(lines, line);) {
        bool starting = i.state == State::starting || i.state == State::loading;
        if (line == "READY=1" && starting) {
          becomeReady(inst, Steady::now());
        } else if (line.starts_with("STATUS=") && starting) {
          i.lastProgress = Steady::now();
          if (i.state == State::starting) {
            setState(i, State::loading, line.substr(7));
          }
        }
      }
    }
  }

  // --- probes ------------------------------------------------------------------------------

  void scheduleProbe(const std::shared_ptr<Instance>& inst, Steady::duration after) {
    auto& i = *inst;
    i.probeTimer->expires_after(after);
    i.probeTimer->async_wait([this, weak = std::weak_ptr(inst),
                              generation = i.generation](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      std::unique_lock lock(mutex);
      auto live = weak.lock();
      if (!live || live->generation != generation || stopped) {
        return;
      }
      readLog(*live, true);
      const auto& profile = profiles.at(live->engine);
      bool starting = live->state == State::starting || live->state == State::loading;
      if (profile.healthPath.empty() || (profile.readyNotify && starting)) {
        quietTick(live, profile);
        return;
      }
      int port = live->placement->port;
      std::string token = live->token;
      std::string path = profile.healthPath;
      lock.unlock();
      probe::get(io, port, path, token, settings.probeTimeout,
                 [this, weak, generation](probe::Answer answer) {
                   std::lock_guard relock(mutex);
                   auto probedOne = weak.lock();
                   if (probedOne && probedOne->generation == generation && !stopped) {
                     probed(probedOne, answer);
                   }
                 });
    });
  }

  void probed(const std::shared_ptr<Instance>& inst, const probe::Answer& answer) {
    auto& i = *inst;
    const auto& profile = profiles.at(i.engine);
    bool healthy = answer.status == profile.healthStatus;
    auto now = Steady::now();
    if (i.state == State::starting || i.state == State::loading) {
      if (healthy) {
        becomeReady(inst, now);
        return;
      }
      boost::system::error_code ec;
      auto body = boost::json::parse(answer.body, ec);
      if (!ec && body.is_object()) {
        const auto& o = body.as_object();
        if (const auto* status = o.if_contains("status");
            status && status->is_string() && status->as_string() == "failed") {
          const auto* error = o.if_contains("error");
          i.pendingFailure = "the engine failed to load the model" +
                             (error && error->is_string() ? ": " + std::string(error->as_string())
                                                          : std::string());
        }
        if (const auto* p = o.if_contains("progress"); p && p->is_number()) {
          double progress = p->to_number<double>();
          if (!i.progress || progress != *i.progress) {
            i.lastProgress = now;
            i.progress = progress;
            setState(i, State::loading, "");
          }
        }
      }
      if (answer.status != 0 && i.state == State::starting) {
        setState(i, State::loading, "");
      }
      if (!failedStart(i, now)) {
        scheduleProbe(inst, kStartProbeEvery);
      }
      return;
    }
    if (i.state != State::ready && i.state != State::unhealthy) {
      return;
    }
    if (healthy) {
      i.missedProbes = 0;
      if (i.state == State::unhealthy) {
        setState(i, State::ready, "answering again");
      }
      scrapeMetrics(inst, profile);
      scheduleProbe(inst, settings.probeInterval);
      return;
    }
    ++i.missedProbes;
    if (i.missedProbes >= settings.unhealthyProbes) {
      std::string why =
          "no healthy answer to " + std::to_string(i.missedProbes) + " health checks (" +
          (answer.error.empty() ? "HTTP " + std::to_string(answer.status) : answer.error) + ")";
      setState(i, State::unhealthy, why);
      i.pendingFailure = "unhealthy: " + why;
      process::killAll(i.cgroup, i.pid, i.id);
      return;
    }
    scheduleProbe(inst, settings.probeInterval);
  }

  void becomeReady(const std::shared_ptr<Instance>& inst, Steady::time_point now) {
    auto& i = *inst;
    i.readySince = System::now();
    i.readySteady = now;
    i.missedProbes = 0;
    setState(
        i, State::ready,
        "ready in " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::milliseconds>(now - i.startedAt).count()) +
            " ms");
    scheduleProbe(inst, settings.probeInterval);
  }

  // A start the engine said failed, or that made no progress for the stall time, is killed
  // (the exit follows); true when it was.
  bool failedStart(Instance& i, Steady::time_point now) {
    if (i.pendingFailure.empty() &&
        now - i.lastProgress <=
            std::chrono::duration_cast<Steady::duration>(settings.stallTimeout)) {
      return false;
    }
    if (i.pendingFailure.empty()) {
      i.pendingFailure =
          "the load made no progress for " + std::to_string(settings.stallTimeout.count()) + " s";
    }
    process::killAll(i.cgroup, i.pid, i.id);
    return true;
  }

  // No HTTP check to make: while it starts, readiness comes over the notify socket and the
  // stall time applies (output and STATUS= are progress); once ready, liveness is the process
  // itself (its pidfd), and the engine's metrics are still scraped.
  void quietTick(const std::shared_ptr<Instance>& inst, const Profile& profile) {
    auto& i = *inst;
    if (i.state == State::starting || i.state == State::loading) {
      if (!failedStart(i, Steady::now())) {
        scheduleProbe(inst, kStartProbeEvery);
      }
    } else if (i.state == State::ready) {
      scrapeMetrics(inst, profile);
      scheduleProbe(inst, settings.probeInterval);
    }
  }

  void scrapeMetrics(const std::shared_ptr<Instance>& inst, const Profile& profile) {
    auto& i = *inst;
    if (profile.metricsPath.empty() || Steady::now() - i.metricsAt < kMetricsEvery) {
      return;
    }
    i.metricsAt = Steady::now();
    probe::get(io, i.placement->port, profile.metricsPath, i.token, settings.probeTimeout,
               [this, weak = std::weak_ptr(inst)](probe::Answer answer) {
                 std::lock_guard lock(mutex);
                 if (auto live = weak.lock(); live && answer.status == 200) {
                   live->metricsPage = std::move(answer.body);
                 }
               });
  }

  // Reads what the instance wrote since the last look; each line goes to the journal with the
  // instance's name, and the last ones are kept for the API.
  void readLog(Instance& i, bool toJournal) {
    std::error_code ec;
    auto size = stdfs::file_size(i.logFile, ec);
    if (ec) {
      return;
    }
    if (size < i.logOffset) {
      i.logOffset = 0;  // rotated
    }
    if (size == i.logOffset) {
      return;
    }
    i.lastProgress = Steady::now();  // an engine that writes is doing something
    std::ifstream in(i.logFile, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(i.logOffset));
    std::string chunk(std::min<std::uintmax_t>(size - i.logOffset, 1 << 20), '\0');
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    chunk.resize(static_cast<std::size_t>(in.gcount()));
    i.logOffset += chunk.size();
    i.logPartial += chunk;
    for (auto nl = i.logPartial.find('\n'); nl != std::string::npos; nl = i.logPartial.find('\n')) {
      std::string line = i.logPartial.substr(0, nl);
      i.logPartial.erase(0, nl + 1);
      if (toJournal) {
        log::info(line, {{"instance", i.name}, {"instance_id", i.id}});
      }
      i.logLines.push_back(std::move(line));
      if (i.logLines.size() > kLogLines) {
        i.logLines.pop_front();
      }
    }
    if (i.logPartial.size() > 4096) {
      i.logPartial.clear();
    }
    if (i.logOffset > kLogRotateBytes) {
      // O_APPEND writers go on at the new end.
      ::truncate(i.logFile.c_str(), 0);
      i.logOffset = 0;
    }
  }

  int runningCount() const {
    int n = 0;
    for (const auto& [id, i] : instances) {
      n += i->desiredRunning && i->state != State::failed && i->state != State::crash_loop;
    }
    return n;
  }

  std::size_t gpusInUse() const {
    std::set<std::string> gpus;
    for (const auto& [id, i] : instances) {
      if (i->placement && (isRunningState(i->state) || i->state == State::backoff)) {
        gpus.insert(i->placement->gpus.begin(), i->placement->gpus.end());
      }
    }
    return gpus.size();
  }

  // --- loading and adopting ----------------------------------------------------------------

  void fillModel(Instance& i, const models::ModelRow& m) {
    i.modelId = m.id;
    i.model = m.name + ":" + m.tag;
    i.servedName = m.tag == "latest" ? m.name : m.name + ":" + m.tag;
    i.modelState = std::string(models::stateName(m.state));
    i.format = m.metadata.format;
    i.metadata = m.metadata;
    i.modelDir = context.store.linkDir(m.id);
    i.modelPath = m.metadata.format == "gguf" && !m.files.empty()
                      ? context.store.blob(m.files.front().digest)
                      : i.modelDir;
  }

  std::shared_ptr<Instance> make(const std::string& id) {
    auto inst = std::make_shared<Instance>();
    inst->id = id;
    inst->probeTimer = std::make_unique<boost::asio::steady_timer>(io);
    inst->actionTimer = std::make_unique<boost::asio::steady_timer>(io);
    inst->logFile = instanceDir(id) / "output.log";
    return inst;
  }

  void prepareFiles(Instance& i) {
    fs::makeDirectories(instanceDir(i.id), 0750);
    auto tokenFile = instanceDir(i.id) / "token";
    std::ifstream in(agentToken(i.id));
    std::getline(in, i.token);
    if (i.token.empty()) {
      // An instance made before the agent kept its own copy (a running engine knows only the
      // token in its file), else a new one.
      std::ifstream engines(tokenFile);
      std::getline(engines, i.token);
      if (i.token.empty()) {
        i.token = random::hex(32);
      }
      fs::writeFileAtomic(agentToken(i.id), i.token + "\n", 0600);
    }
    if (!stdfs::exists(tokenFile)) {
      fs::writeFileAtomic(tokenFile, i.token + "\n", 0600);
    }
    if (uid && gid) {
      for (const auto& path : {instanceDir(i.id), tokenFile}) {
        if (::chown(path.c_str(), *uid, *gid) != 0) {
          // The engine will not read its token: say why here, before it fails to start.
          log::warning(
              "cannot give the runtime user its file",
              {{"instance", i.name}, {"path", path.string()}, {"error", std::strerror(errno)}});
        }
      }
    }
  }
};

Supervisor::Supervisor(boost::asio::io_context& io, db::Worker& database, Settings settings,
                       Context context)
    : impl_(std::make_unique<Impl>(io, database, std::move(settings), std::move(context))) {}

Supervisor::~Supervisor() {
  shutdown();
}

void Supervisor::load(db::Database& db) {
  auto& s = impl_->settings;
  fs::makeDirectories(s.stateDir, 0750);
  fs::makeDirectories(s.runDir, 0755);
  std::vector<std::string> problems;
  std::lock_guard lock(impl_->mutex);
  impl_->profiles = loadProfiles(s, problems);
  for (const auto& p : problems) {
    log::warning("engine profile left out: " + p);
  }
  if (::geteuid() == 0 || process::canSwitchUser()) {
    if (const auto* user = ::getpwnam(s.runtimeUser.c_str())) {
      impl_->uid = user->pw_uid;
      impl_->gid = user->pw_gid;
    } else {
      log::warning(
          "the runtime user does not exist: instances run as root (create it with "
          "useradd --system " +
          s.runtimeUser + ")");
    }
  }
  auto rows = db.prepare(
      "SELECT id, name, model_id, engine, settings, desired, state, reason, port, gpus, cpus, "
      "pid, pid_start, cgroup, restarts, created_at FROM runtime_instances");
  std::vector<std::pair<std::shared_ptr<Instance>, std::string>> loaded;
  while (rows.step()) {
    auto inst = impl_->make(rows.text(0));
    auto& i = *inst;
    i.name = rows.text(1);
    i.modelId = rows.text(2);
    i.engine = rows.text(3);
    boost::system::error_code ec;
    auto settingsValue = boost::json::parse(rows.text(4), ec);
    if (!ec && settingsValue.is_object()) {
      if (auto parsed = parseSettings(settingsValue.as_object());
          std::holds_alternative<InstanceSettings>(parsed)) {
        i.settings = std::get<InstanceSettings>(parsed);
      }
    }
    i.desiredRunning = rows.text(5) == "running";
    i.state = State::stopped;
    auto recorded = rows.text(6);
    if (recorded == "failed" || recorded == "crash_loop") {
      i.state = recorded == "failed" ? State::failed : State::crash_loop;
      i.reason = rows.text(7);
    }
    if (rows.integer(8) > 0) {
      Placement p;
      p.port = static_cast<int>(rows.integer(8));
      p.gpus = split(rows.text(9));
      for (const auto& c : split(rows.text(10))) {
        p.cpus.push_back(std::stoi(c));
      }
      i.placement = p;
    }
    i.restarts = rows.integer(14);
    i.createdAt = rows.text(15);
    loaded.emplace_back(inst, recorded);
  }
  for (auto& [inst, recorded] : loaded) {
    if (auto model = models::findModel(db, inst->modelId)) {
      impl_->fillModel(*inst, *model);
    } else {
      inst->modelState = "missing";
    }
    impl_->prepareFiles(*inst);
    // The pid file is written before the row: it tells which process is the instance's.
    auto recordedPid = process::readPidFile(impl_->pidFile(inst->id));
    inst->pid = recordedPid.pid;
    inst->startTime = recordedPid.startTime;
    if (inst->placement) {
      inst->placement->memoryEstimate = placement::memoryEstimate(inst->metadata, inst->settings);
    }
    // Adoption keeps the last lines without sending them to the journal a second time.
    std::error_code ec;
    auto size = stdfs::file_size(inst->logFile, ec);
    inst->logOffset = !ec && size > 16384 ? size - 16384 : 0;
    impl_->readLog(*inst, false);
    if (recorded == "ready") {
      inst->state = State::ready;  // until the first probe says otherwise
    }
    impl_->instances.emplace(inst->id, inst);
  }
}

void Supervisor::start() {
  std::lock_guard lock(impl_->mutex);
  auto& im = *impl_;
  im.cgroups = process::prepareCgroups(im.settings.cgroup);
  if (im.cgroups.base.empty()) {
    log::info("instances run in their own process groups: " + im.cgroups.problem);
  } else {
    log::info("instances run in cgroups under " + im.cgroups.base.string(),
              {{"memory_limits", im.cgroups.memory ? "yes" : "no"},
               {"cpu_limits", im.cgroups.cpu ? "yes" : "no"}});
  }
  // Processes the database does not know: cgroups and pid files of unknown instances.
  std::error_code ec;
  if (!im.cgroups.base.empty()) {
    for (stdfs::directory_iterator it(im.cgroups.base, ec), end; !ec && it != end;
         it.increment(ec)) {
      auto id = it->path().filename().string();
      if (it->is_directory() && !im.instances.contains(id)) {
        int n = process::killAll(it->path(), 0, id);
        log::warning("stopped processes of an instance the database does not know",
                     {{"instance_id", id}, {"count", std::to_string(n)}});
        process::removeCgroup(it->path());
      }
    }
  }
  for (stdfs::directory_iterator it(im.settings.runDir, ec), end; !ec && it != end;
       it.increment(ec)) {
    auto id = it->path().stem().string();
    if (im.instances.contains(id)) {
      continue;
    }
    std::error_code removed;  // not `ec`: that one ends the walk
    if (it->path().extension() == ".notify") {
      stdfs::remove(it->path(), removed);
      continue;
    }
    if (it->path().extension() != ".pid") {
      continue;
    }
    auto stray = process::readPidFile(it->path());
    if (int fd = process::adopt(stray.pid, stray.startTime); fd >= 0) {
      ::close(fd);
      process::killAll(std::nullopt, stray.pid, id);
      log::warning("stopped an instance the database does not know", {{"instance_id", id}});
    }
    stdfs::remove(it->path(), removed);
  }
  for (auto& [id, inst] : im.instances) {
    auto& i = *inst;
    int fd = process::adopt(i.pid, i.startTime);
    if (fd >= 0 && i.placement) {
      if (!im.cgroups.base.empty() && stdfs::is_directory(im.cgroups.base / i.id)) {
        i.cgroup = im.cgroups.base / i.id;
      }
      im.watch(inst, fd);
      if (auto profile = im.profiles.find(i.engine);
          profile != im.profiles.end() && profile->second.readyNotify && i.state != State::ready) {
        try {
          im.openNotify(inst);  // the same path: the engine's NOTIFY_SOCKET still names it
        } catch (const std::exception& e) {
          log::warning("cannot make the notify socket again",
                       {{"instance", i.name}, {"error", e.what()}});
        }
      }
      i.startedAt = Steady::now();
      i.lastProgress = i.startedAt;
      if (i.state == State::ready) {
        i.readySince = System::now();
        i.readySteady = Steady::now();
      } else {
        i.state = State::starting;
      }
      im.setState(i, i.state,
                  "re-adopted pid " + std::to_string(i.pid) + " after an agent restart");
      im.scheduleProbe(inst, i.state == State::ready ? 0ms : kStartProbeEvery);
      if (!i.desiredRunning) {
        im.stop(inst, "stopped: the database says it should not run");
      }
      continue;
    }
    if (fd >= 0) {
      ::close(fd);
    }
    if (i.pid > 0) {
      im.cleanUp(i);
      if (i.desiredRunning) {
        im.failure(inst, "ended while the agent was not running");
        continue;
      }
    }
    i.pid = 0;
    if (i.desiredRunning && i.state != State::failed && i.state != State::crash_loop) {
      if (auto refusal = im.context.license.refuse(license::Limit::instances, 1)) {
        im.setState(i, State::failed, refusal->message);
        continue;
      }
      im.launch(inst);
    } else if (i.state == State::ready) {
      im.setState(i, State::stopped, "");
    }
  }
}

void Supervisor::shutdown() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped) {
    return;
  }
  impl_->stopped = true;
  for (auto& [id, inst] : impl_->instances) {
    inst->probeTimer->cancel();
    inst->actionTimer->cancel();
    if (inst->pidfd) {
      inst->pidfd->close();  // the process goes on; the next agent re-adopts it
      inst->pidfd.reset();
    }
  }
}

std::vector<View> Supervisor::list() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<View> out;
  for (const auto& [id, inst] : impl_->instances) {
    out.push_back(impl_->view(*inst));
  }
  std::sort(out.begin(), out.end(), [](const View& a, const View& b) { return a.name < b.name; });
  return out;
}

std::optional<View> Supervisor::find(const std::string& idOrName) const {
  std::lock_guard lock(impl_->mutex);
  if (auto inst = impl_->lookup(idOrName)) {
    return impl_->view(*inst);
  }
  return std::nullopt;
}

std::map<std::string, Profile> Supervisor::engines() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->profiles;
}

namespace {

Refusal notFound(const std::string& id) {
  return {404, "not_found", "no runtime instance " + id + " (see aiboxctl runtimes ls)"};
}

std::optional<Refusal> licensed(license::Service& license, int running, std::size_t gpus,
                                std::size_t gpusInUse) {
  if (auto r = license.refuse(license::Limit::instances, running + 1)) {
    return Refusal{r->status, r->code, r->message};
  }
  if (gpus > 0) {
    if (auto r =
            license.refuse(license::Limit::gpus, static_cast<std::int64_t>(gpusInUse + gpus))) {
      return Refusal{r->status, r->code, r->message};
    }
  }
  return std::nullopt;
}

}  // namespace

Result<View> Supervisor::create(db::Database& db, const models::ModelRow& model,
                                const CreateRequest& r) {
  std::lock_guard lock(impl_->mutex);
  auto& im = *impl_;
  if (im.lookup(r.name)) {
    return Refusal{409, "conflict", "an instance named " + r.name + " exists: choose another name"};
  }
  auto profile = im.profiles.find(r.engine);
  if (profile == im.profiles.end()) {
    std::string names;
    for (const auto& [name, p] : im.profiles) {
      names += (names.empty() ? "" : ", ") + name;
    }
    return Refusal{400, "invalid_field",
                   "field 'engine': no engine profile " + r.engine + " (there are: " + names + ")"};
  }
  auto inst = im.make(random::hex(6));
  auto& i = *inst;
  i.name = r.name;
  i.engine = r.engine;
  i.settings = r.settings;
  i.desiredRunning = r.start;
  i.createdAt = time::isoTime(System::now());
  im.fillModel(i, model);
  if (r.start) {
    if (auto problem = im.launchProblem(i)) {
      return Refusal{409, "cannot_start", *problem};
    }
    auto placed = im.placeInstance(i);
    if (auto* problem = std::get_if<std::string>(&placed)) {
      return Refusal{409, "does_not_fit", "instance " + r.name + " does not fit: " + *problem};
    }
    if (auto refusal = licensed(im.context.license, im.runningCount(),
                                std::get<Placement>(placed).gpus.size(), im.gpusInUse())) {
      return *refusal;
    }
  }
  db.prepare(
        "INSERT INTO runtime_instances(id, name, model_id, engine, settings, desired, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, i.id)
      .bind(2, i.name)
      .bind(3, i.modelId)
      .bind(4, i.engine)
      .bind(5, json::serialize(settingsJson(i.settings)))
      .bind(6, r.start ? "running" : "stopped")
      .bind(7, i.createdAt)
      .bind(8, i.createdAt)
      .step();
  im.prepareFiles(i);
  im.instances.emplace(i.id, inst);
  im.setState(i, State::stopped, "created");
  if (r.start) {
    im.launch(inst);
  }
  return im.view(i);
}

Result<View> Supervisor::update(db::Database& db, const std::string& id,
                                const InstanceSettings& settings) {
  std::lock_guard lock(impl_->mutex);
  auto inst = impl_->lookup(id);
  if (!inst) {
    return notFound(id);
  }
  if (isRunningState(inst->state) || inst->state == State::backoff) {
    return Refusal{409, "conflict",
                   "instance " + inst->name + " is " + std::string(stateName(inst->state)) +
                       ": stop it before changing its settings"};
  }
  db.prepare("UPDATE runtime_instances SET settings = ? WHERE id = ?")
      .bind(1, json::serialize(settingsJson(settings)))
      .bind(2, inst->id)
      .step();
  inst->settings = settings;
  inst->placement.reset();
  impl_->persist(*inst);
  return impl_->view(*inst);
}

Result<View> Supervisor::remove(db::Database& db, const std::string& id) {
  std::lock_guard lock(impl_->mutex);
  auto inst = impl_->lookup(id);
  if (!inst) {
    return notFound(id);
  }
  if (inst->pid > 0 || inst->state == State::stopping) {
    return Refusal{409, "conflict",
                   "instance " + inst->name + " is " + std::string(stateName(inst->state)) +
                       ": stop it first (aiboxctl runtimes stop " + inst->name + ")"};
  }
  inst->actionTimer->cancel();
  inst->probeTimer->cancel();
  db.prepare("DELETE FROM runtime_instances WHERE id = ?").bind(1, inst->id).step();
  auto view = impl_->view(*inst);
  impl_->instances.erase(inst->id);
  std::error_code ec;
  std::filesystem::remove_all(impl_->instanceDir(inst->id), ec);
  std::filesystem::remove(impl_->agentToken(inst->id), ec);
  Event e{System::now(), inst->id, inst->name, "deleted", ""};
  log::info("instance deleted", {{"instance", inst->name}});
  if (impl_->context.publish) {
    impl_->context.publish(e, view);
  }
  return view;
}

Result<View> Supervisor::startInstance(db::Database& db, const std::string& id) {
  std::unique_lock lock(impl_->mutex);
  auto& im = *impl_;
  auto inst = im.lookup(id);
  if (!inst) {
    return notFound(id);
  }
  auto& i = *inst;
  if (isRunningState(i.state) && i.state != State::stopping) {
    return im.view(i);  // already running: starting again changes nothing
  }
  // The model may have been verified or re-imported since.
  if (auto model = models::findModel(db, i.modelId)) {
    im.fillModel(i, *model);
  }
  if (auto problem = im.launchProblem(i)) {
    return Refusal{409, "cannot_start", *problem};
  }
  bool wasRunning = i.desiredRunning && i.state == State::backoff;
  auto placed = im.placeInstance(i);
  if (auto* problem = std::get_if<std::string>(&placed)) {
    return Refusal{409, "does_not_fit", "instance " + i.name + " does not fit: " + *problem};
  }
  if (!wasRunning) {
    if (auto refusal = licensed(im.context.license, im.runningCount(),
                                std::get<Placement>(placed).gpus.size(), im.gpusInUse())) {
      return *refusal;
    }
  }
  i.desiredRunning = true;
  i.failures.clear();
  i.consecutive = 0;
  i.protection.clear();
  if (i.state == State::stopping) {
    i.restartAfterStop = true;
  } else {
    im.launch(inst);
  }
  return im.view(i);
}

Result<View> Supervisor::stopInstance(const std::string& id, const std::string& reason) {
  std::lock_guard lock(impl_->mutex);
  auto inst = impl_->lookup(id);
  if (!inst) {
    return notFound(id);
  }
  inst->desiredRunning = false;
  inst->restartAfterStop = false;
  impl_->stop(inst, reason);
  impl_->persist(*inst);
  return impl_->view(*inst);
}

Result<View> Supervisor::restartInstance(db::Database& db, const std::string& id) {
  {
    std::lock_guard lock(impl_->mutex);
    auto inst = impl_->lookup(id);
    if (!inst) {
      return notFound(id);
    }
    if (inst->pid > 0 && inst->state != State::stopping) {
      inst->desiredRunning = true;
      inst->restartAfterStop = true;
      inst->failures.clear();
      inst->consecutive = 0;
      impl_->stop(inst, "restart asked for");
      return impl_->view(*inst);
    }
  }
  return startInstance(db, id);
}

std::optional<std::vector<std::string>> Supervisor::logs(const std::string& id,
                                                         std::size_t lines) const {
  std::lock_guard lock(impl_->mutex);
  auto inst = impl_->lookup(id);
  if (!inst) {
    return std::nullopt;
  }
  impl_->readLog(*inst, true);
  auto first = inst->logLines.size() > lines ? inst->logLines.size() - lines : 0;
  return std::vector<std::string>(inst->logLines.begin() + static_cast<std::ptrdiff_t>(first),
                                  inst->logLines.end());
}

std::optional<Supervisor::Endpoint> Supervisor::endpoint(const std::string& id) const {
  std::lock_guard lock(impl_->mutex);
  auto inst = impl_->lookup(id);
  if (!inst || inst->state != State::ready || !inst->placement) {
    return std::nullopt;
  }
  return Endpoint{inst->placement->port, inst->token, inst->servedName};
}

std::vector<std::string> Supervisor::protect(Action action, const std::string& gpuUuid,
                                             const std::string& reason) {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> out;
  for (auto& [id, inst] : impl_->instances) {
    bool onDevice =
        inst->placement &&
        (gpuUuid.empty() ? inst->placement->gpus.empty()
                         : std::find(inst->placement->gpus.begin(), inst->placement->gpus.end(),
                                     gpuUuid) != inst->placement->gpus.end());
    if (!onDevice) {
      continue;
    }
    if (action == Action::stop && inst->desiredRunning && inst->pid > 0) {
      inst->protection = reason;
      impl_->stop(inst, "protection: " + reason);
      out.push_back(id);
    } else if (action == Action::resume && !inst->protection.empty() && inst->desiredRunning &&
               inst->state == State::stopped) {
      inst->protection.clear();
      impl_->launch(inst);
      out.push_back(id);
    }
  }
  return out;
}

void Supervisor::licenseEnded(const std::string& why) {
  std::lock_guard lock(impl_->mutex);
  for (auto& [id, inst] : impl_->instances) {
    if (inst->pid > 0 || inst->state == State::backoff) {
      inst->desiredRunning = false;
      impl_->stop(inst, "the license no longer allows instances: " + why);
      impl_->persist(*inst);
    }
  }
}

void Supervisor::renderMetrics(std::string& out) const {
  std::lock_guard lock(impl_->mutex);
  out += "# HELP aibox_runtime_instance_state The state of each instance: 1 for the current.\n";
  out += "# TYPE aibox_runtime_instance_state gauge\n";
  for (const auto& [id, i] : impl_->instances) {
    for (auto s : {State::stopped, State::starting, State::loading, State::ready, State::unhealthy,
                   State::backoff, State::crash_loop, State::stopping, State::failed}) {
      out += "aibox_runtime_instance_state{instance=\"" + id + "\",name=\"" + i->name +
             "\",state=\"" + std::string(stateName(s)) + "\"} " + (i->state == s ? "1" : "0") +
             "\n";
    }
  }
  out += "# HELP aibox_runtime_restarts_total Restarts of each instance after a failure.\n";
  out += "# TYPE aibox_runtime_restarts_total counter\n";
  for (const auto& [id, i] : impl_->instances) {
    out += "aibox_runtime_restarts_total{instance=\"" + id + "\",name=\"" + i->name + "\"} " +
           std::to_string(i->restarts) + "\n";
  }
  std::map<std::string, std::pair<std::string, std::string>> families;
  for (const auto& [id, i] : impl_->instances) {
    if (i->state == State::ready && !i->metricsPage.empty()) {
      relabel(i->metricsPage, id, families);
    }
  }
  for (const auto& [name, family] : families) {
    out += family.first + family.second;
  }
}

void Supervisor::renderInstanceMetrics(const std::string& id, std::string& out) const {
  std::lock_guard lock(impl_->mutex);
  std::map<std::string, std::pair<std::string, std::string>> families;
  if (auto inst = impl_->lookup(id); inst && inst->state == State::ready) {
    relabel(inst->metricsPage, inst->id, families);
  }
  for (const auto& [name, family] : families) {
    out += family.first + family.second;
  }
}

std::vector<Event> Supervisor::history(db::Database& db, const std::string& id, int limit) const {
  std::vector<Event> out;
  auto s = db.prepare(
      "SELECT time, instance, name, state, message FROM runtime_events "
      "WHERE (? = '' OR instance = ?) ORDER BY id DESC LIMIT ?");
  s.bind(1, id).bind(2, id).bind(3, limit);
  while (s.step()) {
    std::tm tm{};
    auto at = s.text(0);
    ::strptime(at.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    out.push_back({System::from_time_t(::timegm(&tm)), s.text(1), s.text(2), s.text(3), s.text(4)});
  }
  return out;
}

}  // namespace aibox::agent::runtimes
