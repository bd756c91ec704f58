// The run: the lock, the steps in order, their JSON lines (or a view for people), and the
// exit code.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/json/array.hpp>
#include <cmath>

#include "common/config/config.hpp"
#include "common/fs/fs.hpp"
#include "common/json/json.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {
namespace {

std::string seconds(double s) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(s < 10 ? 2 : 1);
  out << s << " s";
  return out.str();
}

bool selected(const RunOptions& options, std::string_view step) {
  std::string name(step);
  return (options.only.empty() || options.only.contains(name)) && !options.skip.contains(name);
}

// Holds the provisioning lock for the run; released when the process ends, even by SIGKILL.
class Lock {
 public:
  explicit Lock(const std::filesystem::path& file) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    held_ = fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
  }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  ~Lock() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  bool held() const { return held_; }

 private:
  int fd_ = -1;
  bool held_ = false;
};

const char* describe(std::string_view step) {
  if (step == "inventory") {
    return "CPU, memory, GPUs, disks, NICs, PSUs, fans and UPSes against the SKU";
  }
  if (step == "self_tests") {
    return "storage IOPS, time sync, UPS, sensors, GPU health, engine burn-in";
  }
  if (step == "identity") {
    return "serial, device key and certificate from the factory CA";
  }
  if (step == "license") {
    return "install the license, checked against the fingerprint";
  }
  if (step == "models") {
    return "preload the models from their bundles";
  }
  if (step == "admin") {
    return "first admin, host name, NTP and network settings";
  }
  return "the signed report";
}

}  // namespace

void Reporter::start(std::string_view step) {
  if (json_) {
    out_ << json::serialize(
                boost::json::object{{"event", "start"}, {"step", step}, {"time", nowIso()}})
         << std::endl;
  } else {
    out_ << "==> " << step << ": " << describe(step) << std::endl;
  }
}

void Reporter::progress(std::string_view step, double fraction, std::string_view what) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  if (json_) {
    out_ << json::serialize(boost::json::object{{"event", "progress"},
                                                {"step", step},
                                                {"fraction", std::round(fraction * 1000) / 1000},
                                                {"detail", what}})
         << std::endl;
  } else {
    out_ << "    " << what << ": " << static_cast<int>(fraction * 100) << " %" << std::endl;
  }
}

void Reporter::end(const StepResult& result) {
  if (json_) {
    boost::json::object o{{"event", "end"}};
    for (auto& [key, value] : stepResultJson(result)) {
      o[key] = value;
    }
    out_ << json::serialize(o) << std::endl;
    return;
  }
  for (const auto& f : result.findings) {
    out_ << "    "
         << (f.ok         ? "ok      "
             : f.waivedBy ? "WAIVED  "
                          : "FAILED  ")
         << f.message << (f.waivedBy ? " (waiver: " + *f.waivedBy + ")" : "") << "\n";
  }
  out_ << "    " << outcomeName(result.outcome) << " in " << seconds(result.seconds) << ": "
       << result.message << std::endl;
}

void Reporter::line(const boost::json::object& event, const std::string& human) {
  if (json_) {
    out_ << json::serialize(event) << std::endl;
  } else {
    out_ << human << std::endl;
  }
}

int run(const Manifest& manifest, const RunOptions& options, std::ostream& out) {
  Reporter reporter(out, options.json);
  auto box = openBox(options, reporter);
  if (!box) {
    return kCannotRun;
  }
  fs::makeDirectories(box->dir, 0750);
  Lock lock(box->dir / ".lock");
  if (!lock.held()) {
    std::string message = "another aibox-provision is running on this box (" +
                          (box->dir / ".lock").string() + " is locked)";
    reporter.line({{"event", "error"}, {"code", kCannotRun}, {"message", message}},
                  "aibox-provision: " + message);
    return kCannotRun;
  }
  std::string startedAt = nowIso();
  reporter.line({{"event", "run"},
                 {"manifest", manifest.file},
                 {"sku", manifest.sku.name},
                 {"station", options.station},
                 {"agent", box->agent ? "running" : "stopped"},
                 {"time", startedAt}},
                "aibox-provision: SKU " + manifest.sku.name + " from " + manifest.file +
                    (box->agent ? " (through the running agent)" : " (agent stopped)"));
  std::vector<StepResult> results;
  bool failed = false;
  for (auto step : kSteps) {
    StepResult result;
    // The report is written at the end of every run that reaches it, unless skipped.
    if (!selected(options, step)) {
      result.step = std::string(step);
      result.outcome = Outcome::skipped;
      result.message = "not selected (--only/--skip)";
      reporter.end(result);
      results.push_back(result);
      continue;
    }
    reporter.start(step);
    auto began = std::chrono::steady_clock::now();
    auto progress = [&reporter, step](double fraction, const std::string& what) {
      reporter.progress(step, fraction, what);
    };
    try {
      // Later steps need what inventory measures (the fingerprint, the GPUs).
      if (step != "inventory" && !box->inventoryDone &&
          (step == "self_tests" || step == "license" || step == "report")) {
        inventoryStep(*box, manifest);
      }
      if (step == "inventory") {
        result = inventoryStep(*box, manifest);
      } else if (step == "self_tests") {
        result = selfTestsStep(*box, manifest, progress);
      } else if (step == "identity") {
        result = identityStep(*box, manifest);
      } else if (step == "license") {
        result = licenseStep(*box, manifest);
      } else if (step == "models") {
        result = modelsStep(*box, manifest, progress);
      } else if (step == "admin") {
        result = adminStep(*box, manifest);
      } else {
        result = reportStep(*box, manifest, results, startedAt);
      }
    } catch (const std::exception& e) {
      result.outcome = Outcome::failed;
      result.message = e.what();
    }
    result.step = std::string(step);
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    failed = failed || result.outcome == Outcome::failed;
    reporter.end(result);
    results.push_back(std::move(result));
  }
  handOver(*box);
  int code = failed ? kStepFailed : kOk;
  reporter.line({{"event", "done"},
                 {"status", failed ? "FAILED" : "PASSED"},
                 {"exit_code", code},
                 {"report", reportFile(box->paths.root()).string()}},
                std::string(failed ? "FAILED: fix what is listed and run again (done steps are "
                                     "kept)"
                                   : "PASSED: the box is provisioned") +
                    "; report: " + reportFile(box->paths.root()).string());
  return code;
}

void plan(const Manifest& manifest, const RunOptions& options, std::ostream& out) {
  Reporter reporter(out, options.json);
  int n = 0;
  for (auto step : kSteps) {
    bool runs = selected(options, step);
    std::string what = describe(step);
    if (step == "models") {
      what = std::to_string(manifest.models.size()) + " model(s) from bundles";
    } else if (step == "license" && !manifest.licenseFile && !manifest.licenseDir) {
      what = "no license in the manifest: skipped";
    }
    reporter.line(
        {{"event", "plan"}, {"step", step}, {"runs", runs}, {"what", what}},
        std::to_string(++n) + ". " + std::string(step) + (runs ? "" : " (skipped)") + ": " + what);
  }
  for (const auto& w : manifest.waivers) {
    reporter.line({{"event", "waiver"}, {"check", w.check}, {"reason", w.reason}, {"by", w.by}},
                  "   waiver: " + w.check + ": " + w.reason);
  }
}

}  // namespace aibox::provisioning
