// `aibox-provision reset --keep-identity`: the factory reset, through the running agent (which
// restarts itself), or on the database with the agent's own code when it is stopped.
#include "agent/reset.hpp"

#include <signal.h>

#include <boost/json/serialize.hpp>
#include <thread>

#include "agent/runtimes/runtimes.hpp"
#include "common/json/json.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {
namespace {

// Instances left running by a stopped agent (it re-adopts them at start): stopped here, their
// process group first asked, then killed after 10 s.
int stopInstances(Box& box) {
  int stopped = 0;
  for (const auto& view : agent::runtimes::readDirect(box.database(), box.paths)) {
    if (view.pid <= 0) {
      continue;
    }
    ::kill(-view.pid, SIGTERM);
    for (int i = 0; i < 100 && ::kill(view.pid, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(-view.pid, SIGKILL);
    ++stopped;
  }
  return stopped;
}

}  // namespace

int reset(const std::filesystem::path& root, bool jsonOutput, std::ostream& out) {
  RunOptions options;
  options.root = root;
  options.json = jsonOutput;
  Reporter reporter(out, jsonOutput);
  auto box = openBox(options, reporter);
  if (!box) {
    return kCannotRun;
  }
  try {
    if (box->agent) {
      auto confirm = agent::resetConfirmation(box->paths);
      auto answer = box->call("POST", "/api/v1/system/factory-reset",
                              json::serialize(boost::json::object{{"confirm", confirm}}));
      auto o = answer.as_object();
      o["event"] = "reset";
      o["through"] = "agent";
      reporter.line(o, "factory reset done by the agent, which restarts now: " +
                           json::serialize(answer) + "\nthe new one-time admin password is in " +
                           std::string(answer.as_object().at("admin_password_file").as_string()));
      return kOk;
    }
    int stopped = stopInstances(*box);
    auto done = agent::factoryReset(box->database(), box->paths);
    handOver(*box);
    auto passwordFile = (box->paths.stateDir() / "initial-admin-password").string();
    reporter.line({{"event", "reset"},
                   {"through", "database"},
                   {"instances_stopped", stopped},
                   {"audit_archived", done.auditArchived},
                   {"users_removed", done.users},
                   {"tokens_removed", done.tokens},
                   {"instances_removed", done.instances},
                   {"models_removed", done.models},
                   {"config_restored", done.configRestored},
                   {"admin_password_file", passwordFile}},
                  "factory reset done (agent stopped): " + std::to_string(done.users) + " users, " +
                      std::to_string(done.tokens) + " keys and tokens, " +
                      std::to_string(done.instances) + " instances and " +
                      std::to_string(done.models) + " imported models removed, " +
                      std::to_string(done.auditArchived) +
                      " audit entries archived; identity, license and factory models kept.\n"
                      "The agent makes a new one-time admin password in " +
                      passwordFile + " when it starts.");
    return kOk;
  } catch (const std::exception& e) {
    reporter.line({{"event", "error"}, {"code", kStepFailed}, {"message", e.what()}},
                  std::string("aibox-provision: the reset failed (run it again): ") + e.what());
    return kStepFailed;
  }
}

}  // namespace aibox::provisioning
