// Blobs on disk and model rows in SQLite.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <set>
#include <system_error>

#include "agent/hardware/hardware.hpp"
#include "agent/models/models.hpp"
#include "common/fs/fs.hpp"
#include "common/json/json.hpp"
#include "common/log/log.hpp"

namespace aibox::agent::models {
namespace {

namespace stdfs = std::filesystem;

void syncDirectory(const stdfs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string gib(std::uint64_t bytes) {
  std::array<char, 32> text{};
  bool large = bytes >= (1ULL << 30);
  std::snprintf(text.data(), text.size(), large ? "%.1f GiB" : "%.1f MiB",
                static_cast<double>(bytes) / static_cast<double>(large ? 1ULL << 30 : 1ULL << 20));
  return text.data();
}

constexpr std::array<std::string_view, 5> kStates{"importing", "verifying", "ready", "corrupt",
                                                  "deleting"};

State parseState(std::string_view name) {
  for (std::size_t i = 0; i < kStates.size(); ++i) {
    if (kStates[i] == name) {
      return static_cast<State>(i);
    }
  }
  return State::corrupt;
}

ModelRow readRow(db::Statement& s) {
  ModelRow m;
  m.id = s.text(0);
  m.name = s.text(1);
  m.tag = s.text(2);
  m.state = parseState(s.text(3));
  m.source = s.text(4);
  m.metadata.format = s.text(5);
  m.metadata.architecture = s.text(6);
  m.metadata.parameters = static_cast<std::uint64_t>(s.integer(7));
  m.metadata.quantization = s.text(8);
  m.metadata.contextLength = static_cast<std::uint32_t>(s.integer(9));
  m.metadata.weightsBytes = static_cast<std::uint64_t>(s.integer(10));
  m.metadata.kvCacheBytes = static_cast<std::uint64_t>(s.integer(11));
  boost::system::error_code ec;
  auto details = boost::json::parse(s.text(12), ec);
  if (!ec && details.is_object()) {
    m.metadata.details = details.as_object();
  }
  m.size = static_cast<std::uint64_t>(s.integer(13));
  m.inUse = s.integer(14);
  m.error = s.text(15);
  m.createdAt = s.text(16);
  m.updatedAt = s.text(17);
  m.verifiedAt = s.text(18);
  auto labels = boost::json::parse(s.text(19), ec);
  if (!ec && labels.is_object()) {
    for (const auto& [key, value] : labels.as_object()) {
      if (value.is_string()) {
        m.labels[std::string(key)] = std::string(value.as_string());
      }
    }
  }
  return m;
}

constexpr const char* kSelect =
    "SELECT id, name, tag, state, source, format, architecture, parameters, quantization, "
    "context_length, weights_bytes, kv_cache_bytes, details, size_bytes, in_use, error, "
    "created_at, updated_at, coalesce(verified_at, ''), labels FROM models";

void readFiles(db::Database& db, ModelRow& m) {
  auto files = db.prepare(
      "SELECT path, digest, size FROM model_files WHERE model_id = ? "
      "ORDER BY path");
  files.bind(1, m.id);
  while (files.step()) {
    m.files.push_back({files.text(0), files.text(1), static_cast<std::uint64_t>(files.integer(2))});
  }
}

}  // namespace

const char* const kSchema =
    "CREATE TABLE models ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " tag TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " format TEXT NOT NULL DEFAULT '',"
    " architecture TEXT NOT NULL DEFAULT '',"
    " parameters INTEGER NOT NULL DEFAULT 0,"
    " quantization TEXT NOT NULL DEFAULT '',"
    " context_length INTEGER NOT NULL DEFAULT 0,"
    " weights_bytes INTEGER NOT NULL DEFAULT 0,"
    " kv_cache_bytes INTEGER NOT NULL DEFAULT 0,"
    " details TEXT NOT NULL DEFAULT '{}',"
    " labels TEXT NOT NULL DEFAULT '{}',"
    " size_bytes INTEGER NOT NULL DEFAULT 0,"
    " in_use INTEGER NOT NULL DEFAULT 0,"
    " error TEXT NOT NULL DEFAULT '',"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " verified_at TEXT,"
    " UNIQUE (name, tag));"
    "CREATE TABLE model_files ("
    " model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
    " path TEXT NOT NULL,"
    " digest TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " PRIMARY KEY (model_id, path));"
    "CREATE INDEX model_files_digest ON model_files(digest);"
    "CREATE TABLE model_jobs ("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " model_id TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " request TEXT NOT NULL DEFAULT '{}',"
    " state TEXT NOT NULL,"
    " bytes_done INTEGER NOT NULL DEFAULT 0,"
    " bytes_total INTEGER NOT NULL DEFAULT 0,"
    " error TEXT NOT NULL DEFAULT '',"
    " created_at TEXT NOT NULL,"
    " finished_at TEXT);";

std::string_view stateName(State state) {
  return kStates[static_cast<std::size_t>(state)];
}

Store::Store(const config::Paths& paths, Settings settings)
    : root_(paths.modelsDir()), settings_(std::move(settings)) {
  fs::makeDirectories(root_ / "blobs", 0750);
  fs::makeDirectories(root_ / "partial", 0750);
  fs::makeDirectories(root_ / "links", 0750);
}

stdfs::path Store::blob(const std::string& digest) const {
  return root_ / "blobs" / ("sha256-" + digest);
}

stdfs::path Store::linkDir(const std::string& modelId) const {
  return root_ / "links" / modelId;
}

void Store::adopt(const stdfs::path& partial, const std::string& digest) {
  {
    std::lock_guard lock(pinMutex_);
    pinned_.insert(digest);
  }
  auto target = blob(digest);
  std::error_code ec;
  if (stdfs::exists(target, ec)) {
    stdfs::remove(partial, ec);  // the same content is stored once
    return;
  }
  ::chmod(partial.c_str(), 0440);
  stdfs::rename(partial, target);
  syncDirectory(target.parent_path());
}

void Store::unpin(const std::string& digest) {
  std::lock_guard lock(pinMutex_);
  if (auto it = pinned_.find(digest); it != pinned_.end()) {
    pinned_.erase(it);
  }
}

void Store::materialise(const std::string& modelId, const std::vector<ModelFile>& files) const {
  auto dir = linkDir(modelId);
  std::error_code ec;
  stdfs::remove_all(dir, ec);
  for (const auto& f : files) {
    auto link = dir / f.path;
    stdfs::create_directories(link.parent_path());
    stdfs::create_hard_link(blob(f.digest), link);
  }
  syncDirectory(dir);
}

void Store::collect(db::Database& db, const std::string& modelId) const {
  std::error_code ec;
  if (!modelId.empty()) {
    stdfs::remove_all(linkDir(modelId), ec);
  }
  std::set<std::string> referenced;
  auto rows = db.prepare("SELECT DISTINCT digest FROM model_files");
  while (rows.step()) {
    referenced.insert("sha256-" + rows.text(0));
  }
  {
    std::lock_guard lock(pinMutex_);
    for (const auto& digest : pinned_) {
      referenced.insert("sha256-" + digest);
    }
  }
  for (const auto& entry : stdfs::directory_iterator(root_ / "blobs", ec)) {
    if (!referenced.contains(entry.path().filename().string())) {
      stdfs::remove(entry.path(), ec);
      log::info("model blob removed: no model uses it", {{"blob", entry.path().string()}});
    }
  }
}

std::vector<std::string> Store::reconcile(db::Database& db) const {
  std::vector<std::string> done;
  std::error_code ec;
  // Partial files are removed, but for downloads that resume: an import from a local source
  // restarts from its source, one from a URL continues its partial file with a Range request.
  std::set<std::string> resuming;
  auto jobs = db.prepare(
      "SELECT id FROM model_jobs WHERE kind = 'import' AND state IN ('queued', 'running') "
      "AND (json_extract(request, '$.source') LIKE 'http://%' "
      "OR json_extract(request, '$.source') LIKE 'https://%')");
  while (jobs.step()) {
    resuming.insert(jobs.text(0));
  }
  for (const auto& entry : stdfs::directory_iterator(partialDir(), ec)) {
    auto name = entry.path().filename().string();
    if (resuming.contains(name.substr(0, name.find('-')))) {
      continue;
    }
    stdfs::remove_all(entry.path(), ec);
    done.push_back("removed partial import " + name);
  }
  auto models = listModels(db);
  for (const auto& m : models) {
    if (m.state == State::deleting) {
      db.prepare("DELETE FROM models WHERE id = ?").bind(1, m.id).step();
      done.push_back("finished deleting model " + m.name + ":" + m.tag);
      continue;
    }
    if (m.state != State::ready && m.state != State::verifying) {
      continue;
    }
    for (const auto& f : m.files) {
      auto size = stdfs::file_size(blob(f.digest), ec);
      if (ec || size != f.size) {
        std::string why = ec ? "blob of " + f.path + " is missing"
                             : "blob of " + f.path + " has " + std::to_string(size) +
                                   " bytes, expected " + std::to_string(f.size);
        setState(db, m.id, State::corrupt, why + ": import the model again");
        raiseCorrupt(db, m.name + ":" + m.tag, why);
        done.push_back("model " + m.name + ":" + m.tag + " is corrupt: " + why);
        break;
      }
    }
    if (m.state == State::verifying) {
      setState(db, m.id, State::ready);  // a verification cut short: the files were checked
    }
    if (m.metadata.format == "safetensors" && !stdfs::exists(linkDir(m.id), ec)) {
      materialise(m.id, m.files);
    }
  }
  collect(db, "");
  return done;
}

void Store::checkSpace(std::uint64_t bytes) const {
  struct statvfs st {};
  if (::statvfs(root_.c_str(), &st) != 0) {
    return;
  }
  std::uint64_t available = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  if (available < bytes + settings_.reserveBytes) {
    throw NoSpace("not enough free space: the model needs " + gib(bytes) + " plus a reserve of " +
                  gib(settings_.reserveBytes) + ", and " + root_.string() + " has " +
                  gib(available) +
                  " free; remove models (aiboxctl models rm) or lower [models] reserve_bytes");
  }
}

std::optional<ModelRow> findModel(db::Database& db, const std::string& idOrName) {
  auto colon = idOrName.find(':');
  std::string name = idOrName.substr(0, colon);
  std::string tag = colon == std::string::npos ? "latest" : idOrName.substr(colon + 1);
  auto s = db.prepare(std::string(kSelect) + " WHERE id = ?1 OR (name = ?2 AND tag = ?3)");
  s.bind(1, idOrName).bind(2, name).bind(3, tag);
  if (!s.step()) {
    return std::nullopt;
  }
  auto m = readRow(s);
  readFiles(db, m);
  return m;
}

std::vector<ModelRow> listModels(db::Database& db) {
  std::vector<ModelRow> out;
  auto s = db.prepare(std::string(kSelect) + " ORDER BY name, tag");
  while (s.step()) {
    out.push_back(readRow(s));
  }
  for (auto& m : out) {
    readFiles(db, m);
  }
  return out;
}

void raiseCorrupt(db::Database& db, const std::string& model, const std::string& why) {
  hwmon::Event e;
  e.time = std::chrono::system_clock::now();
  e.subject = "model:" + model;
  e.source = "models";
  e.severity = hwmon::Status::critical;
  e.type = "model_corrupt";
  e.message = "model " + model + " is corrupt: " + why + "; import it again";
  hardware::storeEvents(db, {e});
  log::error(e.message, {{"model", model}});
}

void Store::jobChanged(const std::string& jobId) const {
  if (listener_.job) {
    listener_.job(jobId);
  }
}

void Store::modelChanged(const ModelChange& change) const {
  if (listener_.model) {
    listener_.model(change);
  }
}

void setState(db::Database& db, const std::string& id, State state, const std::string& error) {
  db.prepare(
        "UPDATE models SET state = ?, error = ?, "
        "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ?")
      .bind(1, stateName(state))
      .bind(2, error)
      .bind(3, id)
      .step();
}

boost::json::object modelJson(const ModelRow& m) {
  boost::json::array files;
  for (const auto& f : m.files) {
    files.push_back({{"path", f.path}, {"sha256", f.digest}, {"size_bytes", f.size}});
  }
  const auto& md = m.metadata;
  boost::json::object labels;
  for (const auto& [key, value] : m.labels) {
    labels[key] = value;
  }
  return {{"id", m.id},
          {"name", m.name},
          {"tag", m.tag},
          {"state", stateName(m.state)},
          {"format", md.format},
          {"architecture", md.architecture},
          {"parameters", md.parameters},
          {"quantization", md.quantization},
          {"context_length", md.contextLength},
          {"size_bytes", m.size},
          {"memory",
           {{"weights_bytes", md.weightsBytes},
            {"kv_cache_bytes", md.kvCacheBytes},
            {"total_bytes", md.weightsBytes + md.kvCacheBytes}}},
          {"source", m.source},
          {"in_use", m.inUse},
          {"labels", std::move(labels)},
          {"error", m.error.empty() ? boost::json::value(nullptr) : boost::json::value(m.error)},
          {"files", std::move(files)},
          {"details", md.details},
          {"created_at", m.createdAt},
          {"updated_at", m.updatedAt},
          {"verified_at",
           m.verifiedAt.empty() ? boost::json::value(nullptr) : boost::json::value(m.verifiedAt)}};
}

}  // namespace aibox::agent::models
