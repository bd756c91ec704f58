// The box being provisioned: its settings, its agent (running or not) and small helpers the
// steps share.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "agent/migrations.hpp"
#include "common/time/time.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {

Box::Box(const RunOptions& runOptions, agent::Settings agentSettings)
    : options(runOptions),
      settings(std::move(agentSettings)),
      paths(settings.paths),
      dir(paths.stateDir() / "provisioning") {}

db::Database& Box::database() {
  if (!database_) {
    database_.emplace(db::Database::open(paths.database()));
    db::migrate(*database_, agent::migrations());
  }
  return *database_;
}

boost::json::value Box::call(const std::string& method, const std::string& path,
                             const std::string& body) {
  std::string problem;
  auto result = agent->request(method, path, body, problem);
  if (!result) {
    throw std::runtime_error(problem);
  }
  boost::system::error_code ec;
  auto value = boost::json::parse(result->body, ec);
  if (result->status < 200 || result->status > 299) {
    const auto* error = value.is_object() ? value.as_object().if_contains("error") : nullptr;
    const auto* message = error != nullptr && error->is_object()
                              ? error->as_object().if_contains("message")
                              : nullptr;
    throw std::runtime_error("the agent answered " + std::to_string(result->status) + " to " +
                             method + " " + path + ": " +
                             (message != nullptr && message->is_string()
                                  ? std::string(message->as_string())
                                  : result->body));
  }
  return ec ? boost::json::value(nullptr) : value;
}

std::vector<std::string> Box::gpuUuids() const {
  std::vector<std::string> out;
  for (const auto& gpu : inventory.gpus) {
    if (gpu.present && !gpu.uuid.empty()) {
      out.push_back(gpu.uuid);
    }
  }
  return out;
}

std::unique_ptr<Box> openBox(const RunOptions& options, Reporter& reporter) {
  auto refuse = [&reporter](const std::string& message) {
    reporter.line({{"event", "error"}, {"code", kCannotRun}, {"message", message}},
                  "aibox-provision: " + message);
    return nullptr;
  };
  if (options.root == "/" && ::geteuid() != 0) {
    return refuse("run as root (it writes the box's identity and database)");
  }
  std::string root = options.root.string();
  std::array<const char*, 3> argv{"aibox-provision", "--root", root.c_str()};
  std::unique_ptr<Box> box;
  try {
    box = std::make_unique<Box>(
        options, std::move(*agent::loadSettings(static_cast<int>(argv.size()), argv.data())));
  } catch (const std::exception& e) {
    return refuse(std::string("the box's config is not usable: ") + e.what());
  }
  std::string problem;
  ctl::AgentClient client(box->paths.agentSocket());
  if (std::filesystem::exists(box->paths.agentSocket())) {
    auto answer = client.request("GET", "/api/v1/system", "", problem);
    if (answer && answer->status == 200) {
      box->agent = client;
    }
  }
  return box;
}

void handOver(const Box& box) {
  struct stat state {};
  if (::geteuid() != 0 || ::stat(box.paths.stateDir().c_str(), &state) != 0 || state.st_uid == 0) {
    return;
  }
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(box.paths.stateDir(), ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat entry {};
    if (::lstat(it->path().c_str(), &entry) == 0 && entry.st_uid == 0) {
      ::lchown(it->path().c_str(), state.st_uid, state.st_gid);
    }
  }
}

void conclude(StepResult& result, const Manifest& manifest) {
  bool failed = false;
  bool waived = false;
  for (auto& finding : result.findings) {
    if (finding.ok) {
      continue;
    }
    auto waiver = std::find_if(manifest.waivers.begin(), manifest.waivers.end(),
                               [&finding](const Waiver& w) { return w.check == finding.check; });
    if (waiver != manifest.waivers.end()) {
      finding.waivedBy = waiver->reason + (waiver->by.empty() ? "" : " (" + waiver->by + ")");
      waived = true;
    } else {
      failed = true;
    }
  }
  result.outcome = failed ? Outcome::failed : waived ? Outcome::waived : Outcome::passed;
}

std::optional<std::string> readText(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Command runCommand(const std::vector<std::string>& argv) {
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) {
    return {};
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipeFds[0]);
    ::close(pipeFds[1]);
    return {};
  }
  if (pid == 0) {
    ::dup2(pipeFds[1], STDOUT_FILENO);
    ::dup2(pipeFds[1], STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipeFds[1]);
  Command out;
  std::array<char, 4096> buffer{};
  for (ssize_t n; (n = ::read(pipeFds[0], buffer.data(), buffer.size())) > 0;) {
    out.output.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(pipeFds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  out.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

std::optional<std::filesystem::path> findProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    auto candidate = std::filesystem::path(dir) / name;
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

std::string nowIso() {
  return time::isoTime(std::chrono::system_clock::now());
}

std::string_view outcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::passed:
      return "PASSED";
    case Outcome::failed:
      return "FAILED";
    case Outcome::skipped:
      return "SKIPPED";
    case Outcome::waived:
      return "WAIVED";
  }
  return "FAILED";
}

}  // namespace aibox::provisioning
