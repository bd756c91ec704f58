#pragma once
// Instance processes: started in their own session (process group) with a pidfd, in their own
// cgroup v2 when the agent has a subtree, killed with everything they started. Internal to
// agent/runtimes.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace aibox::agent::runtimes::process {

// The cgroup v2 subtree the instances go under, or none (process groups only).
struct Cgroups {
  std::filesystem::path base;  // <subtree>/instances
  bool memory = false;         // controllers enabled for the instances
  bool cpu = false;
  std::string problem;  // why there is none, for the log
};
// `setting` is runtimes.cgroup: "auto", "off" or a directory.
Cgroups prepareCgroups(const std::string& setting);

struct Spec {
  std::string instanceId;
  std::filesystem::path binary;
  std::vector<std::string> args;  // without argv[0]
  std::vector<std::string> env;   // NAME=value, the whole environment
  std::filesystem::path logFile;  // stdout and stderr, appended
  std::filesystem::path workDir;
  std::optional<std::filesystem::path> cgroup;  // created, limits written, joined before exec
  std::optional<std::int64_t> memoryLimitBytes;
  std::optional<double> cpuLimit;
  std::vector<int> cpus;  // affinity; empty: any
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
};

struct Started {
  pid_t pid = 0;
  int pidfd = -1;
  std::uint64_t startTime = 0;
};
// Forks and execs; throws std::runtime_error saying what failed (exec's errno included).
Started spawn(const Spec& spec);

// An instance's pid file, "PID STARTTIME": written before anything else learns of a start, so
// it says which process is the instance's (a pid alone may have been reused).
struct PidFile {
  pid_t pid = 0;
  std::uint64_t startTime = 0;
};
// Zeros when the file is missing or unreadable.
PidFile readPidFile(const std::filesystem::path& file);
void writePidFile(const std::filesystem::path& file, const PidFile& p);
// The process the file names still runs (same pid, same start time).
bool alive(const PidFile& p);

// A pidfd for a process that must still be the one started at `startTime`; -1 otherwise.
int adopt(pid_t pid, std::uint64_t startTime);
// The exit status when the process was our child and has ended ("exit code 3", "killed by
// SIGSEGV"); reaps it.
std::string reap(int pidfd);

void signalProcess(int pidfd, int sig);
// SIGKILL to everything of the instance: cgroup.kill, the process group, and any process
// whose environment carries the instance's marker. Returns how many processes it found.
int killAll(const std::optional<std::filesystem::path>& cgroup, pid_t group,
            const std::string& instanceId);
// Processes still alive that belong to the instance (cgroup members, group, marker).
std::vector<pid_t> leftovers(const std::optional<std::filesystem::path>& cgroup, pid_t group,
                             const std::string& instanceId);
// Removes an empty cgroup directory.
void removeCgroup(const std::filesystem::path& cgroup);

// The environment variable that marks every process of an instance (inherited by children).
inline constexpr const char* kMarker = "AIBOX_INSTANCE";

// The agent may start processes as another user: it is root, or it holds CAP_SETUID and
// CAP_SETGID (the shipped unit's ambient capabilities).
bool canSwitchUser();

// True when nothing listens on 127.0.0.1:port (it binds and closes).
bool portFree(int port);

}  // namespace aibox::agent::runtimes::process
