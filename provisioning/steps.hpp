#pragma once
// Inside aibox-provision: the box being provisioned and one function per step.

#include <boost/json/value.hpp>
#include <memory>

#include "agent/ctl/agent_client.hpp"
#include "agent/license/license.hpp"
#include "agent/settings.hpp"
#include "common/db/db.hpp"
#include "hwmon/hwmon.hpp"
#include "provisioning/provision.hpp"

namespace aibox::provisioning {

// What inventory measured, for the later steps and the report.
struct Inventory {
  std::string cpuModel;
  std::int64_t cpuPackages = 0;
  std::int64_t cpuThreads = 0;
  std::int64_t memoryBytes = 0;
  struct Part {
    std::string name;
    std::string model;
    std::int64_t bytes = 0;
    std::int64_t speedMbps = 0;
  };
  std::vector<Part> disks;
  std::vector<Part> nics;
  std::vector<hwmon::Gpu> gpus;
  std::vector<hwmon::Ups> upses;
  std::vector<hwmon::Reading> readings;  // every sensor, with its status
  std::vector<std::string> psus;         // chips
  std::int64_t fans = 0;
  std::vector<std::string> problems;  // sources that could not be read
  bool simulated = false;
};
boost::json::object inventoryJson(const Inventory& inventory);

struct Box {
  Box(const RunOptions& options, agent::Settings settings);
  Box(const Box&) = delete;
  Box& operator=(const Box&) = delete;

  RunOptions options;
  agent::Settings settings;
  config::Paths paths{"/"};
  std::filesystem::path dir;  // <state>/provisioning
  // The running agent, when its socket answers.
  std::optional<ctl::AgentClient> agent;
  // The agent's database, migrated by the agent's own code (only when the agent is down).
  db::Database& database();
  // A request to the running agent; throws std::runtime_error with the agent's message unless
  // the status is 2xx.
  boost::json::value call(const std::string& method, const std::string& path,
                          const std::string& body = {});

  std::string serial;
  Inventory inventory;
  bool inventoryDone = false;
  agent::license::Fingerprint fingerprint;
  std::vector<std::string> gpuUuids() const;
  std::filesystem::path deviceKey() const { return paths.deviceKey(); }
  std::filesystem::path deviceCertificate() const { return paths.deviceCertificate(); }

 private:
  std::optional<db::Database> database_;
};

// Loads the box's settings (its aibox.conf under the root) and finds out whether the agent
// runs. Null, after telling `reporter` why, when not run as root on a real box or when the
// box's config is not usable (exit code kCannotRun).
std::unique_ptr<Box> openBox(const RunOptions& options, Reporter& reporter);

using Progress = std::function<void(double fraction, const std::string& what)>;

StepResult inventoryStep(Box& box, const Manifest& manifest);
StepResult selfTestsStep(Box& box, const Manifest& manifest, const Progress& progress);
StepResult identityStep(Box& box, const Manifest& manifest);
StepResult licenseStep(Box& box, const Manifest& manifest);
StepResult modelsStep(Box& box, const Manifest& manifest, const Progress& progress);
StepResult adminStep(Box& box, const Manifest& manifest);
StepResult reportStep(Box& box, const Manifest& manifest, const std::vector<StepResult>& done,
                      const std::string& startedAt);

// A step as the report and the JSON lines show it.
boost::json::object stepResultJson(const StepResult& result);

// Gives what this run (as root) made under /var/lib/aibox to the owner of that directory (the
// agent's user on a packaged box), so the agent can read its identity, license and report.
// Nothing changes where the directory is root's own (tests, the demo).
void handOver(const Box& box);

// Applies the manifest's waivers to a step's findings and sets its outcome.
void conclude(StepResult& result, const Manifest& manifest);
// A file's text, or nullopt.
std::optional<std::string> readText(const std::filesystem::path& file);
// The first line of `command`'s output (stdout and stderr), its exit code; no shell.
struct Command {
  int exitCode = -1;
  std::string output;
};
Command runCommand(const std::vector<std::string>& argv);
// An executable on $PATH, or nullopt.
std::optional<std::filesystem::path> findProgram(const std::string& name);
std::string nowIso();

}  // namespace aibox::provisioning
