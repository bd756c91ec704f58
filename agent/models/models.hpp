#pragma once
// The model store: content-addressed blobs under /var/lib/aibox/models/blobs, manifests and
// jobs in SQLite, imports (local file or directory) that hash while they copy, verification
// across all cores, and the reconciliation that runs at start.

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/program_options/options_description.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/config/config.hpp"
#include "common/db/db.hpp"

namespace boost::asio {
class thread_pool;
}

namespace aibox::agent::models {

// A request that clashes with the state of the store (409).
class Conflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Not enough free space for an import (507).
class NoSpace : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Settings {
  // Where local imports may come from (USB and NFS mounts); a path elsewhere is refused, so
  // the API cannot be used to read arbitrary files of the box.
  std::vector<std::filesystem::path> importDirs{"/media", "/mnt", "/srv"};
  std::uint64_t reserveBytes = 10ULL << 30;       // free space kept on the store's disk
  int importThreads = 2;                          // imports that run at once
  std::optional<std::filesystem::path> caBundle;  // for HTTPS imports; default: the system's
  std::string proxy;                              // for HTTP(S) imports; default: $https_proxy
  int downloadRetries = 5;
};
void addSettings(boost::program_options::options_description& description, Settings& settings);

extern const char* const kSchema;

// 64 lower-case hex digits.
bool isDigest(std::string_view text);
// A model name, tag or label key: 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter
// or a digit.
bool isName(std::string_view text);

// --- hashing while copying -----------------------------------------------------------------

// Writes a stream of bytes to a file and computes its SHA-256 in the same pass: the caller's
// thread hashes each buffer while a writer thread writes the previous ones, so a copy runs at
// about the speed of the hash alone.
class HashingWriter {
 public:
  static constexpr std::size_t kBufferBytes = 4 << 20;

  explicit HashingWriter(int fd);
  HashingWriter(const HashingWriter&) = delete;
  HashingWriter& operator=(const HashingWriter&) = delete;
  ~HashingWriter();

  // A free buffer to fill, then commit() how much was filled.
  std::span<char> buffer();
  void commit(std::size_t bytes);
  // Copies `data` through the buffers (for callbacks such as libcurl's).
  void append(std::string_view data);
  // Continues a file that already holds bytes (a download cut by a restart): hashes them and
  // appends after them. Call before anything else; returns how many bytes there were.
  std::uint64_t continueFile();
  // Waits for every write, fsyncs the file and returns the hex digest. Throws
  // std::system_error when a write failed (ENOSPC: the disk is full).
  std::string finish();
  std::uint64_t bytes() const { return bytes_; }

  struct Digest;  // OpenSSL's EVP SHA-256, shared with hashFile()

 private:
  void writerLoop();
  void throwIfFailed();

  int fd_;
  std::unique_ptr<Digest> digest_;
  std::vector<std::unique_ptr<char[]>> storage_;
  std::deque<char*> free_;
  std::deque<std::pair<char*, std::size_t>> full_;
  char* current_ = nullptr;
  std::size_t filled_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t offset_ = 0;  // where the writer thread writes next
  std::mutex mutex_;
  std::condition_variable changed_;
  bool done_ = false;
  int error_ = 0;
  std::jthread writer_;
};

// SHA-256 of a whole file, read in large blocks.
std::string hashFile(const std::filesystem::path& file, const std::atomic<bool>* cancel = nullptr,
                     std::atomic<std::uint64_t>* progress = nullptr);

// --- the store -----------------------------------------------------------------------------

enum class State { importing, verifying, ready, corrupt, deleting };
std::string_view stateName(State state);

struct ModelFile {
  std::string path;    // relative: "model.gguf", "config.json", "model-00001-of-00002.safetensors"
  std::string digest;  // hex SHA-256
  std::uint64_t size = 0;
};

struct Metadata {
  std::string format;  // "gguf" or "safetensors"
  std::string architecture;
  std::uint64_t parameters = 0;
  std::string quantization;
  std::uint32_t contextLength = 0;
  std::uint64_t weightsBytes = 0;
  std::uint64_t kvCacheBytes = 0;
  boost::json::object details;  // what the header said, for GET /api/v1/models/{id}
};

// Reads the metadata of a model: a single GGUF file, or a directory (its link directory in the
// store) with config.json and *.safetensors. Throws std::runtime_error with a message for the
// admin when the files are not a model.
Metadata readMetadata(const std::vector<ModelFile>& files, const std::filesystem::path& dir);

// A model that changed state, for live views (GET /api/v1/events).
struct ModelChange {
  std::string id;
  std::string name;
  std::string tag;
  std::string state;  // a State's name, or "deleted" once the model is gone
  std::string error;
};

// Told of changes, on the thread that made them (after they are committed); must not block.
struct Listener {
  std::function<void(const std::string& jobId)> job;  // a job was added or changed state
  std::function<void(const ModelChange& change)> model;
};

class Store {
 public:
  Store(const config::Paths& paths, Settings settings);

  // Before any job starts.
  void listen(Listener listener) { listener_ = std::move(listener); }
  void jobChanged(const std::string& jobId) const;
  void modelChanged(const ModelChange& change) const;

  const Settings& settings() const { return settings_; }
  std::filesystem::path blob(const std::string& digest) const;
  std::filesystem::path partialDir() const { return root_ / "partial"; }
  // The directory of hard links an engine opens for a directory model.
  std::filesystem::path linkDir(const std::string& modelId) const;

  // Moves a finished, fsynced partial file into the blobs (or drops it when the same content
  // is already stored) and fsyncs the directory. The blob stays pinned (collect() keeps it)
  // until unpin(): an import's blobs are not referenced by a row until the import commits.
  void adopt(const std::filesystem::path& partial, const std::string& digest);
  void unpin(const std::string& digest);
  // Makes the link directory of a model.
  void materialise(const std::string& modelId, const std::vector<ModelFile>& files) const;
  // Removes the blobs no model references, and the link directory of `modelId`.
  void collect(db::Database& db, const std::string& modelId) const;

  // Runs once at start: partial files of no running job and unreferenced blobs are removed;
  // a ready model whose blob is missing or of the wrong size becomes corrupt. Returns what it
  // did, for the log.
  std::vector<std::string> reconcile(db::Database& db) const;

  // Free space check before an import of `bytes`; throws NoSpace saying what to do.
  void checkSpace(std::uint64_t bytes) const;

 private:
  std::filesystem::path root_;
  Settings settings_;
  Listener listener_;
  mutable std::mutex pinMutex_;
  std::multiset<std::string> pinned_;
};

// Database rows.
struct ModelRow {
  std::string id;
  std::string name;
  std::string tag;
  State state = State::importing;
  std::string source;
  Metadata metadata;
  std::vector<ModelFile> files;
  std::uint64_t size = 0;
  std::int64_t inUse = 0;
  std::string error;
  std::string createdAt;
  std::string updatedAt;
  std::string verifiedAt;
  std::map<std::string, std::string> labels;
};
std::optional<ModelRow> findModel(db::Database& db, const std::string& idOrName);
std::vector<ModelRow> listModels(db::Database& db);
boost::json::object modelJson(const ModelRow& model);
void setState(db::Database& db, const std::string& id, State state, const std::string& error = {});
// Records a hardware-style event (GET /api/v1/hardware/events) and logs it.
void raiseCorrupt(db::Database& db, const std::string& model, const std::string& why);

// --- bundles (tar: manifest.json, then blobs/sha256-<hex>) --------------------------------

std::uint64_t bundleSize(const ModelRow& model);
// The bundle's bytes, piece by piece (the signature of http::BodySource); blocks on disk reads.
std::function<bool(std::string&, std::size_t)> bundleSource(const Store& store,
                                                            const ModelRow& model);
struct BundleFile {
  std::string path;
  std::string digest;
  std::uint64_t size = 0;
};
// Reads a bundle's manifest (its first member) and returns the files it lists; `fd` keeps the
// archive open, positioned at the first blob. Throws with what is wrong.
std::vector<BundleFile> openBundle(const std::filesystem::path& path, std::shared_ptr<int>& fd);
// Copies the next member, which must be `file`'s blob, into `writer`.
void copyBundleEntry(int fd, const BundleFile& file, HashingWriter& writer,
                     const std::atomic<bool>& cancel, std::atomic<std::uint64_t>& done);

// --- jobs ----------------------------------------------------------------------------------

struct ImportRequest {
  std::string source;  // an absolute path of a file or a directory, or an http(s) URL
  std::string name;
  std::string tag = "latest";
  std::optional<std::string> sha256;  // expected digest of a single-file model
  std::map<std::string, std::string> labels;
};

struct JobView {
  std::string id;
  std::string kind;   // "import" or "verify"
  std::string state;  // "queued", "running", "succeeded", "failed", "cancelled"
  std::string modelId;
  std::string source;
  std::uint64_t bytesDone = 0;
  std::uint64_t bytesTotal = 0;
  double bytesPerSecond = 0;
  std::optional<double> etaSeconds;
  std::string error;
  std::string createdAt;
  std::string finishedAt;
};
boost::json::object jobJson(const JobView& job);

// Runs imports and verifications on their own threads; their progress is in memory (for
// GET /api/v1/jobs/{id}) and their outcome in the database. Database work is posted to the
// worker.
class Jobs {
 public:
  Jobs(Store& store, db::Worker& database);
  Jobs(const Jobs&) = delete;
  Jobs& operator=(const Jobs&) = delete;
  ~Jobs();  // stops what runs and waits; interrupted imports restart at the next start

  // Validates the request (throws std::invalid_argument with a message for a 400, Conflict when
  // the name is taken, NoSpace), creates the model row (importing) and the job, and starts it.
  JobView startImport(db::Database& db, const ImportRequest& request);
  // Re-hashes every file of a model, files in parallel on all cores (Conflict unless the model
  // is ready or corrupt).
  JobView startVerify(db::Database& db, const ModelRow& model);
  std::optional<JobView> find(const std::string& id) const;
  std::vector<JobView> list() const;
  // Cancels a queued or running job; false when there is no such job or it has ended.
  bool cancel(const std::string& id);
  // Jobs interrupted by a stop or a crash: imports restart from their source.
  void resumeInterrupted(db::Database& db);

 private:
  struct Job;
  // One file of an import: its name in the model and how to stream its bytes into a writer.
  struct SourceFile {
    std::string name;
    std::function<void(HashingWriter&)> copy;
    std::optional<std::string> sha256;  // what the content must hash to (a bundle's manifest)
  };
  std::vector<SourceFile> importFiles(const std::string& source, Job& job);
  std::string checkLocalSource(const std::string& text, bool singleFile) const;
  std::shared_ptr<Job> add(const std::string& kind, const std::string& modelId,
                           const std::string& source);
  void runImport(const std::shared_ptr<Job>& job, ImportRequest request);
  void runVerify(const std::shared_ptr<Job>& job);
  void finish(const std::shared_ptr<Job>& job, const std::string& state, const std::string& error);

  Store& store_;
  db::Worker& database_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::atomic<bool> stopping_{false};  // the agent stops: leave imports to resume at next start
  std::unique_ptr<boost::asio::thread_pool> pool_;  // last: joined first
};

}  // namespace aibox::agent::models
