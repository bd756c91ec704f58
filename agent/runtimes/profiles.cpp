// Engine profiles: one JSON file per engine, shipped in /usr/share/aibox/engines and replaced
// by a file of the same name in /etc/aibox/engines. docs/runtimes.md, "Engine profiles".
#include <unistd.h>

#include <array>
#include <boost/json/parse.hpp>
#include <fstream>
#include <sstream>

#include "agent/runtimes/runtimes.hpp"

namespace aibox::agent::runtimes {
namespace {

struct SignalName {
  std::string_view name;
  int number;
};
constexpr std::array kSignals{SignalName{"SIGTERM", SIGTERM}, SignalName{"SIGINT", SIGINT},
                              SignalName{"SIGQUIT", SIGQUIT}, SignalName{"SIGHUP", SIGHUP},
                              SignalName{"SIGUSR1", SIGUSR1}, SignalName{"SIGKILL", SIGKILL}};

std::optional<std::vector<std::string>> strings(const boost::json::value& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.emplace_back(v.as_string());
    return out;
  }
  if (!v.is_array()) {
    return std::nullopt;
  }
  for (const auto& item : v.as_array()) {
    if (!item.is_string()) {
      return std::nullopt;
    }
    out.emplace_back(item.as_string());
  }
  return out;
}

std::optional<std::filesystem::path> findBinary(const std::string& binary,
                                                const std::vector<std::filesystem::path>& path) {
  if (binary.find('/') != std::string::npos) {
    return ::access(binary.c_str(), X_OK) == 0 ? std::optional<std::filesystem::path>(binary)
                                               : std::nullopt;
  }
  for (const auto& dir : path) {
    auto candidate = dir / binary;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

}  // namespace

std::variant<Profile, std::string> parseProfile(std::string_view text, const std::string& name) {
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  if (ec || !value.is_object()) {
    return "not a JSON object" + (ec ? ": " + ec.message() : std::string());
  }
  const auto& o = value.as_object();
  Profile p;
  p.name = name;
  auto text_ = [&o](std::string_view key, std::string& out, bool required) -> bool {
    const auto* v = o.if_contains(key);
    if (v == nullptr) {
      return !required;
    }
    if (!v->is_string()) {
      return false;
    }
    out = std::string(v->as_string());
    return true;
  };
  if (!text_("binary", p.binary, true) || p.binary.empty()) {
    return "field 'binary' must be the engine's executable";
  }
  if (!text_("description", p.description, false) || !text_("install", p.install, false) ||
      !text_("metrics_path", p.metricsPath, false)) {
    return "fields 'description', 'install' and 'metrics_path' must be strings";
  }
  const auto* formats = o.if_contains("formats");
  auto formatList = formats ? strings(*formats) : std::nullopt;
  if (!formatList || formatList->empty()) {
    return "field 'formats' must list gguf and/or safetensors";
  }
  for (const auto& f : *formatList) {
    if (f != "gguf" && f != "safetensors") {
      return "field 'formats': '" + f + "' is not gguf or safetensors";
    }
  }
  p.formats = *formatList;
  const auto* args = o.if_contains("args");
  if (args == nullptr || !args->is_array()) {
    return "field 'args' must be an array of strings and arrays of strings";
  }
  for (const auto& a : args->as_array()) {
    auto group = strings(a);
    if (!group) {
      return "field 'args' must be an array of strings and arrays of strings";
    }
    p.args.push_back(std::move(*group));
  }
  if (const auto* env = o.if_contains("env")) {
    if (!env->is_object()) {
      return "field 'env' must be an object of strings";
    }
    for (const auto& [key, v] : env->as_object()) {
      if (!v.is_string()) {
        return "field 'env': '" + std::string(key) + "' must be a string";
      }
      p.env[std::string(key)] = std::string(v.as_string());
    }
  }
  if (const auto* ready = o.if_contains("ready")) {
    if (!ready->is_object()) {
      return "field 'ready' must be {\"http\": PATH, \"status\": CODE} or {\"notify\": true}";
    }
    const auto& r = ready->as_object();
    if (const auto* notify = r.if_contains("notify")) {
      if (!notify->is_bool()) {
        return "field 'ready.notify' must be true or false";
      }
      p.readyNotify = notify->as_bool();
      if (p.readyNotify && !r.contains("http")) {
        p.healthPath.clear();  // no HTTP check: liveness is the process itself
      }
    }
    if (const auto* path = r.if_contains("http")) {
      if (!path->is_string() || !path->as_string().starts_with("/")) {
        return "field 'ready.http' must be a path such as /health";
      }
      p.healthPath = std::string(path->as_string());
    }
    if (const auto* status = r.if_contains("status")) {
      if (!status->is_int64() || status->as_int64() < 100 || status->as_int64() > 599) {
        return "field 'ready.status' must be an HTTP status";
      }
      p.healthStatus = static_cast<int>(status->as_int64());
    }
  }
  if (const auto* stop = o.if_contains("stop_signal")) {
    auto it = std::find_if(kSignals.begin(), kSignals.end(), [stop](const SignalName& s) {
      return stop->is_string() && stop->as_string() == s.name;
    });
    if (it == kSignals.end()) {
      return "field 'stop_signal' must be SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 or SIGKILL";
    }
    p.stopSignal = it->number;
  }
  if (const auto* grace = o.if_contains("stop_grace_s")) {
    if (!grace->is_int64() || grace->as_int64() < 0 || grace->as_int64() > 3600) {
      return "field 'stop_grace_s' must be seconds between 0 and 3600";
    }
    p.stopGrace = std::chrono::seconds(grace->as_int64());
  }
  if (const auto* gpus = o.if_contains("gpus")) {
    if (!gpus->is_bool()) {
      return "field 'gpus' must be true or false";
    }
    p.gpus = gpus->as_bool();
  }
  return p;
}

std::map<std::string, Profile> loadProfiles(const Settings& settings,
                                            std::vector<std::string>& problems) {
  std::map<std::string, std::filesystem::path> files;
  for (const auto& dir : {settings.shippedProfiles, settings.overrideProfiles}) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".json") {
        files[it->path().stem().string()] = it->path();
      }
    }
  }
  std::map<std::string, Profile> out;
  for (const auto& [name, file] : files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = parseProfile(text.str(), name);
    if (auto* problem = std::get_if<std::string>(&parsed)) {
      problems.push_back(file.string() + ": " + *problem);
      continue;
    }
    auto profile = std::get<Profile>(std::move(parsed));
    profile.file = file;
    profile.resolved = findBinary(profile.binary, settings.enginePath);
    out.emplace(name, std::move(profile));
  }
  return out;
}

}  // namespace aibox::agent::runtimes
