// Instance rows (the schema, settings and their JSON), the settings of the supervision, and
// the direct read for `aiboxctl runtimes ls --direct`.
#include <signal.h>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <fstream>
#include <sstream>

#include "agent/runtimes/process.hpp"
#include "agent/runtimes/runtimes.hpp"
#include "common/time/time.hpp"

namespace po = boost::program_options;

namespace aibox::agent::runtimes {

const char* const kSchema =
    "CREATE TABLE runtime_instances ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " model_id TEXT NOT NULL REFERENCES models(id),"
    " engine TEXT NOT NULL,"
    " settings TEXT NOT NULL,"
    " desired TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),"
    " state TEXT NOT NULL DEFAULT 'stopped',"
    " reason TEXT NOT NULL DEFAULT '',"
    " port INTEGER NOT NULL DEFAULT 0,"
    " gpus TEXT NOT NULL DEFAULT '',"
    " cpus TEXT NOT NULL DEFAULT '',"
    " pid INTEGER NOT NULL DEFAULT 0,"
    " pid_start INTEGER NOT NULL DEFAULT 0,"
    " cgroup TEXT NOT NULL DEFAULT '',"
    " restarts INTEGER NOT NULL DEFAULT 0,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL);"
    "CREATE TABLE runtime_events ("
    " id INTEGER PRIMARY KEY,"
    " time TEXT NOT NULL,"
    " instance TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " message TEXT NOT NULL);"
    "CREATE INDEX runtime_events_instance ON runtime_events(instance, id);"
    // The model store refuses to delete a model an instance uses.
    "CREATE TRIGGER runtime_instances_use AFTER INSERT ON runtime_instances BEGIN"
    " UPDATE models SET in_use = in_use + 1 WHERE id = NEW.model_id; END;"
    "CREATE TRIGGER runtime_instances_unuse AFTER DELETE ON runtime_instances BEGIN"
    " UPDATE models SET in_use = in_use - 1 WHERE id = OLD.model_id; END;";

namespace {

template <class T>
std::function<void(const T&)> inRange(const char* key, T low, T high) {
  return [key, low, high](const T& v) {
    if (v < low || v > high) {
      throw config::InvalidValue(
          key, "must be between " + std::to_string(low) + " and " + std::to_string(high));
    }
  };
}

}  // namespace

void addSettings(po::options_description& d, Settings& s) {
  // clang-format off
  d.add_options()
    ("runtimes.port_range", po::value<std::string>()->default_value("20000-20999")
        ->notifier([&s](const std::string& v) {
          int first = 0;
          int last = 0;
          char dash = 0;
          std::istringstream in(v);
          if (!(in >> first >> dash >> last) || dash != '-' || first < 1024 || last > 65535 ||
              first > last) {
            throw config::InvalidValue("runtimes.port_range",
                                       "must be FIRST-LAST within 1024-65535, e.g. 20000-20999");
          }
          s.portFirst = first;
          s.portLast = last;
        }),
        "loopback ports instances listen on")
    ("runtimes.engine_path", po::value<std::string>()
        ->default_value("/usr/bin:/usr/local/bin:/usr/sbin:/opt/aibox/engines/bin")
        ->notifier([&s](const std::string& v) {
          s.enginePath.clear();
          std::istringstream in(v);
          for (std::string dir; std::getline(in, dir, ':');) {
            if (!dir.empty() && dir.front() != '/') {
              throw config::InvalidValue("runtimes.engine_path",
                                         "must be absolute directories separated by ':'; '" + dir + "' is not");
            }
            if (!dir.empty()) {
              s.enginePath.emplace_back(dir);
            }
          }
        }),
        "colon-separated directories where engine binaries are looked up")
    ("runtimes.engines_dir", po::value<std::string>(),
        "the shipped engine profiles (default <root>/usr/share/aibox/engines); files of the same "
        "name in <root>/etc/aibox/engines replace them")
    ("runtimes.user", po::value(&s.runtimeUser)->default_value(s.runtimeUser),
        "the unprivileged user instances run as when the agent runs as root")
    ("runtimes.cgroup", po::value(&s.cgroup)->default_value(s.cgroup),
        "auto (the agent's delegated cgroup v2 subtree), off (process groups only), or a cgroup "
        "v2 directory for the instances")
    ("runtimes.probe_interval_ms", po::value<int>()->default_value(1000)
        ->notifier([&s](int v) {
          inRange("runtimes.probe_interval_ms", 50, 60000)(v);
          s.probeInterval = std::chrono::milliseconds(v);
        }),
        "how often a ready instance's health check is called")
    ("runtimes.unhealthy_probes", po::value(&s.unhealthyProbes)->default_value(s.unhealthyProbes)
        ->notifier(inRange("runtimes.unhealthy_probes", 1, 100)),
        "failed health checks in a row after which a ready instance is unhealthy and restarted")
    ("runtimes.stall_timeout_s", po::value<int>()->default_value(120)
        ->notifier([&s](int v) {
          inRange("runtimes.stall_timeout_s", 1, 86400)(v);
          s.stallTimeout = std::chrono::seconds(v);
        }),
        "a start whose load shows no progress (and writes nothing) for this long has failed")
    ("runtimes.backoff_first_ms", po::value<int>()->default_value(1000)
        ->notifier([&s](int v) {
          inRange("runtimes.backoff_first_ms", 10, 600000)(v);
          s.backoffFirst = std::chrono::milliseconds(v);
        }),
        "the first delay before a restart; it doubles at every failure")
    ("runtimes.backoff_max_s", po::value<int>()->default_value(300)
        ->notifier([&s](int v) {
          inRange("runtimes.backoff_max_s", 1, 86400)(v);
          s.backoffMax = std::chrono::seconds(v);
        }),
        "the longest delay before a restart")
    ("runtimes.healthy_reset_s", po::value<int>()->default_value(600)
        ->notifier([&s](int v) {
          inRange("runtimes.healthy_reset_s", 1, 86400)(v);
          s.healthyReset = std::chrono::seconds(v);
        }),
        "ready this long and the restart delay starts over")
    ("runtimes.crash_loop_failures", po::value(&s.crashLoopFailures)->default_value(s.crashLoopFailures)
        ->notifier(inRange("runtimes.crash_loop_failures", 1, 1000)),
        "failures within runtimes.crash_loop_window_s that stop restarts until an admin acts")
    ("runtimes.crash_loop_window_s", po::value<int>()->default_value(600)
        ->notifier([&s](int v) {
          inRange("runtimes.crash_loop_window_s", 1, 86400)(v);
          s.crashLoopWindow = std::chrono::seconds(v);
        }),
        "the window of runtimes.crash_loop_failures")
    ("runtimes.gpu_release_timeout_s", po::value<int>()->default_value(60)
        ->notifier([&s](int v) {
          inRange("runtimes.gpu_release_timeout_s", 1, 3600)(v);
          s.gpuReleaseTimeout = std::chrono::seconds(v);
        }),
        "how long a stop waits for NVML to show the instance's GPU memory released");
  // clang-format on
}

std::string_view stateName(State state) {
  switch (state) {
    case State::stopped:
      return "stopped";
    case State::starting:
      return "starting";
    case State::loading:
      return "loading";
    case State::ready:
      return "ready";
    case State::unhealthy:
      return "unhealthy";
    case State::backoff:
      return "backoff";
    case State::crash_loop:
      return "crash_loop";
    case State::stopping:
      return "stopping";
    case State::failed:
      return "failed";
  }
  return "stopped";
}

boost::json::object settingsJson(const InstanceSettings& s) {
  boost::json::object o;
  auto put = [&o](const char* key, const auto& v) {
    if (v) {
      o[key] = *v;
    }
  };
  put("threads", s.threads);
  put("context", s.context);
  put("parallel", s.parallel);
  put("kv_memory_mib", s.kvMemoryMiB);
  put("gpu_count", s.gpuCount);
  put("port", s.port);
  put("memory_limit_mib", s.memoryLimitMiB);
  put("cpu_limit", s.cpuLimit);
  if (!s.gpus.empty()) {
    o["gpus"] = boost::json::array(s.gpus.begin(), s.gpus.end());
  }
  if (!s.extraArgs.empty()) {
    o["extra_args"] = boost::json::array(s.extraArgs.begin(), s.extraArgs.end());
  }
  return o;
}

std::variant<InstanceSettings, json::Problem> parseSettings(const boost::json::object& given) {
  InstanceSettings s;
  // cpu_limit is the one number that may have a fraction: read here, the rest by the reader.
  boost::json::object object = given;
  if (const auto* v = object.if_contains("cpu_limit"); v && !v->is_null()) {
    if (!v->is_number() || v->to_number<double>() < 0.1 || v->to_number<double>() > 1024) {
      return json::Problem{"invalid_field", "cpu_limit",
                           "field 'cpu_limit' must be a number of cores between 0.1 and 1024"};
    }
    s.cpuLimit = v->to_number<double>();
  }
  object.erase("cpu_limit");
  json::Reader r(object);
  struct Bound {
    const char* key;
    std::optional<int>* field;
    int low;
    int high;
  };
  for (const auto& b :
       {Bound{"threads", &s.threads, 1, 1024}, Bound{"context", &s.context, 16, 1 << 24},
        Bound{"parallel", &s.parallel, 1, 1024}, Bound{"kv_memory_mib", &s.kvMemoryMiB, 1, 1 << 24},
        Bound{"gpu_count", &s.gpuCount, 0, 64}, Bound{"port", &s.port, 1024, 65535}}) {
    auto v = r.integer(b.key, false);
    if (v && (*v < b.low || *v > b.high)) {
      return json::Problem{"invalid_field", b.key,
                           "field '" + std::string(b.key) + "' must be between " +
                               std::to_string(b.low) + " and " + std::to_string(b.high)};
    }
    if (v) {
      *b.field = static_cast<int>(*v);
    }
  }
  if (auto v = r.integer("memory_limit_mib", false)) {
    if (*v < 64) {
      return json::Problem{"invalid_field", "memory_limit_mib",
                           "field 'memory_limit_mib' must be at least 64"};
    }
    s.memoryLimitMiB = *v;
  }
  if (auto v = r.stringList("gpus", false)) {
    s.gpus = *v;
  }
  if (auto v = r.stringList("extra_args", false)) {
    s.extraArgs = *v;
  }
  if (r.ok()) {
    r.rejectUnknown();
  }
  if (r.problem()) {
    return *r.problem();
  }
  return s;
}

boost::json::object viewJson(const View& v) {
  boost::json::object o{{"id", v.id},
                        {"name", v.name},
                        {"model_id", v.modelId},
                        {"model", v.model},
                        {"engine", v.engine},
                        {"settings", settingsJson(v.settings)},
                        {"desired", v.desiredRunning ? "running" : "stopped"},
                        {"state", stateName(v.state)},
                        {"restarts", v.restarts},
                        {"served_name", v.servedName},
                        {"created_at", v.createdAt}};
  if (!v.reason.empty()) {
    o["reason"] = v.reason;
  }
  if (v.progress) {
    o["progress"] = *v.progress;
  }
  if (v.nextTry) {
    o["next_try_at"] = time::isoTime(*v.nextTry);
  }
  if (v.readySince) {
    o["ready_since"] = time::isoTime(*v.readySince);
  }
  if (v.pid > 0) {
    o["pid"] = v.pid;
  }
  if (!v.cgroup.empty()) {
    o["cgroup"] = v.cgroup;
  }
  if (v.placement) {
    const auto& p = *v.placement;
    boost::json::object placement{{"port", p.port},
                                  {"gpus", boost::json::array(p.gpus.begin(), p.gpus.end())},
                                  {"cpus", boost::json::array(p.cpus.begin(), p.cpus.end())}};
    if (p.memoryEstimate > 0) {
      placement["memory_estimate_bytes"] = p.memoryEstimate;
    }
    o["placement"] = placement;
  }
  return o;
}

boost::json::object eventJson(const Event& e) {
  return {{"time", time::isoTime(e.time)},
          {"instance", e.instance},
          {"name", e.name},
          {"state", e.state},
          {"message", e.message}};
}

std::vector<View> readDirect(db::Database& db, const config::Paths& paths) {
  std::vector<View> out;
  auto s = db.prepare(
      "SELECT i.id, i.name, i.model_id, i.engine, i.desired, i.state, i.reason, i.port, i.pid, "
      "i.pid_start, i.restarts, i.created_at, COALESCE(m.name || ':' || m.tag, '') "
      "FROM runtime_instances i LEFT JOIN models m ON m.id = i.model_id ORDER BY i.name");
  while (s.step()) {
    View v;
    v.id = s.text(0);
    v.name = s.text(1);
    v.modelId = s.text(2);
    v.engine = s.text(3);
    v.desiredRunning = s.text(4) == "running";
    v.reason = s.text(6);
    v.restarts = s.integer(10);
    v.createdAt = s.text(11);
    v.model = s.text(12);
    // The pid file is written before anything else learns of a start: it is the truth.
    auto pidFile = process::readPidFile(paths.runDir() / "instances" / (v.id + ".pid"));
    bool alive = process::alive(pidFile);
    v.pid = alive ? pidFile.pid : 0;
    auto recorded = s.text(5);
    if (alive) {
      v.state = recorded == "ready" ? State::ready : State::starting;
    } else if (recorded == "failed") {
      v.state = State::failed;
    } else if (recorded == "crash_loop") {
      v.state = State::crash_loop;
    } else {
      v.state = State::stopped;
    }
    if (s.integer(7) > 0) {
      v.placement = Placement{.port = static_cast<int>(s.integer(7))};
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace aibox::agent::runtimes
