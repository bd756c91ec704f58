// Step 5, models: the preloaded models, from bundles whose digests are checked first, through
// the model store's import (the agent's, over its socket; else the store's own jobs on the
// database). Each is labelled origin=factory, which a factory reset keeps.
#include <boost/json/parse.hpp>
#include <future>
#include <thread>

#include "agent/models/models.hpp"
#include "common/json/json.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {
namespace {

namespace models = agent::models;

struct Found {
  std::string state;
  std::string bundle;  // the label: the bundle's digest it came from
};

std::optional<Found> findRunning(Box& box, const Preload& p) {
  auto answer = box.call("GET", "/api/v1/models");
  for (const auto& m : answer.as_object().at("models").as_array()) {
    const auto& o = m.as_object();
    if (o.at("name") == boost::json::value(p.name) && o.at("tag") == boost::json::value(p.tag)) {
      const auto* labels = o.if_contains("labels");
      const auto* bundle =
          labels != nullptr ? labels->as_object().if_contains("factory_bundle") : nullptr;
      return Found{std::string(o.at("state").as_string()),
                   bundle != nullptr ? std::string(bundle->as_string()) : std::string()};
    }
  }
  return std::nullopt;
}

std::optional<Found> findLocal(Box& box, const Preload& p) {
  auto row = models::findModel(box.database(), p.name + ":" + p.tag);
  if (!row || row->name != p.name) {
    return std::nullopt;
  }
  auto label = row->labels.find("factory_bundle");
  return Found{std::string(models::stateName(row->state)),
               label != row->labels.end() ? label->second : std::string()};
}

// Runs the import through the running agent and follows its job.
void importRunning(Box& box, const Preload& p, const std::optional<Found>& found,
                   const Progress& progress) {
  std::string jobId;
  if (found && found->state == "importing") {  // an import the agent resumed
    auto jobs = box.call("GET", "/api/v1/jobs");
    for (const auto& j : jobs.as_object().at("jobs").as_array()) {
      const auto& o = j.as_object();
      if (o.at("source") == boost::json::value(p.bundle.string()) &&
          (o.at("state") == boost::json::value("running") ||
           o.at("state") == boost::json::value("queued"))) {
        jobId = std::string(o.at("id").as_string());
      }
    }
  }
  if (jobId.empty()) {
    boost::json::object request{{"source", p.bundle.string()},
                                {"name", p.name},
                                {"tag", p.tag},
                                {"labels", {{"origin", "factory"}, {"factory_bundle", p.sha256}}}};
    auto answer = box.call("POST", "/api/v1/models", json::serialize(request));
    jobId = std::string(answer.as_object().at("job").as_object().at("id").as_string());
  }
  for (;;) {
    auto job = box.call("GET", "/api/v1/jobs/" + jobId).as_object();
    std::string state(job.at("state").as_string());
    if (state == "succeeded") {
      return;
    }
    if (state == "failed" || state == "cancelled") {
      throw std::runtime_error("the import of " + p.bundle.string() + " " + state + ": " +
                               std::string(job.at("error").as_string()));
    }
    auto total = job.at("bytes_total").to_number<double>();
    if (total > 0) {
      progress(job.at("bytes_done").to_number<double>() / total,
               "importing " + p.name + ":" + p.tag);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Runs the import with the store's own jobs on the database (the agent is down).
void importLocal(Box& box, const Preload& p, const Progress& progress) {
  box.database();  // migrated
  auto settings = box.settings.models;
  settings.importDirs.push_back(p.bundle.parent_path());
  models::Store store(box.paths, settings);
  db::Worker worker(db::Database::open(box.paths.database()));
  models::Jobs jobs(store, worker);
  std::promise<std::string> started;
  worker.post([&](db::Database& db) {
    try {
      // As the agent starts: partial files of no job go, interrupted imports resume.
      store.reconcile(db);
      jobs.resumeInterrupted(db);
      for (const auto& job : jobs.list()) {
        if (job.source == p.bundle.string() && (job.state == "running" || job.state == "queued")) {
          started.set_value(job.id);
          return;
        }
      }
      models::ImportRequest request;
      request.source = p.bundle.string();
      request.name = p.name;
      request.tag = p.tag;
      request.labels = {{"origin", "factory"}, {"factory_bundle", p.sha256}};
      started.set_value(jobs.startImport(db, request).id);
    } catch (...) {
      started.set_exception(std::current_exception());
    }
  });
  std::string id = started.get_future().get();
  for (;;) {
    auto job = jobs.find(id);
    if (job && job->state == "succeeded") {
      return;
    }
    if (!job || job->state == "failed" || job->state == "cancelled") {
      throw std::runtime_error("the import of " + p.bundle.string() +
                               " failed: " + (job ? job->error : std::string("the job is gone")));
    }
    if (job->bytesTotal > 0) {
      progress(static_cast<double>(job->bytesDone) / static_cast<double>(job->bytesTotal),
               "importing " + p.name + ":" + p.tag);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

StepResult modelsStep(Box& box, const Manifest& manifest, const Progress& progress) {
  StepResult r;
  if (manifest.models.empty()) {
    r.outcome = Outcome::skipped;
    r.message = "no models to preload in the manifest";
    return r;
  }
  int imported = 0;
  for (const auto& p : manifest.models) {
    std::string id = p.name + ":" + p.tag;
    try {
      auto found = box.agent ? findRunning(box, p) : findLocal(box, p);
      if (found && found->state == "ready" && found->bundle == p.sha256) {
        r.findings.push_back({"models", true, id + ": already present"});
        continue;
      }
      if (found && found->bundle != p.sha256) {
        r.findings.push_back({"models", false,
                              id + ": the box has another model by that name (not from this "
                                   "bundle); delete it or rename the preload"});
        continue;
      }
      if (!std::filesystem::is_regular_file(p.bundle)) {
        r.findings.push_back({"models", false,
                              id + ": the bundle " + p.bundle.string() +
                                  " does not exist (is the bundle share mounted?)"});
        continue;
      }
      std::atomic<std::uint64_t> hashed{0};
      auto size = std::filesystem::file_size(p.bundle);
      std::jthread reporter([&](std::stop_token stop) {
        while (!stop.stop_requested()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
          progress(size > 0 ? static_cast<double>(hashed) / static_cast<double>(size) : 1,
                   "checking the digest of " + p.bundle.filename().string());
        }
      });
      auto digest = models::hashFile(p.bundle, nullptr, &hashed);
      reporter.request_stop();
      reporter.join();
      if (digest != p.sha256) {
        r.findings.push_back({"models", false,
                              id + ": the bundle's SHA-256 is " + digest + ", the manifest says " +
                                  p.sha256 + ": it is damaged or not the bundle ordered"});
        continue;
      }
      if (box.agent) {
        importRunning(box, p, found, progress);
      } else {
        importLocal(box, p, progress);
      }
      ++imported;
      r.findings.push_back({"models", true, id + ": imported from " + p.bundle.string()});
    } catch (const std::exception& e) {
      r.findings.push_back({"models", false, id + ": " + e.what()});
    }
  }
  conclude(r, manifest);
  r.alreadyDone = imported == 0 && r.outcome == Outcome::passed;
  r.message = r.alreadyDone
                  ? "already done: " + std::to_string(manifest.models.size()) + " model(s) present"
              : r.outcome == Outcome::passed ? std::to_string(imported) + " model(s) imported"
                                             : "a model could not be preloaded";
  return r;
}

}  // namespace aibox::provisioning
