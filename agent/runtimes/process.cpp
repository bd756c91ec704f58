#include "agent/runtimes/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "agent/runtimes/runtimes.hpp"
#include "common/fs/fs.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::runtimes {

std::uint64_t processStartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  auto close = text.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) {
      return std::stoull(field);
    }
  }
  return 0;
}

}  // namespace aibox::agent::runtimes

namespace aibox::agent::runtimes::process {
namespace {

namespace stdfs = std::filesystem;

bool writeText(const stdfs::path& file, const std::string& text) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::string readText(const stdfs::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool isCgroup2(const stdfs::path& dir) {
  struct statfs fs {};
  return ::statfs(dir.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

// The cgroup2 mount point and this process's cgroup path in it.
std::optional<stdfs::path> ownCgroup() {
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line;
  std::optional<stdfs::path> mount;
  while (std::getline(mounts, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) {
      continue;
    }
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    mount = point;
    break;
  }
  if (!mount) {
    return std::nullopt;
  }
  std::ifstream self("/proc/self/cgroup");
  while (std::getline(self, line)) {
    if (line.starts_with("0::")) {
      auto path = line.substr(3);
      if (path == "/") {
        return std::nullopt;  // the root: nothing was delegated to us
      }
      return *mount / path.substr(1);
    }
  }
  return std::nullopt;
}

void enableControllers(const stdfs::path& dir, Cgroups& out) {
  auto available = readText(dir / "cgroup.controllers");
  if (available.find("memory") != std::string::npos) {
    out.memory = writeText(dir / "cgroup.subtree_control", "+memory");
  }
  if (available.find("cpu") != std::string::npos) {
    out.cpu = writeText(dir / "cgroup.subtree_control", "+cpu");
  }
}

std::vector<pid_t> cgroupMembers(const stdfs::path& cgroup) {
  std::vector<pid_t> out;
  std::istringstream in(readText(cgroup / "cgroup.procs"));
  for (pid_t pid = 0; in >> pid;) {
    out.push_back(pid);
  }
  return out;
}

// Processes whose environment holds AIBOX_INSTANCE=<id>, or whose process group is `group`.
std::vector<pid_t> scanProc(pid_t group, const std::string& instanceId) {
  std::vector<pid_t> out;
  std::string marker = std::string(kMarker) + "=" + instanceId;
  marker.push_back('\0');
  std::error_code ec;
  for (stdfs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    pid_t pid = std::stoi(name);
    if (pid == ::getpid()) {
      continue;
    }
    if (group > 0 && ::getpgid(pid) == group) {
      out.push_back(pid);
      continue;
    }
    std::string env = readText(it->path() / "environ");
    env.push_back('\0');
    if (env.find(marker) == 0 || env.find(std::string(1, '\0') + marker) != std::string::npos) {
      // A zombie keeps its environment unreadable; one that is readable is alive.
      out.push_back(pid);
    }
  }
  return out;
}

}  // namespace

Cgroups prepareCgroups(const std::string& setting) {
  Cgroups out;
  if (setting == "off") {
    out.problem = "runtimes.cgroup is off";
    return out;
  }
  stdfs::path subtree;
  if (setting == "auto") {
    auto own = ownCgroup();
    if (!own) {
      out.problem = "the agent has no delegated cgroup v2 subtree (its cgroup is the root)";
      return out;
    }
    if (::access((*own / "cgroup.procs").c_str(), W_OK) != 0) {
      out.problem = "the agent's cgroup " + own->string() + " is not delegated to it";
      return out;
    }
    subtree = *own;
    // cgroup v2 has no processes in inner nodes: the agent moves to a leaf of its own.
    std::error_code ec;
    stdfs::create_directories(subtree / "agent", ec);
    if (ec || !writeText(subtree / "agent/cgroup.procs", "0")) {
      out.problem = "cannot move the agent into " + (subtree / "agent").string();
      return out;
    }
  } else {
    subtree = setting;
    if (!isCgroup2(subtree)) {
      out.problem = "runtimes.cgroup " + setting + " is not a cgroup v2 directory";
      return out;
    }
  }
  enableControllers(subtree, out);
  std::error_code ec;
  stdfs::create_directories(subtree / "instances", ec);
  if (ec) {
    out.problem = "cannot create " + (subtree / "instances").string() + ": " + ec.message();
    return out;
  }
  out.base = subtree / "instances";
  Cgroups inner;
  enableControllers(out.base, inner);
  out.memory = out.memory && inner.memory;
  out.cpu = out.cpu && inner.cpu;
  return out;
}

Started spawn(const Spec& spec) {
  std::vector<std::string> argvText{spec.binary.string()};
  argvText.insert(argvText.end(), spec.args.begin(), spec.args.end());
  std::vector<char*> argv;
  for (auto& a : argvText) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<std::string> envText = spec.env;
  envText.push_back(std::string(kMarker) + "=" + spec.instanceId);
  std::vector<char*> envp;
  for (auto& e : envText) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  int procsFd = -1;
  if (spec.cgroup) {
    std::error_code ec;
    stdfs::create_directories(*spec.cgroup, ec);
    if (ec) {
      throw std::runtime_error("cannot create cgroup " + spec.cgroup->string() + ": " +
                               ec.message());
    }
    if (spec.memoryLimitBytes) {
      writeText(*spec.cgroup / "memory.max", std::to_string(*spec.memoryLimitBytes));
    }
    if (spec.cpuLimit) {
      writeText(*spec.cgroup / "cpu.max",
                std::to_string(static_cast<long>(*spec.cpuLimit * 100000)) + " 100000");
    }
    procsFd = ::open((*spec.cgroup / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (procsFd < 0) {
      throw std::runtime_error("cannot open " + (*spec.cgroup / "cgroup.procs").string() + ": " +
                               std::strerror(errno));
    }
  }
  int logFd = ::open(spec.logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int report[2];
  if (logFd < 0 || nullFd < 0 || ::pipe2(report, O_CLOEXEC) != 0) {
    int e = errno;
    for (int fd : {procsFd, logFd, nullFd}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
    throw std::runtime_error("cannot open the log " + spec.logFile.string() + ": " +
                             std::strerror(e));
  }
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  for (int c : spec.cpus) {
    CPU_SET(c, &cpus);
  }

  pid_t pid = ::fork();
  if (pid == 0) {
    // The child: async-signal-safe calls only, until exec.
    auto fail = [&report](int stage) {
      int code[2] = {stage, errno};
      (void)!::write(report[1], code, sizeof(code));
      ::_exit(127);
    };
    if (procsFd >= 0 && ::write(procsFd, "0", 1) != 1) {
      fail(1);
    }
    if (::setsid() < 0) {
      fail(2);
    }
    if (::dup2(nullFd, 0) < 0 || ::dup2(logFd, 1) < 0 || ::dup2(logFd, 2) < 0) {
      fail(3);
    }
    // Nothing of the agent's (sockets, the database) reaches the engine.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (!spec.cpus.empty() && ::sched_setaffinity(0, sizeof(cpus), &cpus) != 0) {
      fail(4);
    }
    if (::chdir(spec.workDir.c_str()) != 0) {
      fail(5);
    }
    if (spec.gid && (::setgroups(0, nullptr) != 0 || ::setgid(*spec.gid) != 0)) {
      fail(6);
    }
    if (spec.uid && ::setuid(*spec.uid) != 0) {
      fail(6);
    }
    // The agent's capabilities (CAP_SETUID, CAP_KILL, ...) never reach the engine: without
    // ambient ones, exec of an ordinary binary leaves an unprivileged process none.
    (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s) {
      ::signal(s, SIG_DFL);
    }
    ::execve(argv[0], argv.data(), envp.data());
    fail(7);
  }
  int forkErrno = errno;
  for (int fd : {procsFd, logFd, nullFd, report[1]}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  if (pid < 0) {
    ::close(report[0]);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(forkErrno));
  }
  int code[2] = {0, 0};
  ssize_t got = 0;
  do {
    got = ::read(report[0], code, sizeof(code));
  } while (got < 0 && errno == EINTR);
  ::close(report[0]);
  if (got == sizeof(code)) {
    ::waitpid(pid, nullptr, 0);
    static constexpr const char* kStages[] = {"",
                                              "joining its cgroup",
                                              "starting a session",
                                              "redirecting its output",
                                              "setting its CPU affinity",
                                              "entering its directory",
                                              "dropping to the runtime user",
                                              "executing"};
    throw std::runtime_error(std::string(kStages[code[0]]) + " " + spec.binary.string() +
                             " failed: " + std::strerror(code[1]));
  }
  Started out;
  out.pid = pid;
  out.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  out.startTime = processStartTime(pid);
  if (out.pidfd < 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw std::runtime_error(std::string("pidfd_open failed: ") + std::strerror(errno));
  }
  return out;
}

bool canSwitchUser() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("CapEff:")) {
      std::uint64_t effective = std::stoull(line.substr(7), nullptr, 16);
      constexpr std::uint64_t kSetgid = 1ULL << 6;  // CAP_SETGID
      constexpr std::uint64_t kSetuid = 1ULL << 7;  // CAP_SETUID
      return (effective & (kSetgid | kSetuid)) == (kSetgid | kSetuid);
    }
  }
  return false;
}

PidFile readPidFile(const stdfs::path& file) {
  PidFile p;
  std::ifstream in(file);
  if (!(in >> p.pid >> p.startTime)) {
    return {};
  }
  return p;
}

void writePidFile(const stdfs::path& file, const PidFile& p) {
  fs::writeFileAtomic(file, std::to_string(p.pid) + " " + std::to_string(p.startTime) + "\n", 0644);
}

bool alive(const PidFile& p) {
  return p.pid > 0 && p.startTime != 0 && processStartTime(p.pid) == p.startTime;
}

int adopt(pid_t pid, std::uint64_t startTime) {
  if (pid <= 0 || startTime == 0) {
    return -1;
  }
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  // Checked after opening: a pid reused before the open has another start time.
  if (fd >= 0 && processStartTime(pid) != startTime) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string reap(int pidfd) {
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG) != 0) {
    return "exited (adopted after an agent restart: status unknown)";
  }
  if (info.si_code == CLD_EXITED) {
    return "exited with code " + std::to_string(info.si_status);
  }
  if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) {
    const char* name = ::sigabbrev_np(info.si_status);
    return std::string("killed by SIG") + (name ? name : std::to_string(info.si_status));
  }
  return "exited";
}

void signalProcess(int pidfd, int sig) {
  ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
}

std::vector<pid_t> leftovers(const std::optional<stdfs::path>& cgroup, pid_t group,
                             const std::string& instanceId) {
  std::vector<pid_t> out;
  if (cgroup) {
    out = cgroupMembers(*cgroup);
  }
  for (pid_t pid : scanProc(group, instanceId)) {
    if (std::find(out.begin(), out.end(), pid) == out.end()) {
      out.push_back(pid);
    }
  }
  // Zombies have ended; only their parent can reap them.
  std::erase_if(out, [](pid_t pid) {
    auto stat = readText("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');
    return close == std::string::npos || (close + 2 < stat.size() && stat[close + 2] == 'Z');
  });
  return out;
}

int killAll(const std::optional<stdfs::path>& cgroup, pid_t group, const std::string& instanceId) {
  if (cgroup) {
    writeText(*cgroup / "cgroup.kill", "1");
  }
  if (group > 0) {
    ::killpg(group, SIGKILL);
  }
  auto left = leftovers(cgroup, group, instanceId);
  for (pid_t pid : left) {
    ::kill(pid, SIGKILL);
  }
  return static_cast<int>(left.size());
}

void removeCgroup(const stdfs::path& cgroup) {
  if (::rmdir(cgroup.c_str()) != 0 && errno != ENOENT) {
    log::warning("cannot remove the cgroup of a stopped instance",
                 {{"cgroup", cgroup.string()}, {"error", std::strerror(errno)}});
  }
}

bool portFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Without SO_REUSEADDR: a port in TIME_WAIT still counts as taken for a moment, which errs
  // on the safe side. Any address on that port (0.0.0.0 too) makes the bind fail.
  bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return free;
}

}  // namespace aibox::agent::runtimes::process
