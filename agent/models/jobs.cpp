// Import and verify jobs: each runs on a thread of its own pool, reports progress in memory,
// and writes its outcome through the database worker.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/parse.hpp>
#include <future>
#include <stdexcept>
#include <system_error>

#include "agent/models/download.hpp"
#include "agent/models/models.hpp"
#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "common/random/random.hpp"
#include "common/time/time.hpp"

namespace aibox::agent::models {
namespace {

namespace stdfs = std::filesystem;

std::string now() {
  return time::isoTime(std::chrono::system_clock::now());
}

// Runs `work` on the database worker and waits for its result (never call from the worker).
template <class Work>
auto onDatabase(db::Worker& database, Work work) {
  using Result = std::invoke_result_t<Work, db::Database&>;
  auto promise = std::make_shared<std::promise<Result>>();
  auto future = promise->get_future();
  database.post([promise, work = std::move(work)](db::Database& db) {
    try {
      if constexpr (std::is_void_v<Result>) {
        work(db);
        promise->set_value();
      } else {
        promise->set_value(work(db));
      }
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  return future.get();
}

bool inside(const stdfs::path& path, const stdfs::path& dir) {
  std::error_code ec;
  auto base = stdfs::weakly_canonical(dir, ec);
  auto rel = path.lexically_relative(base);
  return !rel.empty() && *rel.begin() != "..";
}

// The files of an import source: a file, or every regular file below a directory. Links,
// devices and other special files are refused.
std::vector<std::pair<std::string, stdfs::path>> sourceFiles(const stdfs::path& source) {
  std::vector<std::pair<std::string, stdfs::path>> files;
  auto status = stdfs::symlink_status(source);
  if (stdfs::is_regular_file(status)) {
    files.emplace_back(source.filename().string(), source);
    return files;
  }
  if (!stdfs::is_directory(status)) {
    throw std::invalid_argument("'" + source.string() + "' is not a file or a directory");
  }
  for (const auto& entry : stdfs::recursive_directory_iterator(source)) {
    auto s = entry.symlink_status();
    if (stdfs::is_directory(s)) {
      continue;
    }
    if (!stdfs::is_regular_file(s)) {
      throw std::invalid_argument("'" + entry.path().string() +
                                  "' is a link or a special file: a model directory holds "
                                  "regular files only");
    }
    files.emplace_back(entry.path().lexically_relative(source).string(), entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    throw std::invalid_argument("'" + source.string() + "' is empty");
  }
  return files;
}

// A file descriptor closed when it goes out of scope.
class Fd {
 public:
  Fd(int fd, const std::string& what) : fd_(fd) {
    if (fd_ < 0) {
      throw std::system_error(errno, std::generic_category(), what);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { ::close(fd_); }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads a local file into `writer`, checking `cancel` between blocks.
void copyLocal(const stdfs::path& path, HashingWriter& writer, const std::atomic<bool>& cancel,
               std::atomic<std::uint64_t>& done) {
  Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC), "cannot open " + path.string());
  ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  while (true) {
    if (cancel) {
      throw std::runtime_error("cancelled");
    }
    auto room = writer.buffer();
    ssize_t n = ::read(in.get(), room.data(), room.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw std::system_error(errno, std::generic_category(), "cannot read " + path.string());
    }
    if (n == 0) {
      return;
    }
    writer.commit(static_cast<std::size_t>(n));
    done += static_cast<std::uint64_t>(n);
  }
}

bool isUrl(std::string_view source) {
  return source.starts_with("http://") || source.starts_with("https://");
}

// The file name a URL's path ends with ("model.gguf" when it ends with '/').
std::string urlFileName(const std::string& url) {
  auto path = url.substr(0, url.find_first_of("?#"));
  auto name = path.substr(path.find_last_of('/') + 1);
  return name.empty() ? "model.gguf" : name;
}

bool isBundle(std::string_view source) {
  return !isUrl(source) && source.ends_with(".tar");
}

}  // namespace

struct Jobs::Job {
  std::string id;
  std::string kind;
  std::string modelId;
  std::string source;
  std::string createdAt = now();
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> total{0};
  std::atomic<bool> cancelled{false};
  std::string state = "queued";  // under Jobs::mutex_
  std::string error;
  std::string finishedAt;
};

std::vector<Jobs::SourceFile> Jobs::importFiles(const std::string& source, Job& job) {
  std::vector<SourceFile> files;
  if (isUrl(source)) {
    const auto& settings = store_.settings();
    DownloadOptions options;
    options.caBundle = settings.caBundle;
    options.proxy = settings.proxy;
    options.retries = settings.downloadRetries;
    files.push_back({urlFileName(source), [this, source, options, &job](HashingWriter& writer) {
                       if (auto size = remoteSize(source, options)) {
                         job.total = *size;
                         if (*size > writer.bytes()) {
                           store_.checkSpace(*size - writer.bytes());
                         }
                       }
                       download(source, writer, options, job.cancelled, job.done, job.total);
                     }});
    return files;
  }
  if (isBundle(source)) {
    std::shared_ptr<int> fd;
    for (const auto& f : openBundle(source, fd)) {
      files.push_back({f.path,
                       [fd, f, &job](HashingWriter& writer) {
                         copyBundleEntry(*fd, f, writer, job.cancelled, job.done);
                       },
                       f.digest});
    }
    return files;
  }
  for (const auto& [name, path] : sourceFiles(source)) {
    files.push_back({name, [path, &job](HashingWriter& writer) {
                       copyLocal(path, writer, job.cancelled, job.done);
                     }});
  }
  return files;
}

Jobs::Jobs(Store& store, db::Worker& database)
    : store_(store),
      database_(database),
      pool_(std::make_unique<boost::asio::thread_pool>(
          static_cast<std::size_t>(store.settings().importThreads))) {}

Jobs::~Jobs() {
  stopping_ = true;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, job] : jobs_) {
      job->cancelled = true;
    }
  }
  pool_->join();
}

std::shared_ptr<Jobs::Job> Jobs::add(const std::string& kind, const std::string& modelId,
                                     const std::string& source) {
  auto job = std::make_shared<Job>();
  job->id = random::hex(6);
  job->kind = kind;
  job->modelId = modelId;
  job->source = source;
  std::lock_guard lock(mutex_);
  jobs_[job->id] = job;
  return job;
}

// A local source checked: absolute, inside an import directory, existing; returns its canonical
// path.
std::string Jobs::checkLocalSource(const std::string& text, bool singleFile) const {
  stdfs::path source(text);
  if (!source.is_absolute()) {
    throw std::invalid_argument(
        "source must be an absolute path on the box, or an http:// or https:// URL");
  }
  std::error_code ec;
  auto canonical = stdfs::weakly_canonical(source, ec);
  const auto& dirs = store_.settings().importDirs;
  if (std::none_of(dirs.begin(), dirs.end(),
                   [&canonical](const stdfs::path& d) { return inside(canonical, d); })) {
    std::string list;
    for (const auto& d : dirs) {
      list += (list.empty() ? "" : ", ") + d.string();
    }
    throw std::invalid_argument("source '" + text + "' is outside the import directories (" + list +
                                "): mount the disk there, or add its directory to " +
                                "[models] import_dirs");
  }
  if (!stdfs::exists(canonical, ec)) {
    throw std::invalid_argument("source '" + text + "' does not exist");
  }
  auto files = sourceFiles(canonical);
  if (singleFile && files.size() != 1) {
    throw std::invalid_argument("sha256 checks a single-file model; this source has " +
                                std::to_string(files.size()) + " files");
  }
  return canonical.string();
}

JobView Jobs::startImport(db::Database& db, const ImportRequest& r) {
  if (!isName(r.name) || !isName(r.tag)) {
    throw std::invalid_argument(
        "name and tag must be 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or "
        "digit");
  }
  if (r.labels.size() > 32) {
    throw std::invalid_argument("a model has at most 32 labels");
  }
  for (const auto& [key, value] : r.labels) {
    if (!isName(key) || value.size() > 256) {
      throw std::invalid_argument("label '" + key +
                                  "': keys are 1 to 64 of a-z, 0-9, '.', '_' and '-', values at "
                                  "most 256 characters");
    }
  }
  if (r.sha256 && !isDigest(*r.sha256)) {
    throw std::invalid_argument("sha256 must be 64 lower-case hex digits");
  }
  std::string source = r.source;
  std::uint64_t total = 0;
  if (!isUrl(source)) {
    source = checkLocalSource(r.source, r.sha256.has_value());
    if (isBundle(source)) {
      std::shared_ptr<int> fd;
      try {
        for (const auto& f : openBundle(source, fd)) {
          total += f.size;
        }
      } catch (const std::runtime_error& e) {
        throw std::invalid_argument(e.what());  // a bad bundle is a bad request
      }
    } else {
      for (const auto& [name, path] : sourceFiles(source)) {
        total += stdfs::file_size(path);
      }
    }
    store_.checkSpace(total);
  }
  if (findModel(db, r.name + ":" + r.tag)) {
    throw Conflict("a model " + r.name + ":" + r.tag +
                   " exists already: remove it first or choose another tag");
  }
  // The job and the model show the source without credentials; the request kept to resume the
  // import after a restart holds it whole.
  auto shown = redactUrl(source);
  auto job = add("import", random::hex(6), shown);
  job->total = total;
  boost::json::object request{{"source", source}, {"name", r.name}, {"tag", r.tag}};
  if (r.sha256) {
    request["sha256"] = *r.sha256;
  }
  boost::json::object labels;
  for (const auto& [key, value] : r.labels) {
    labels[key] = value;
  }
  db.transaction([&](db::Database& d) {
    d.prepare(
         "INSERT INTO models(id, name, tag, state, source, size_bytes, created_at, "
         "updated_at, labels) VALUES (?, ?, ?, 'importing', ?, ?, ?, ?, ?)")
        .bind(1, job->modelId)
        .bind(2, r.name)
        .bind(3, r.tag)
        .bind(4, shown)
        .bind(5, static_cast<std::int64_t>(total))
        .bind(6, job->createdAt)
        .bind(7, job->createdAt)
        .bind(8, json::serialize(labels))
        .step();
    d.prepare(
         "INSERT INTO model_jobs(id, kind, model_id, source, request, state, bytes_total, "
         "created_at) VALUES (?, 'import', ?, ?, ?, 'queued', ?, ?)")
        .bind(1, job->id)
        .bind(2, job->modelId)
        .bind(3, shown)
        .bind(4, json::serialize(request))
        .bind(5, static_cast<std::int64_t>(total))
        .bind(6, job->createdAt)
        .step();
  });
  log::info("model import started", {{"job", job->id},
                                     {"model", r.name + ":" + r.tag},
                                     {"source", shown},
                                     {"bytes", std::to_string(total)}});
  auto copy = r;
  copy.source = source;
  store_.modelChanged({job->modelId, r.name, r.tag, "importing", ""});
  store_.jobChanged(job->id);
  boost::asio::post(*pool_, [this, job, copy] { runImport(job, copy); });
  return *find(job->id);
}

void Jobs::runImport(const std::shared_ptr<Job>& job, ImportRequest request) {
  {
    std::lock_guard lock(mutex_);
    job->state = "running";
    job->started = std::chrono::steady_clock::now();
  }
  store_.jobChanged(job->id);
  std::vector<stdfs::path> partials;
  std::vector<ModelFile> stored;
  // Blobs adopted by this import stay pinned until its row is committed or it has failed.
  struct Unpin {
    Store& store;
    const std::vector<ModelFile>& files;
    ~Unpin() {
      for (const auto& f : files) {
        store.unpin(f.digest);
      }
    }
  } unpin{store_, stored};
  try {
    auto files = importFiles(request.source, *job);
    for (std::size_t i = 0; i < files.size(); ++i) {
      auto partial = store_.partialDir() / (job->id + "-" + std::to_string(i));
      partials.push_back(partial);
      // A download cut by a restart continues its partial file; a local copy starts afresh.
      int flags = O_RDWR | O_CREAT | O_CLOEXEC | (isUrl(request.source) ? 0 : O_TRUNC);
      Fd out(::open(partial.c_str(), flags, 0640), "cannot create " + partial.string());
      HashingWriter writer(out.get());
      job->done += writer.continueFile();
      files[i].copy(writer);
      auto size = writer.bytes();
      auto digest = writer.finish();
      auto expected = files[i].sha256 ? files[i].sha256 : request.sha256;
      if (expected && digest != *expected) {
        throw std::runtime_error("SHA-256 mismatch for " + files[i].name + ": expected " +
                                 *expected + ", got " + digest +
                                 ": the file differs from the one published; copy it again");
      }
      store_.adopt(partial, digest);
      stored.push_back({files[i].name, digest, size});
    }
    partials.clear();
    store_.materialise(job->modelId, stored);
    auto metadata = readMetadata(stored, store_.linkDir(job->modelId));
    onDatabase(database_, [&](db::Database& db) {
      db.transaction([&](db::Database& d) {
        auto insert =
            d.prepare("INSERT INTO model_files(model_id, path, digest, size) VALUES (?, ?, ?, ?)");
        std::uint64_t total = 0;
        for (const auto& f : stored) {
          insert.bind(1, job->modelId).bind(2, f.path).bind(3, f.digest);
          insert.bind(4, static_cast<std::int64_t>(f.size)).step();
          insert.reset();
          total += f.size;
        }
        d.prepare(
             "UPDATE models SET state = 'ready', format = ?, architecture = ?, "
             "parameters = ?, quantization = ?, context_length = ?, weights_bytes = ?, "
             "kv_cache_bytes = ?, details = ?, size_bytes = ?, verified_at = ?, "
             "updated_at = ? WHERE id = ?")
            .bind(1, metadata.format)
            .bind(2, metadata.architecture)
            .bind(3, static_cast<std::int64_t>(metadata.parameters))
            .bind(4, metadata.quantization)
            .bind(5, static_cast<std::int64_t>(metadata.contextLength))
            .bind(6, static_cast<std::int64_t>(metadata.weightsBytes))
            .bind(7, static_cast<std::int64_t>(metadata.kvCacheBytes))
            .bind(8, json::serialize(metadata.details))
            .bind(9, static_cast<std::int64_t>(total))
            .bind(10, now())
            .bind(11, now())
            .bind(12, job->modelId)
            .step();
      });
    });
    store_.modelChanged({job->modelId, request.name, request.tag, "ready", ""});
    finish(job, "succeeded", "");
  } catch (const std::exception& e) {
    std::error_code ec;
    for (const auto& p : partials) {
      stdfs::remove(p, ec);
    }
    if (stopping_) {
      log::info("model import interrupted by the agent stopping; it restarts at the next start",
                {{"job", job->id}});
      return;
    }
    bool cancelled = job->cancelled.load();
    std::string error = cancelled ? "cancelled" : e.what();
    for (const auto& f : stored) {
      store_.unpin(f.digest);  // so that collect() removes what this import adopted
    }
    stored.clear();
    try {
      onDatabase(database_, [this, &job](db::Database& db) {
        db.prepare("DELETE FROM models WHERE id = ?").bind(1, job->modelId).step();
        store_.collect(db, job->modelId);
      });
    } catch (const std::exception& cleanup) {
      log::error("cannot remove a failed import", {{"job", job->id}, {"error", cleanup.what()}});
    }
    store_.modelChanged({job->modelId, request.name, request.tag, "deleted", error});
    finish(job, cancelled ? "cancelled" : "failed", error);
  }
}

JobView Jobs::startVerify(db::Database& db, const ModelRow& model) {
  if (model.state != State::ready && model.state != State::corrupt) {
    throw Conflict("model " + model.name + ":" + model.tag + " is " +
                   std::string(stateName(model.state)) + ": wait until it is ready");
  }
  auto job = add("verify", model.id, model.name + ":" + model.tag);
  for (const auto& f : model.files) {
    job->total += f.size;
  }
  setState(db, model.id, State::verifying);
  db.prepare(
        "INSERT INTO model_jobs(id, kind, model_id, source, state, bytes_total, created_at) "
        "VALUES (?, 'verify', ?, ?, 'queued', ?, ?)")
      .bind(1, job->id)
      .bind(2, model.id)
      .bind(3, job->source)
      .bind(4, static_cast<std::int64_t>(job->total.load()))
      .bind(5, job->createdAt)
      .step();
  auto files = model.files;
  ModelChange change{model.id, model.name, model.tag, "verifying", ""};
  store_.modelChanged(change);
  store_.jobChanged(job->id);
  boost::asio::post(*pool_, [this, job, files, change]() mutable {
    {
      std::lock_guard lock(mutex_);
      job->state = "running";
      job->started = std::chrono::steady_clock::now();
    }
    store_.jobChanged(job->id);
    // Every core hashes its share of the files: a model of several shards verifies in
    // about the time of its largest shard.
    std::vector<std::string> problems(files.size());
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
      for (std::size_t i = next++; i < files.size(); i = next++) {
        try {
          auto digest = hashFile(store_.blob(files[i].digest), &job->cancelled, &job->done);
          if (digest != files[i].digest) {
            problems[i] =
                files[i].path + ": SHA-256 is " + digest + ", expected " + files[i].digest;
          }
        } catch (const std::exception& e) {
          problems[i] = files[i].path + ": " + e.what();
        }
      }
    };
    {
      std::vector<std::jthread> threads;
      unsigned n = std::max(1U, std::min<unsigned>(std::thread::hardware_concurrency(),
                                                   static_cast<unsigned>(files.size())));
      for (unsigned t = 0; t < n; ++t) {
        threads.emplace_back(worker);
      }
    }
    std::string error;
    for (const auto& p : problems) {
      if (!p.empty()) {
        error += (error.empty() ? "" : "; ") + p;
      }
    }
    bool cancelled = job->cancelled.load();
    onDatabase(database_, [&](db::Database& d) {
      if (cancelled) {
        setState(d, job->modelId, State::ready);
      } else if (error.empty()) {
        setState(d, job->modelId, State::ready);
        d.prepare("UPDATE models SET verified_at = ? WHERE id = ?")
            .bind(1, now())
            .bind(2, job->modelId)
            .step();
      } else {
        setState(d, job->modelId, State::corrupt, error + ": import the model again");
        raiseCorrupt(d, job->source, error);
      }
    });
    change.state = cancelled || error.empty() ? "ready" : "corrupt";
    change.error = cancelled || error.empty() ? "" : error + ": import the model again";
    store_.modelChanged(change);
    finish(job, cancelled ? "cancelled" : error.empty() ? "succeeded" : "failed", error);
  });
  return *find(job->id);
}

void Jobs::finish(const std::shared_ptr<Job>& job, const std::string& state,
                  const std::string& error) {
  {
    std::lock_guard lock(mutex_);
    job->state = state;
    job->error = error;
    job->finishedAt = now();
  }
  (state == "succeeded" ? log::info : log::warning)(
      "model " + job->kind + " " + state + (error.empty() ? "" : ": " + error),
      {{"job", job->id}, {"model_id", job->modelId}});
  try {
    onDatabase(database_, [&job, &state, &error](db::Database& db) {
      db.prepare(
            "UPDATE model_jobs SET state = ?, error = ?, bytes_done = ?, finished_at = ? "
            "WHERE id = ?")
          .bind(1, state)
          .bind(2, error)
          .bind(3, static_cast<std::int64_t>(job->done.load()))
          .bind(4, job->finishedAt)
          .bind(5, job->id)
          .step();
    });
  } catch (const std::exception& e) {
    log::error("cannot record the end of a model job", {{"job", job->id}, {"error", e.what()}});
  }
  store_.jobChanged(job->id);
}

std::optional<JobView> Jobs::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) {
    return std::nullopt;
  }
  const auto& j = *it->second;
  JobView v{j.id, j.kind, j.state, j.modelId, j.source, j.done, j.total};
  v.error = j.error;
  v.createdAt = j.createdAt;
  v.finishedAt = j.finishedAt;
  if (j.state == "running") {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - j.started).count();
    if (seconds > 0) {
      v.bytesPerSecond = static_cast<double>(v.bytesDone) / seconds;
    }
    if (v.bytesPerSecond > 0) {
      v.etaSeconds = static_cast<double>(v.bytesTotal - std::min(v.bytesDone, v.bytesTotal)) /
                     v.bytesPerSecond;
    }
  }
  return v;
}

std::vector<JobView> Jobs::list() const {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, job] : jobs_) {
      ids.push_back(id);
    }
  }
  std::vector<JobView> out;
  for (const auto& id : ids) {
    if (auto v = find(id)) {
      out.push_back(*v);
    }
  }
  return out;
}

bool Jobs::cancel(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(id);
  if (it == jobs_.end() || (it->second->state != "queued" && it->second->state != "running")) {
    return false;
  }
  it->second->cancelled = true;
  return true;
}

void Jobs::resumeInterrupted(db::Database& db) {
  auto rows = db.prepare(
      "SELECT id, kind, model_id, source, request FROM model_jobs "
      "WHERE state IN ('queued', 'running')");
  std::vector<std::tuple<std::string, std::string, std::string, std::string, std::string>> found;
  while (rows.step()) {
    found.emplace_back(rows.text(0), rows.text(1), rows.text(2), rows.text(3), rows.text(4));
  }
  for (const auto& [id, kind, modelId, source, requestText] : found) {
    auto request = boost::json::parse(requestText).as_object();
    if (kind != "import" || !request.contains("name")) {
      db.prepare(
            "UPDATE model_jobs SET state = 'failed', error = 'interrupted by a restart' "
            "WHERE id = ?")
          .bind(1, id)
          .step();
      continue;
    }
    auto job = std::make_shared<Job>();
    job->id = id;
    job->kind = kind;
    job->modelId = modelId;
    job->source = source;
    std::error_code ec;
    try {
      if (!isUrl(std::string(request.at("source").as_string())) && !isBundle(source)) {
        for (const auto& [name, path] : sourceFiles(source)) {
          job->total += stdfs::file_size(path, ec);
        }
      }
    } catch (const std::exception& e) {
      log::warning("an interrupted model import cannot restart: " + std::string(e.what()),
                   {{"job", id}});
      db.prepare("UPDATE model_jobs SET state = 'failed', error = ? WHERE id = ?")
          .bind(1, std::string("interrupted, and its source is gone: ") + e.what())
          .bind(2, id)
          .step();
      db.prepare("DELETE FROM models WHERE id = ?").bind(1, modelId).step();
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      jobs_[id] = job;
    }
    ImportRequest r;
    r.source = std::string(request.at("source").as_string());
    r.name = std::string(request.at("name").as_string());
    r.tag = std::string(request.at("tag").as_string());
    if (request.contains("sha256")) {
      r.sha256 = std::string(request.at("sha256").as_string());
    }
    log::info("model import restarted after an interruption", {{"job", id}});
    boost::asio::post(*pool_, [this, job, r] { runImport(job, r); });
  }
}

boost::json::object jobJson(const JobView& j) {
  return {{"id", j.id},
          {"kind", j.kind},
          {"state", j.state},
          {"model_id", j.modelId},
          {"source", j.source},
          {"bytes_done", j.bytesDone},
          {"bytes_total", j.bytesTotal},
          {"bytes_per_second", j.bytesPerSecond},
          {"eta_seconds", j.etaSeconds ? boost::json::value(*j.etaSeconds) : nullptr},
          {"error", j.error.empty() ? boost::json::value(nullptr) : boost::json::value(j.error)},
          {"created_at", j.createdAt},
          {"finished_at",
           j.finishedAt.empty() ? boost::json::value(nullptr) : boost::json::value(j.finishedAt)}};
}

}  // namespace aibox::agent::models
