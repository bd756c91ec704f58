// aiboxctl runtimes ... and aiboxctl engines: model instances the agent supervises, and the
// engine profiles (docs/cli.md, docs/runtimes.md).
#include "agent/runtimes/runtimes.hpp"

#include <chrono>
#include <iostream>
#include <thread>

#include "agent/ctl/ctl.hpp"
#include "common/config/config.hpp"
#include "common/db/db.hpp"

namespace aibox::ctl {
namespace {

constexpr const char* kRuntimesUsage =
    "Usage: aiboxctl runtimes COMMAND\n\n"
    "  ls [--direct]         instances, their state, port and restarts (--direct: read the\n"
    "                        database and check the processes, with the agent down)\n"
    "  show NAME             one instance: settings, placement, state and why\n"
    "  create NAME --model MODEL [--engine ENGINE] [--threads N] [--context N]\n"
    "         [--parallel N] [--kv-memory MIB] [--gpus 0,1|UUID,...] [--gpu-count N]\n"
    "         [--port N] [--memory-limit MIB] [--cpu-limit CORES] [--no-start]\n"
    "         [--arg ENGINE-ARG]...\n"
    "                        run MODEL (name[:tag] or id) with an engine (default builtin);\n"
    "                        refused before anything starts when it does not fit\n"
    "  start NAME            run it (again; clears a crash loop)\n"
    "  stop NAME             stop it: the engine's stop signal, then SIGKILL after its grace\n"
    "  restart NAME          stop and start\n"
    "  logs NAME [--lines N] [-f]\n"
    "                        the last lines it wrote (-f: keep printing new ones)\n"
    "  events NAME           its state changes, newest first\n"
    "  rm NAME               delete a stopped instance\n";

constexpr const char* kEnginesUsage =
    "Usage: aiboxctl engines\n\n"
    "The engine profiles (/usr/share/aibox/engines, overridden by /etc/aibox/engines) and\n"
    "whether each engine's binary is installed.\n";

std::string placementText(const boost::json::object& r) {
  const auto* p = r.if_contains("placement");
  if (p == nullptr || !p->is_object()) {
    return "-";
  }
  const auto& o = p->as_object();
  std::string text = "port " + field(o, "port");
  auto list = [](const boost::json::array& a) {
    std::string out;
    for (const auto& v : a) {
      out += (out.empty() ? "" : ",") +
             (v.is_string() ? std::string(v.as_string()) : json::serialize(v));
    }
    return out;
  };
  if (!o.at("gpus").as_array().empty()) {
    text += ", GPUs " + list(o.at("gpus").as_array());
  } else if (!o.at("cpus").as_array().empty()) {
    text += ", cores " + list(o.at("cpus").as_array());
  }
  return text;
}

std::string stateText(const boost::json::object& r) {
  std::string state = field(r, "state");
  if (state == "loading" && r.contains("progress")) {
    state +=
        " " + std::to_string(static_cast<int>(r.at("progress").to_number<double>() * 100)) + "%";
  }
  if (state == "backoff" && r.contains("next_try_at")) {
    state += " until " + field(r, "next_try_at");
  }
  return state;
}

void printList(const boost::json::array& list) {
  std::vector<std::vector<std::string>> rows{
      {"NAME", "MODEL", "ENGINE", "STATE", "PLACEMENT", "RESTARTS", "PID"}};
  for (const auto& v : list) {
    const auto& r = v.as_object();
    rows.push_back({field(r, "name"), field(r, "model"), field(r, "engine"), stateText(r),
                    placementText(r), field(r, "restarts"), field(r, "pid")});
  }
  printRows(rows);
}

void printRuntime(const boost::json::object& r) {
  std::vector<std::pair<std::string, std::string>> rows{
      {"Name", field(r, "name") + " (" + field(r, "id") + ")"},
      {"Model", field(r, "model")},
      {"Served as", field(r, "served_name")},
      {"Engine", field(r, "engine")},
      {"Desired", field(r, "desired")},
      {"State", stateText(r)},
      {"Reason", field(r, "reason")},
      {"Placement", placementText(r)},
      {"Settings", json::serialize(r.at("settings"))},
      {"Restarts", field(r, "restarts")},
      {"PID", field(r, "pid")},
      {"Cgroup", field(r, "cgroup")},
      {"Ready since", field(r, "ready_since")},
      {"Created", field(r, "created_at")}};
  std::erase_if(rows, [](const auto& row) { return row.second == "-"; });
  printTable(rows);
}

// Reads the create options into the request body; nullopt after a usage message.
std::optional<boost::json::object> createBody(const std::vector<std::string>& args) {
  if (args.size() < 2 || args[1].starts_with("-")) {
    usage(kRuntimesUsage, "runtimes create needs a NAME");
    return std::nullopt;
  }
  boost::json::object body{{"name", args[1]}};
  boost::json::object settings;
  struct Number {
    const char* option;
    const char* key;
  };
  constexpr Number kNumbers[] = {{"--threads", "threads"},
                                 {"--context", "context"},
                                 {"--parallel", "parallel"},
                                 {"--kv-memory", "kv_memory_mib"},
                                 {"--gpu-count", "gpu_count"},
                                 {"--port", "port"},
                                 {"--memory-limit", "memory_limit_mib"}};
  boost::json::array extra;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--no-start") {
      body["start"] = false;
      continue;
    }
    if (i + 1 >= args.size()) {
      usage(kRuntimesUsage, "option " + a + " needs a value");
      return std::nullopt;
    }
    const auto& value = args[++i];
    if (a == "--arg") {
      extra.emplace_back(value);
    } else if (a == "--model") {
      body["model"] = value;
    } else if (a == "--engine") {
      body["engine"] = value;
    } else if (a == "--gpus") {
      boost::json::array gpus;
      std::size_t start = 0;
      for (auto comma = value.find(','); start <= value.size(); comma = value.find(',', start)) {
        auto item = value.substr(start, comma == std::string::npos ? comma : comma - start);
        if (!item.empty()) {
          gpus.emplace_back(item);
        }
        if (comma == std::string::npos) {
          break;
        }
        start = comma + 1;
      }
      settings["gpus"] = std::move(gpus);
    } else if (a == "--cpu-limit") {
      try {
        settings["cpu_limit"] = std::stod(value);
      } catch (const std::exception&) {
        usage(kRuntimesUsage, "--cpu-limit must be a number of cores, e.g. 2 or 0.5");
        return std::nullopt;
      }
    } else {
      const auto* n = std::find_if(std::begin(kNumbers), std::end(kNumbers),
                                   [&a](const Number& x) { return a == x.option; });
      if (n == std::end(kNumbers)) {
        usage(kRuntimesUsage, "unknown option " + a);
        return std::nullopt;
      }
      try {
        std::size_t used = 0;
        auto v = std::stoll(value, &used);
        if (used != value.size()) {
          throw std::invalid_argument(value);
        }
        settings[n->key] = v;
      } catch (const std::exception&) {
        usage(kRuntimesUsage, a + " must be a whole number");
        return std::nullopt;
      }
    }
  }
  if (!body.contains("model")) {
    usage(kRuntimesUsage, "runtimes create needs --model MODEL");
    return std::nullopt;
  }
  if (!extra.empty()) {
    settings["extra_args"] = std::move(extra);
  }
  if (!settings.empty()) {
    body["settings"] = std::move(settings);
  }
  return body;
}

int listDirect(const Options& options) {
  config::Paths paths(options.root);
  if (!std::filesystem::exists(paths.database())) {
    std::cerr << "aiboxctl: no database at " << paths.database().string()
              << ": the box has not run yet\n";
    return kFailed;
  }
  try {
    auto db = db::Database::open(paths.database());
    boost::json::array list;
    for (const auto& v : agent::runtimes::readDirect(db, paths)) {
      list.push_back(agent::runtimes::viewJson(v));
    }
    if (options.json) {
      printJson(boost::json::object{{"runtimes", list}, {"direct", true}});
    } else {
      std::cout << "(read directly: states are the last the agent recorded, pids checked now)\n";
      printList(list);
    }
    return kOk;
  } catch (const std::exception& e) {
    std::cerr << "aiboxctl: cannot read " << paths.database().string() << ": " << e.what() << "\n";
    return kFailed;
  }
}

int followLogs(const Options& options, const std::string& path) {
  std::vector<std::string> shown;
  for (;;) {
    int code = kOk;
    auto answer = callAgent(options, "GET", path, "", code);
    if (!answer) {
      return code;
    }
    std::vector<std::string> lines;
    for (const auto& l : answer->at("lines").as_array()) {
      lines.emplace_back(l.as_string());
    }
    // The new lines follow the longest tail of what was shown that starts the new page.
    std::size_t overlap = std::min(shown.size(), lines.size());
    while (overlap > 0 && !std::equal(shown.end() - static_cast<std::ptrdiff_t>(overlap),
                                      shown.end(), lines.begin())) {
      --overlap;
    }
    for (std::size_t i = overlap; i < lines.size(); ++i) {
      std::cout << lines[i] << "\n";
    }
    std::cout.flush();
    shown = std::move(lines);
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

int runtimesCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    return usage(kRuntimesUsage, args.empty() ? "runtimes needs a command" : "");
  }
  const auto& command = args[0];
  if (command == "ls") {
    if (args.size() > 1 && args[1] == "--direct") {
      return listDirect(options);
    }
    return run(options, "GET", "/api/v1/runtimes", {},
               [](const boost::json::object& a) { printList(a.at("runtimes").as_array()); });
  }
  if (command == "create") {
    auto body = createBody(args);
    if (!body) {
      return kUsage;
    }
    return run(options, "POST", "/api/v1/runtimes", *body, printRuntime);
  }
  if (args.size() < 2) {
    return usage(kRuntimesUsage, "runtimes " + command + " needs a NAME");
  }
  std::string base = "/api/v1/runtimes/" + urlEncode(args[1]);
  if (command == "show") {
    return run(options, "GET", base, {}, printRuntime);
  }
  if (command == "start" || command == "stop" || command == "restart") {
    return run(options, "POST", base + "/" + command, {}, printRuntime);
  }
  if (command == "rm") {
    return run(options, "DELETE", base, {},
               [&args](const boost::json::object&) { std::cout << "deleted " << args[1] << "\n"; });
  }
  if (command == "events") {
    return run(options, "GET", base + "/events", {}, [](const boost::json::object& a) {
      std::vector<std::vector<std::string>> rows{{"TIME", "STATE", "MESSAGE"}};
      for (const auto& e : a.at("events").as_array()) {
        const auto& o = e.as_object();
        rows.push_back({field(o, "time"), field(o, "state"), field(o, "message")});
      }
      printRows(rows);
    });
  }
  if (command == "logs") {
    std::string lines = "100";
    bool follow = false;
    for (std::size_t i = 2; i < args.size(); ++i) {
      if (args[i] == "-f" || args[i] == "--follow") {
        follow = true;
      } else if (args[i] == "--lines" && i + 1 < args.size()) {
        lines = args[++i];
      } else {
        return usage(kRuntimesUsage, "unknown option " + args[i]);
      }
    }
    auto path = base + "/logs?lines=" + urlEncode(lines);
    if (follow && !options.json) {
      return followLogs(options, path);
    }
    return run(options, "GET", path, {}, [](const boost::json::object& a) {
      for (const auto& l : a.at("lines").as_array()) {
        std::cout << std::string(l.as_string()) << "\n";
      }
    });
  }
  return usage(kRuntimesUsage, "unknown runtimes command '" + command + "'");
}

int enginesCommand(const Options& options, const std::vector<std::string>& args) {
  if (!args.empty()) {
    return usage(kEnginesUsage,
                 args[0] == "--help" || args[0] == "-h" ? "" : "engines takes no arguments");
  }
  return run(options, "GET", "/api/v1/engines", {}, [](const boost::json::object& a) {
    std::vector<std::vector<std::string>> rows{{"ENGINE", "INSTALLED", "FORMATS", "BINARY"}};
    for (const auto& e : a.at("engines").as_array()) {
      const auto& o = e.as_object();
      std::string formats;
      for (const auto& f : o.at("formats").as_array()) {
        formats += (formats.empty() ? "" : ",") + std::string(f.as_string());
      }
      bool installed = o.at("installed").as_bool();
      rows.push_back({field(o, "name"), installed ? "yes" : "no (" + field(o, "install") + ")",
                      formats, installed ? field(o, "path") : field(o, "binary")});
    }
    printRows(rows);
  });
}

}  // namespace aibox::ctl
