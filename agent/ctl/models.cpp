// aiboxctl models ...: the model store (docs/cli.md, docs/models.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "agent/ctl/ctl.hpp"

namespace aibox::ctl {
namespace {

constexpr const char* kModelsUsage =
    "Usage: aiboxctl models COMMAND\n\n"
    "  ls                        every model: name, state, format, size, memory needed\n"
    "  show MODEL                one model (MODEL is NAME[:TAG] or its id) with its files\n"
    "  import SOURCE --name NAME [--tag TAG] [--sha256 HEX] [--label KEY=VALUE]... [--no-wait]\n"
    "                            copy a .gguf file, a model directory (config.json +\n"
    "                            *.safetensors), a bundle (.tar) or an http(s):// URL into\n"
    "                            the store, hashing it on the way; shows progress until it\n"
    "                            ends (--json: one JSON line per update)\n"
    "  verify MODEL [--no-wait]  re-hash every file of a model; a mismatch marks it corrupt\n"
    "  rm MODEL                  remove a model (refused while a runtime uses it)\n"
    "  export MODEL FILE         write the model as a bundle (tar: manifest and files) for\n"
    "                            another box; import it there with: models import FILE.tar\n"
    "  jobs                      imports and verifications since the agent started\n"
    "  cancel JOB                cancel an import or a verification\n";

std::string bytes(double n) {
  std::array<char, 32> text{};
  if (n >= 1024.0 * 1024 * 1024) {
    std::snprintf(text.data(), text.size(), "%.2f GiB", n / (1024.0 * 1024 * 1024));
  } else {
    std::snprintf(text.data(), text.size(), "%.1f MiB", n / (1024.0 * 1024));
  }
  return text.data();
}

double number(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_number() ? v->to_number<double>() : 0;
}

void printModels(const boost::json::object& answer) {
  std::vector<std::vector<std::string>> rows{
      {"NAME", "STATE", "FORMAT", "ARCH", "QUANT", "SIZE", "MEMORY", "ID"}};
  for (const auto& v : answer.at("models").as_array()) {
    const auto& m = v.as_object();
    rows.push_back({field(m, "name") + ":" + field(m, "tag"), field(m, "state"), field(m, "format"),
                    field(m, "architecture"), field(m, "quantization"),
                    bytes(number(m, "size_bytes")),
                    bytes(number(m.at("memory").as_object(), "total_bytes")), field(m, "id")});
  }
  printRows(rows);
}

void printModel(const boost::json::object& m) {
  const auto& memory = m.at("memory").as_object();
  printTable(
      {{"Model", field(m, "name") + ":" + field(m, "tag") + " (" + field(m, "id") + ")"},
       {"State", field(m, "state") + (m.at("error").is_null() ? "" : ": " + field(m, "error"))},
       {"Format", field(m, "format") + ", " + field(m, "architecture")},
       {"Parameters", field(m, "parameters")},
       {"Quantisation", field(m, "quantization")},
       {"Context", field(m, "context_length") + " tokens"},
       {"Size", bytes(number(m, "size_bytes"))},
       {"Memory", bytes(number(memory, "total_bytes")) + " (weights " +
                      bytes(number(memory, "weights_bytes")) + ", KV cache " +
                      bytes(number(memory, "kv_cache_bytes")) + ")"},
       {"Source", field(m, "source")},
       {"Labels", json::serialize(m.at("labels"))},
       {"Verified", field(m, "verified_at")}});
  std::vector<std::vector<std::string>> rows{{"FILE", "SIZE", "SHA-256"}};
  for (const auto& v : m.at("files").as_array()) {
    const auto& f = v.as_object();
    rows.push_back({field(f, "path"), bytes(number(f, "size_bytes")), field(f, "sha256")});
  }
  std::cout << '\n';
  printRows(rows);
}

std::string progressLine(const boost::json::object& job) {
  double done = number(job, "bytes_done");
  double total = number(job, "bytes_total");
  double fraction = total > 0 ? done / total : 0;
  int filled = static_cast<int>(fraction * 30);
  std::string bar = "[" + std::string(static_cast<std::size_t>(filled), '#') +
                    std::string(static_cast<std::size_t>(30 - filled), ' ') + "]";
  std::array<char, 160> text{};
  std::snprintf(text.data(), text.size(), "%s %3.0f%%  %s / %s  %s/s", bar.c_str(), fraction * 100,
                bytes(done).c_str(), bytes(total).c_str(),
                bytes(number(job, "bytes_per_second")).c_str());
  std::string line = text.data();
  if (const auto* eta = job.if_contains("eta_seconds"); eta != nullptr && eta->is_number()) {
    line += "  ETA " + formatDuration(static_cast<long long>(eta->to_number<double>()));
  }
  return line;
}

// Follows a job until it ends: a progress bar on a terminal, JSON lines with --json, else one
// line at the end. Exit code 0 when it succeeded.
int follow(const Options& options, const std::string& jobId) {
  bool terminal = ::isatty(STDOUT_FILENO) != 0 && !options.json;
  while (true) {
    int code = kOk;
    auto answer = callAgent(options, "GET", "/api/v1/jobs/" + urlEncode(jobId), "", code);
    if (!answer) {
      return code;
    }
    const auto& job = answer->as_object();
    std::string state = field(job, "state");
    bool ended = state != "queued" && state != "running";
    if (options.json) {
      printJson(job);
    } else if (terminal) {
      std::cout << '\r' << progressLine(job) << "\033[K" << std::flush;
    }
    if (ended) {
      if (!options.json) {
        std::cout << (terminal ? "\n" : "") << field(job, "kind") << " " << state
                  << (job.at("error").is_null() ? "" : ": " + field(job, "error")) << '\n';
      }
      return state == "succeeded" ? kOk : kFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(terminal ? 250 : 500));
  }
}

int startJob(const Options& options, const std::string& path, const boost::json::object& body,
             bool wait) {
  int code = kOk;
  auto answer = callAgent(options, "POST", path, body.empty() ? "" : json::serialize(body), code);
  if (!answer) {
    return code;
  }
  const auto& job = answer->at("job").as_object();
  if (!wait) {
    if (options.json) {
      printJson(*answer);
    } else {
      std::cout << "job " << field(job, "id") << " started (aiboxctl models jobs)\n";
    }
    return kOk;
  }
  return follow(options, std::string(job.at("id").as_string()));
}

int importModel(const Options& options, const std::vector<std::string>& args) {
  if (args.size() < 2 || args[1].starts_with("--")) {
    return usage(kModelsUsage, "models import needs a SOURCE (a .gguf file or a directory)");
  }
  // A URL goes to the agent as it is (the agent says which schemes it takes); only a local
  // path is made absolute, since the agent does not share the caller's working directory.
  const bool url = args[1].find("://") != std::string::npos;
  boost::json::object body{
      {"source", url ? args[1] : std::filesystem::absolute(args[1]).lexically_normal().string()}};
  bool wait = true;
  for (std::size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--no-wait") {
      wait = false;
    } else if (args[i] == "--label" && i + 1 < args.size() &&
               args[i + 1].find('=') != std::string::npos) {
      auto eq = args[i + 1].find('=');
      if (!body.contains("labels")) {
        body["labels"] = boost::json::object();
      }
      body["labels"].as_object()[args[i + 1].substr(0, eq)] = args[i + 1].substr(eq + 1);
      ++i;
    } else if ((args[i] == "--name" || args[i] == "--tag" || args[i] == "--sha256") &&
               i + 1 < args.size()) {
      body[args[i].substr(2)] = args[i + 1];
      ++i;
    } else {
      return usage(kModelsUsage, "bad option '" + args[i] + "'");
    }
  }
  if (!body.contains("name")) {
    return usage(kModelsUsage, "models import needs --name NAME");
  }
  return startJob(options, "/api/v1/models", body, wait);
}

// Streams the bundle into FILE.part, then renames it: a cut transfer never looks complete.
int exportModel(const Options& options, const std::string& model, const std::string& file) {
  std::filesystem::path target(file);
  auto part = target;
  part += ".part";
  std::string problem;
  std::optional<HttpResult> result;
  {
    std::ofstream out(part, std::ios::binary | std::ios::trunc);
    if (!out) {
      std::cerr << "aiboxctl: cannot write " << part.string() << '\n';
      return kFailed;
    }
    result =
        AgentClient(options.socket)
            .request("GET", "/api/v1/models/" + urlEncode(model) + "/bundle", "", problem, &out);
    out.flush();
    if (result && result->status == 200 && !out) {
      problem = "cannot write " + part.string() + " (is the disk full?)";
      result.reset();
    }
  }
  if (!result || result->status != 200) {
    std::filesystem::remove(part);
    if (!result) {
      return problem.starts_with("cannot write")
                 ? (std::cerr << "aiboxctl: " << problem << '\n', kFailed)
                 : agentDown(options, problem);
    }
    std::cerr << "aiboxctl: " << errorMessage(*result) << '\n';
    return kFailed;
  }
  std::filesystem::rename(part, target);
  auto size = std::filesystem::file_size(target);
  if (options.json) {
    std::cout << json::serialize(boost::json::object{
                     {"model", model}, {"file", target.string()}, {"size_bytes", size}})
              << '\n';
  } else {
    std::cout << "model " << model << " exported to " << target.string() << " ("
              << bytes(static_cast<double>(size)) << ")\n";
  }
  return kOk;
}

void printJobs(const boost::json::object& answer) {
  std::vector<std::vector<std::string>> rows{{"JOB", "KIND", "STATE", "DONE", "SOURCE", "ERROR"}};
  for (const auto& v : answer.at("jobs").as_array()) {
    const auto& j = v.as_object();
    double total = number(j, "bytes_total");
    std::array<char, 16> percent{};
    std::snprintf(percent.data(), percent.size(), "%.0f%%",
                  total > 0 ? 100 * number(j, "bytes_done") / total : 0);
    rows.push_back({field(j, "id"), field(j, "kind"), field(j, "state"), percent.data(),
                    field(j, "source"), field(j, "error")});
  }
  printRows(rows);
}

}  // namespace

int modelsCommand(const Options& options, const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    return usage(kModelsUsage, args.empty() ? "models needs a command" : "");
  }
  const auto& command = args[0];
  auto model = [&args]() { return "/api/v1/models/" + urlEncode(args[1]); };
  bool hasModel = args.size() >= 2 && !args[1].starts_with("--");
  if (command == "ls" && args.size() == 1) {
    return run(options, "GET", "/api/v1/models", {}, printModels);
  }
  if (command == "show" && args.size() == 2 && hasModel) {
    return run(options, "GET", model(), {}, printModel);
  }
  if (command == "import") {
    return importModel(options, args);
  }
  if (command == "verify" && hasModel && args.size() <= 3) {
    bool wait = args.size() == 2;
    if (args.size() == 3 && args[2] != "--no-wait") {
      return usage(kModelsUsage, "bad option '" + args[2] + "'");
    }
    return startJob(options, model() + "/verify", {}, wait);
  }
  if (command == "rm" && args.size() == 2 && hasModel) {
    return run(options, "DELETE", model(), {}, [&args](const boost::json::object& /*answer*/) {
      std::cout << "model " << args[1] << " removed\n";
    });
  }
  if (command == "export" && args.size() == 3 && hasModel) {
    return exportModel(options, args[1], args[2]);
  }
  if (command == "jobs" && args.size() == 1) {
    return run(options, "GET", "/api/v1/jobs", {}, printJobs);
  }
  if (command == "cancel" && args.size() == 2) {
    return run(options, "DELETE", "/api/v1/jobs/" + urlEncode(args[1]), {},
               [](const boost::json::object& job) {
                 std::cout << "job " << field(job, "id") << " is being cancelled\n";
               });
  }
  return usage(kModelsUsage, "unknown or incomplete models command '" + command + "'");
}

}  // namespace aibox::ctl
