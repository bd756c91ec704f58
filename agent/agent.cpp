#include "agent/agent.hpp"

#include <sys/stat.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fstream>
#include <thread>
#include <vector>

#include "agent/api/api.hpp"
#include "agent/audit/audit.hpp"
#include "agent/console/console.hpp"
#include "agent/events/events.hpp"
#include "agent/hardware/hardware.hpp"
#include "agent/license/license.hpp"
#include "agent/migrations.hpp"
#include "agent/models/models.hpp"
#include "agent/runtimes/runtimes.hpp"
#include "agent/security/security.hpp"
#include "agent/systemd.hpp"
#include "aibox_build_info.hpp"
#include "common/db/db.hpp"
#include "common/fs/fs.hpp"
#include "common/http/server.hpp"
#include "common/http/tls.hpp"
#include "common/log/log.hpp"

namespace aibox::agent {
namespace {

void prepareDirectories(const config::Paths& paths) {
  fs::makeDirectories(paths.stateDir(), 0750);
  fs::makeDirectories(paths.identityDir(), 0700);
  fs::makeDirectories(paths.runDir(), 0755);
}

// The first line of a small file, when there is one.
std::optional<std::string> firstLine(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  if (in && std::getline(in, line) && !line.empty()) {
    return line;
  }
  return std::nullopt;
}

db::Database openDatabase(const config::Paths& paths) {
  auto database = db::Database::open(paths.database());
  int applied = db::migrate(database, migrations());
  if (applied > 0) {
    log::info("database migrated",
              {{"applied", std::to_string(applied)},
               {"schema_version", std::to_string(db::schemaVersion(database))}});
  }
  database
      .prepare(
          "INSERT INTO agent_starts(started_at, version, build_id) "
          "VALUES (strftime('%Y-%m-%dT%H:%M:%SZ','now'), ?, ?)")
      .bind(1, build::kVersion)
      .bind(2, build::kBuildId)
      .step();
  return database;
}

}  // namespace

int run(const Settings& settings) {
  log::setLevel(settings.logLevel);
  ::umask(027);
  api::AgentInfo info;
  info.paths = settings.paths;
  info.startedAt = std::chrono::system_clock::now();
  info.startedSteady = std::chrono::steady_clock::now();

  boost::asio::io_context io(settings.threads);
  http::Router router;
  http::HttpMetrics metrics;
  ServiceManager serviceManager(io);
  security::Security security(settings.security);
  std::unique_ptr<db::Worker> database;
  std::unique_ptr<api::Services> services;
  std::unique_ptr<audit::Log> auditLog;
  std::unique_ptr<http::Server> server;
  std::unique_ptr<hardware::Service> hardware;
  std::unique_ptr<models::Store> store;
  std::unique_ptr<models::Jobs> jobs;
  std::unique_ptr<license::Service> license;
  std::unique_ptr<runtimes::Supervisor> supervisor;
  console::Files console(settings.webuiDir);
  events::Hub events(io, settings.events);
  std::unique_ptr<events::Feed> feed;
  std::string listening;
  try {
    prepareDirectories(settings.paths);
    info.machineId = firstLine(settings.paths.under("/etc/machine-id"));

    // Listen first: a second agent on the same root stops here, before it touches the database.
    // Nothing is served before io.run(), so the routes can be added after.
    server = std::make_unique<http::Server>(io, router, metrics, settings.server);
    auto tls =
        settings.tls ? http::serverTlsContext({settings.tlsCertificate, settings.tlsKey}) : nullptr;
    if (tls) {
      info.tls = http::certificateInfo(settings.tlsCertificate);
    }
    auto bound = server->listenTcp(*http::parseEndpoint(settings.listen), tls);
    server->listenUnix(settings.paths.agentSocket());
    listening = "listening on " + bound.address().to_string() + ":" + std::to_string(bound.port()) +
                (tls ? " (https)" : " (http, TLS off)") + " and " +
                settings.paths.agentSocket().string();

    auto db = openDatabase(settings.paths);
    security.initialPasswordFile = settings.paths.stateDir() / "initial-admin-password";
    security::prepare(db, security);
    store = std::make_unique<models::Store>(settings.paths, settings.models);
    for (const auto& done : store->reconcile(db)) {
      log::info("model store: " + done);
    }
    auto gpus = [&hardware,
                 nvml =
                     std::find(settings.hardware.sources.begin(), settings.hardware.sources.end(),
                               "nvml") !=
                     settings.hardware.sources.end()]() -> std::optional<std::vector<std::string>> {
      auto reports = hardware->state().reports();
      auto report = reports.find("nvml");
      if (report == reports.end()) {
        return nvml ? std::nullopt : std::optional(std::vector<std::string>{});
      }
      std::vector<std::string> uuids;
      for (const auto& gpu : report->second->gpus) {
        if (gpu.present && !gpu.uuid.empty()) {
          uuids.push_back(gpu.uuid);
        }
      }
      return uuids;
    };
    auto highWater = license::Service::storedHighWater(db);
    database = std::make_unique<db::Worker>(std::move(db));
    license = std::make_unique<license::Service>(io, *database, settings.license,
                                                 settings.paths.root(), gpus);
    license->start(highWater);
    security.sessions.onExpired([&database](std::vector<std::string> ids) {
      database->post([ids = std::move(ids)](db::Database& d) { security::deleteSessions(d, ids); });
    });
    security.onTokenUsed = [&database](const std::string& id, security::Clock::time_point when) {
      database->post([id, when](db::Database& d) { security::touchToken(d, id, when); });
    };
    router.setAuthenticator(&security);
    auditLog = std::make_unique<audit::Log>(*database);
    router.setAuditor(auditLog.get());
    hardware = std::make_unique<hardware::Service>(io, *database, settings.hardware);
    jobs = std::make_unique<models::Jobs>(*store, *database);
    feed = std::make_unique<events::Feed>(io, events, *jobs);
    store->listen(feed->modelsListener());
    hardware->listen(feed->hardwareListener());
    license->listen([&events](const license::Status& status, const license::Event& event) {
      events.publish("license", "license:read",
                     boost::json::object{{"state", license::stateName(status.evaluation.state)},
                                         {"type", event.type},
                                         {"message", event.message}});
    });
    database->post([&jobs](db::Database& d) { jobs->resumeInterrupted(d); });
    supervisor = std::make_unique<runtimes::Supervisor>(
        io, *database, settings.runtimes,
        runtimes::Supervisor::Context{
            hardware->state(), *store, *license,
            [&events](const runtimes::Event& event, const runtimes::View& view) {
              auto data = runtimes::eventJson(event);
              data["runtime"] = runtimes::viewJson(view);
              events.publish("runtime", "runtime:read", data);
            }});
    license->listen([&supervisor](const license::Status& status, const license::Event& event) {
      auto state = status.evaluation.state;
      if (state != license::State::valid && state != license::State::grace) {
        supervisor->licenseEnded(event.message);
      }
    });
    // Re-adoption and the first starts read processes and fork: not on the event loop.
    database->post([&supervisor](db::Database& d) {
      supervisor->load(d);
      supervisor->start();
    });
    if (!std::filesystem::is_directory(settings.webuiDir)) {
      log::warning("the web console is not served: " + settings.webuiDir.string() +
                   " is not a directory (set server.webui_dir)");
    }
    services = std::make_unique<api::Services>(
        api::Services{info, *database, metrics, security, hardware->state(), hardware->history(),
                      *store, *jobs, console, events, *license, *supervisor, io});
    api::addRoutes(router, *services);
    hardware->start();
  } catch (const std::exception& e) {
    log::error("aibox-agent cannot start", {{"error", e.what()}});
    return 1;
  }

  auto stop = [&serviceManager, &server, &io, &events](const std::string& why) {
    log::info("stopping: draining connections", {{"reason", why}});
    serviceManager.stopping();
    events.close();  // event streams end now, so the drain does not wait for them
    server->drain([&io] { io.stop(); });
  };
  bool restart = false;
  info.restart = [&restart, &stop] {
    restart = true;
    stop("restart");
  };
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&stop](const boost::system::error_code& ec, int signal) {
    if (!ec) {
      stop("signal " + std::to_string(signal));
    }
  });
  boost::asio::post(io, [&serviceManager, &listening, &settings] {
    serviceManager.ready(listening);
    serviceManager.startWatchdog();
    log::info("aibox-agent ready", {{"version", build::kVersion},
                                    {"build_id", build::kBuildId},
                                    {"root", settings.paths.root().string()},
                                    {"status", listening}});
  });

  boost::asio::steady_timer archiveTimer(io);
  std::function<void()> archiveAudit = [&archiveTimer, &archiveAudit, &database, &settings] {
    auto dir = settings.paths.stateDir() / "audit";
    auto cutoff = audit::timeString(std::chrono::system_clock::now() -
                                    std::chrono::hours(24) * settings.auditRetentionDays);
    database->post([dir, cutoff](db::Database& db) { audit::archive(db, dir, cutoff); });
    archiveTimer.expires_after(std::chrono::hours(24));
    archiveTimer.async_wait([&archiveAudit](const boost::system::error_code& ec) {
      if (!ec) {
        archiveAudit();
      }
    });
  };
  boost::asio::post(io, archiveAudit);

  std::vector<std::jthread> extra;
  for (int i = 1; i < settings.threads; ++i) {
    extra.emplace_back([&io] { io.run(); });
  }
  io.run();
  extra.clear();
  supervisor->shutdown();  // the instances go on running: the next agent re-adopts them
  hardware->stop();
  license->stop();
  jobs.reset();  // stops imports in flight; they restart at the next start
  // Finish work in flight in dependency order: hashing posts to the database worker, whose
  // tasks use the services and the session table.
  security.hashing.join();
  database.reset();
  log::info(restart ? "aibox-agent stopped; starting again" : "aibox-agent stopped");
  return restart ? kRestart : 0;
}

}  // namespace aibox::agent
