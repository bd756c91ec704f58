// The license state, the clock high-water mark and the agent's license service.
#include <boost/asio/post.hpp>
#include <boost/json/array.hpp>
#include <fstream>

#include "agent/license/license.hpp"
#include "common/fs/fs.hpp"
#include "common/log/log.hpp"
#include "common/time/time.hpp"

namespace aibox::agent::license {
namespace {

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string days(std::int64_t seconds) {
  auto d = (seconds + 86399) / 86400;
  return std::to_string(d) + (d == 1 ? " day" : " days");
}

boost::json::value limitJson(const std::optional<std::int64_t>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

std::int64_t readClockFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::int64_t value = 0;
  in >> value;
  return in ? value : 0;
}

constexpr std::int64_t kReminderEvery = 86400;

}  // namespace

const char* const kSchema =
    "CREATE TABLE license_clock ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " high_water INTEGER NOT NULL);"
    "CREATE TABLE license_events ("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " message TEXT NOT NULL);";

std::string_view stateName(State state) {
  switch (state) {
    case State::valid:
      return "valid";
    case State::grace:
      return "grace";
    case State::expired:
      return "expired";
    case State::invalid:
      return "invalid";
    case State::none:
      return "none";
  }
  return "none";
}

bool allowsInstances(State state) {
  return state == State::valid || state == State::grace;
}

Evaluation evaluate(const SignedLicense* file, std::span<const PublicKey> keys, std::size_t matched,
                    std::int64_t now, std::int64_t highWater, std::int64_t tolerance) {
  Evaluation e;
  if (file == nullptr) {
    e.state = State::none;
    e.code = "none";
    e.message =
        "no license is installed: management works, but no model instance starts. "
        "Install the license file from the vendor (aiboxctl license install FILE)";
    return e;
  }
  const auto& l = file->license;
  e.matched = matched;
  e.secondsToExpiry = l.notAfter - std::max(now, highWater);
  auto invalid = [&e](std::string code, std::string message) {
    e.state = State::invalid;
    e.code = std::move(code);
    e.message = std::move(message);
    return e;
  };
  if (auto problem = verify(*file, keys)) {
    return invalid("signature", *problem);
  }
  if (static_cast<std::int64_t>(matched) < l.minMatch) {
    return invalid("fingerprint",
                   "the license is bound to another machine: " + std::to_string(matched) + " of " +
                       std::to_string(l.components.size()) + " of its parts match this box, " +
                       std::to_string(l.minMatch) +
                       " are needed. Send this box's fingerprint (aiboxctl license fingerprint) "
                       "to the vendor for a license");
  }
  if (now + tolerance < highWater) {
    return invalid("clock_rollback",
                   "the system clock (" + time::isoTime(now) +
                       ") is behind the latest time this "
                       "box has seen (" +
                       time::isoTime(highWater) +
                       "): the license counts as "
                       "expired until the clock is set right (timedatectl, or the BIOS clock)");
  }
  // A clock a little behind the mark (within the tolerance) does not win time back.
  auto t = std::max(now, highWater);
  if (t < l.notBefore) {
    e.nextChange = l.notBefore;
    return invalid("not_yet_valid",
                   "the license is valid from " + time::isoTime(l.notBefore) +
                       "; check the system clock, or ask the vendor for a license valid now");
  }
  if (t < l.notAfter) {
    e.state = State::valid;
    e.nextChange = l.notAfter;
    e.message = "valid until " + time::isoTime(l.notAfter) + " (" + days(l.notAfter - t) + ")";
    return e;
  }
  if (t < l.notAfter + l.graceSeconds) {
    e.state = State::grace;
    e.code = "grace";
    e.nextChange = l.notAfter + l.graceSeconds;
    e.message = "the license expired on " + time::isoTime(l.notAfter) +
                "; everything works for the grace period, which ends on " +
                time::isoTime(l.notAfter + l.graceSeconds) + " (" + days(e.nextChange - t) +
                "): then running models stop. Install a renewal from the vendor";
    return e;
  }
  e.state = State::expired;
  e.code = "expired";
  e.message = "the license expired on " + time::isoTime(l.notAfter) +
              " and its grace period has ended: no model instance runs. Install a renewal from "
              "the vendor (aiboxctl license install FILE)";
  return e;
}

boost::json::object licenseJson(const Status& status) {
  const auto& e = status.evaluation;
  boost::json::object out{
      {"state", stateName(e.state)},
      {"message", e.message},
      {"reason",
       e.state == State::invalid ? boost::json::value(e.code) : boost::json::value(nullptr)},
      {"instances_allowed", allowsInstances(e.state)},
      {"test_key_trusted", trustsTestKey()},
      {"clock_high_water", status.highWater > 0
                               ? boost::json::value(time::isoTime(status.highWater))
                               : boost::json::value(nullptr)}};
  auto fingerprint = fingerprintJson(status.fingerprint);
  fingerprint["gpus_pending"] = status.gpusPending;
  if (!status.file) {
    out["license"] = nullptr;
    out["entitlements"] = nullptr;
    out["seconds_to_expiry"] = nullptr;
    out["fingerprint"] = std::move(fingerprint);
    return out;
  }
  const auto& l = status.file->license;
  out["license"] =
      boost::json::object{{"id", l.id},
                          {"issuer", l.issuer},
                          {"customer", l.customer},
                          {"issued_at", time::isoTime(l.issuedAt)},
                          {"not_before", time::isoTime(l.notBefore)},
                          {"not_after", time::isoTime(l.notAfter)},
                          {"grace_days", l.graceSeconds / 86400},
                          {"grace_ends_at", time::isoTime(l.notAfter + l.graceSeconds)},
                          {"key_id", status.file->keyId}};
  boost::json::array modules;
  for (const auto& m : l.entitlements.modules) {
    modules.emplace_back(m);
  }
  out["entitlements"] =
      boost::json::object{{"max_gpus", limitJson(l.entitlements.maxGpus)},
                          {"max_instances", limitJson(l.entitlements.maxInstances)},
                          {"max_models", limitJson(l.entitlements.maxModels)},
                          {"max_concurrency", limitJson(l.entitlements.maxConcurrency)},
                          {"modules", modules},
                          {"trial", l.entitlements.trial}};
  out["seconds_to_expiry"] = e.secondsToExpiry;
  fingerprint["matched"] = e.matched;
  fingerprint["needed"] = l.minMatch;
  fingerprint["licensed"] = l.components.size();
  out["fingerprint"] = std::move(fingerprint);
  return out;
}

// --- the service ----------------------------------------------------------------------------

Service::Service(boost::asio::io_context& io, db::Worker& database, Settings settings,
                 std::filesystem::path root, Gpus gpus)
    : io_(io),
      database_(database),
      settings_(std::move(settings)),
      root_(std::move(root)),
      gpus_(std::move(gpus)),
      timer_(io) {}

std::int64_t Service::storedHighWater(db::Database& db) {
  auto row = db.prepare("SELECT high_water FROM license_clock WHERE id = 1");
  return row.step() ? row.integer(0) : 0;
}

void Service::start(std::int64_t stored) {
  std::lock_guard lock(mutex_);
  highWater_ = std::max(stored, readClockFile(settings_.clockFile));
  std::ifstream in(settings_.file, std::ios::binary);
  if (in) {
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = parseFile(text);
    if (auto* problem = std::get_if<std::string>(&parsed)) {
      fileProblem_ = "the installed license " + settings_.file.string() +
                     " cannot be read: " + *problem + ". Install the file from the vendor again";
    } else {
      file_ = std::get<SignedLicense>(std::move(parsed));
    }
  }
  if (trustsTestKey()) {
    log::warning(
        "this build trusts the test license key (AIBOX_LICENSE_TEST_KEY): it is for "
        "tests and the demo, never for a box that ships");
  }
  boost::asio::post(io_, [this] { tick(); });
}

void Service::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  timer_.cancel();
}

void Service::listen(Listener listener) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(std::move(listener));
}

Status Service::compute(std::int64_t now) {
  Status s;
  auto gpus = gpus_ ? gpus_() : std::optional<std::vector<std::string>>(std::vector<std::string>{});
  s.gpusPending = !gpus;
  s.fingerprint = readFingerprint(root_, gpus.value_or(std::vector<std::string>{}));
  if (s.gpusPending) {
    s.fingerprint.missing.push_back("gpu: NVML has not reported yet");
  }
  s.highWater = highWater_;
  s.file = file_;
  if (!fileProblem_.empty() && !file_) {
    s.evaluation.state = State::invalid;
    s.evaluation.code = "file";
    s.evaluation.message = fileProblem_;
    return s;
  }
  auto matched = file_ ? matchCount(file_->license, s.fingerprint, s.gpusPending) : 0;
  s.evaluation = evaluate(file_ ? &*file_ : nullptr, vendorKeys(), matched, now, highWater_,
                          settings_.clockTolerance);
  return s;
}

Status Service::status() {
  std::lock_guard lock(mutex_);
  return compute(unixNow());
}

void Service::tick() {
  auto now = unixNow();
  Status s;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) {
      return;
    }
    s = compute(now);
    // The mark moves forward only, and not while the clock is behind it.
    if (now > highWater_) {
      highWater_ = now;
      database_.post([now, file = settings_.clockFile](db::Database& db) {
        try {
          db.prepare(
                "INSERT INTO license_clock(id, high_water) VALUES (1, ?) "
                "ON CONFLICT(id) DO UPDATE SET high_water = MAX(high_water, excluded.high_water)")
              .bind(1, now)
              .step();
          fs::makeDirectories(file.parent_path(), 0750);
          fs::writeFileAtomic(file, std::to_string(now) + "\n", 0640);
        } catch (const std::exception& e) {
          log::error("the license clock cannot be stored", {{"error", e.what()}});
        }
      });
    }
  }
  observe(s, now);
  // Again at the next boundary (valid to grace, grace to expired), at least once a minute;
  // soon while NVML has not reported, so GPUs count as soon as they are known.
  std::int64_t wait = 60;
  if (s.evaluation.nextChange > now) {
    wait = std::min(wait, s.evaluation.nextChange - now);
  }
  if (s.gpusPending) {
    wait = std::min<std::int64_t>(wait, 2);
  }
  arm(std::max<std::int64_t>(wait, 1));
}

void Service::arm(std::int64_t seconds) {
  std::lock_guard lock(mutex_);
  if (stopped_) {
    return;
  }
  timer_.expires_after(std::chrono::seconds(seconds));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      tick();
    }
  });
}

void Service::observe(const Status& s, std::int64_t now) {
  std::vector<Event> raised;
  std::vector<Listener> listeners;
  {
    std::lock_guard lock(mutex_);
    auto state = s.evaluation.state;
    if (!lastState_ || *lastState_ != state) {
      std::string message =
          "license " + std::string(stateName(state)) + ": " + s.evaluation.message;
      if (lastState_ && allowsInstances(*lastState_) && !allowsInstances(state)) {
        message += ". Model instances may no longer run: running ones are stopped";
      }
      raised.push_back(
          {now, s.evaluation.code == "clock_rollback" ? "clock_rollback" : "state", message});
      lastState_ = state;
      lastReminder_ = now;
    } else if (state == State::grace && now - lastReminder_ >= kReminderEvery) {
      raised.push_back(
          {now, "grace_reminder", "license in its grace period: " + s.evaluation.message});
      lastReminder_ = now;
    }
    listeners = listeners_;
  }
  for (const auto& event : raised) {
    record(event);
    for (const auto& listener : listeners) {
      listener(s, event);
    }
  }
}

void Service::record(const Event& event) {
  if (event.type == "state" && event.message.starts_with("license valid")) {
    log::info(event.message, {{"event", event.type}});
  } else {
    log::warning(event.message, {{"event", event.type}});
  }
  database_.post([event](db::Database& db) {
    try {
      db.prepare("INSERT INTO license_events(time, type, message) VALUES (?, ?, ?)")
          .bind(1, event.time)
          .bind(2, event.type)
          .bind(3, event.message)
          .step();
    } catch (const std::exception& e) {
      log::error("a license event cannot be stored", {{"error", e.what()}});
    }
  });
}

std::vector<Event> Service::events(db::Database& db, int limit) {
  std::vector<Event> out;
  auto rows = db.prepare("SELECT time, type, message FROM license_events ORDER BY id DESC LIMIT ?");
  rows.bind(1, limit);
  while (rows.step()) {
    out.push_back({rows.integer(0), rows.text(1), rows.text(2)});
  }
  return out;
}

std::variant<Status, std::string> Service::install(std::string_view text) {
  auto parsed = parseFile(text);
  if (auto* problem = std::get_if<std::string>(&parsed)) {
    return *problem;
  }
  auto candidate = std::get<SignedLicense>(std::move(parsed));
  auto now = unixNow();
  Status s;
  {
    std::lock_guard lock(mutex_);
    auto saved = std::move(file_);
    auto savedProblem = std::move(fileProblem_);
    file_ = candidate;
    fileProblem_.clear();
    s = compute(now);
    auto state = s.evaluation.state;
    // An expired renewal is refused as well: installing it would gain nothing and lose the old.
    if (state != State::valid && state != State::grace) {
      file_ = std::move(saved);
      fileProblem_ = std::move(savedProblem);
      return "the license was not installed (the old one is kept): " + s.evaluation.message;
    }
    try {
      fs::makeDirectories(settings_.file.parent_path(), 0750);
      fs::writeFileAtomic(settings_.file, text, 0640);
    } catch (const std::exception& e) {
      file_ = std::move(saved);
      fileProblem_ = std::move(savedProblem);
      log::error("the license cannot be stored", {{"error", e.what()}});
      return "the license cannot be stored (the old one is kept): " + std::string(e.what());
    }
  }
  record({now, "installed",
          "license " + candidate.license.id + " for " + candidate.license.customer +
              " installed, valid until " + time::isoTime(candidate.license.notAfter)});
  observe(s, now);
  return s;
}

std::optional<Refusal> Service::refuse(Limit limit, std::int64_t wanted) {
  auto s = status();
  if (!allowsInstances(s.evaluation.state)) {
    if (limit == Limit::models) {
      return std::nullopt;  // management works without a license; nothing can run the models
    }
    return Refusal{402, "license_required", "no valid license: " + s.evaluation.message};
  }
  const auto& e = s.file->license.entitlements;
  const auto& [cap, what] = limit == Limit::gpus ? std::pair{e.maxGpus, "GPUs"}
                            : limit == Limit::instances
                                ? std::pair{e.maxInstances, "model instances"}
                                : std::pair{e.maxModels, "models"};
  if (cap && wanted > *cap) {
    return Refusal{403, "license_limit",
                   "the license allows " + std::to_string(*cap) + " " + what +
                       "; this would make " + std::to_string(wanted) +
                       ". Remove one first, or ask the vendor for a "
                       "license with more"};
  }
  return std::nullopt;
}

std::optional<std::int64_t> Service::maxConcurrency() {
  std::lock_guard lock(mutex_);
  return file_ ? file_->license.entitlements.maxConcurrency : std::nullopt;
}

bool Service::hasModule(std::string_view module) {
  auto s = status();
  if (!allowsInstances(s.evaluation.state)) {
    return false;
  }
  const auto& m = s.file->license.entitlements.modules;
  return std::find(m.begin(), m.end(), module) != m.end();
}

}  // namespace aibox::agent::license
