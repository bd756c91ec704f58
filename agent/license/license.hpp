#pragma once
// Offline, node-locked licenses (docs/licensing.md): the signed document and its canonical
// form, verification against the vendor keys built into the agent, the machine fingerprint
// (k of n hashed components), the clock high-water mark and the license state. Issuing (the
// private key) lives only in the vendor tool, provisioning/license.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/db/db.hpp"

namespace aibox::agent::license {

// --- the document ---------------------------------------------------------------------------

// RFC 8785 (JSON Canonicalization Scheme) for documents whose numbers are all integers: keys
// sorted, no whitespace, strings with the shortest escapes. nullopt (with `problem`) for a
// number that is not an integer or a key that is not ASCII.
std::optional<std::string> canonical(const boost::json::value& value, std::string& problem);

// nullopt: no limit.
struct Entitlements {
  std::optional<std::int64_t> maxGpus;
  std::optional<std::int64_t> maxInstances;
  std::optional<std::int64_t> maxModels;
  std::optional<std::int64_t> maxConcurrency;
  std::vector<std::string> modules;
  bool trial = false;
};

struct License {
  std::string id;
  std::string issuer;
  std::string customer;
  std::int64_t issuedAt = 0;  // unix seconds
  std::int64_t notBefore = 0;
  std::int64_t notAfter = 0;
  std::int64_t graceSeconds = 0;
  std::vector<std::string> components;  // "kind:sha256hex", see Fingerprint
  std::int64_t minMatch = 0;            // k of components.size()
  Entitlements entitlements;
  boost::json::object document;  // what was signed
};

// A license file: {"license": {...}, "signature": {"algorithm": "ed25519", "key_id", "value"}}.
struct SignedLicense {
  License license;
  std::string keyId;
  std::string signatureHex;
};

// Reads a license document (the "license" object); a problem names the field.
std::variant<License, std::string> parseDocument(const boost::json::object& document);
// Reads a license file; the signature is not checked here.
std::variant<SignedLicense, std::string> parseFile(std::string_view text);

struct PublicKey {
  std::string id;   // keyId() of the key
  std::string pem;  // SubjectPublicKeyInfo PEM
};
// The vendor keys this build trusts (CMake: AIBOX_LICENSE_KEYS, AIBOX_LICENSE_TEST_KEY).
std::span<const PublicKey> vendorKeys();
// Whether the test vendor key (tests/support/license) is among them: never in a shipped build.
bool trustsTestKey();
// The first 16 hex digits of the SHA-256 of the raw 32-byte Ed25519 public key; nullopt when
// `pem` is not an Ed25519 public key.
std::optional<std::string> keyId(std::string_view publicPem);
// nullopt when the signature is valid for one of `keys`, else why not.
std::optional<std::string> verify(const SignedLicense& file, std::span<const PublicKey> keys);

// --- the fingerprint ------------------------------------------------------------------------

struct Component {
  std::string kind;   // dmi_product_uuid, dmi_board_serial, gpu, boot_disk, nic
  std::string label;  // what it is, for people: "GPU 0", "eno1", "nvme0n1"
  std::string hash;   // hex SHA-256 of "aibox-fingerprint-v1\n<kind>\n<value>"
  std::string id() const { return kind + ":" + hash; }
};
struct Fingerprint {
  std::vector<Component> components;
  std::vector<std::string> missing;  // sources that could not be read, and why
};
// Reads DMI, the boot disk and the first onboard NIC under `root`; `gpuUuids` come from NVML.
Fingerprint readFingerprint(const std::filesystem::path& root,
                            const std::vector<std::string>& gpuUuids);
boost::json::object fingerprintJson(const Fingerprint& fingerprint);
// The components of a fingerprint JSON (as fingerprintJson writes it), or a problem.
std::variant<std::vector<std::string>, std::string> fingerprintComponents(
    const boost::json::object& fingerprint);
// How many of the license's components the machine has. While NVML has not reported yet
// (`gpusPending`), the license's GPU components are taken as present.
std::size_t matchCount(const License& license, const Fingerprint& fingerprint,
                       bool gpusPending = false);

// --- state ----------------------------------------------------------------------------------

enum class State { valid, grace, expired, invalid, none };
std::string_view stateName(State state);

struct Evaluation {
  State state = State::none;
  std::string code;     // invalid: signature, fingerprint, not_yet_valid, clock_rollback, file
  std::string message;  // what it means and what to do
  std::size_t matched = 0;
  std::int64_t secondsToExpiry = 0;  // to not_after; negative once past
  std::int64_t nextChange = 0;       // unix seconds of the next boundary (0: none)
};

// The state of `file`, `matched` of whose components this machine has, at `now`, given the
// clock's high-water mark.
Evaluation evaluate(const SignedLicense* file, std::span<const PublicKey> keys, std::size_t matched,
                    std::int64_t now, std::int64_t highWater, std::int64_t tolerance);
// Whether instances may run in `state` (valid or grace).
bool allowsInstances(State state);

// Schema migration: the clock high-water mark and the license events.
extern const char* const kSchema;

// --- the agent's service --------------------------------------------------------------------

struct Settings {
  std::filesystem::path file;       // the installed license (default <state>/license/aibox.lic)
  std::filesystem::path clockFile;  // the second copy of the high-water mark
  std::int64_t clockTolerance = 24 * 3600;
};

struct Event {
  std::int64_t time = 0;
  std::string type;  // installed, state, grace_reminder, clock_rollback, instances_stopped
  std::string message;
};

// The limits entitlements set, named as the license names them.
enum class Limit { gpus, instances, models };

// Why the license refuses a change: 402 license_required (no valid license), 403 license_limit.
struct Refusal {
  int status = 403;
  std::string code;
  std::string message;
};

struct Status {
  std::optional<SignedLicense> file;
  bool gpusPending = false;
  Evaluation evaluation;
  Fingerprint fingerprint;
  std::int64_t highWater = 0;
};

boost::json::object licenseJson(const Status& status);

// Keeps the installed license, its state and the clock high-water mark. State changes (also
// those that come with time: valid to grace to expired) are logged, stored as events and given
// to the listeners (the event stream; supervision stops instances when they may no longer run).
class Service {
 public:
  using Listener = std::function<void(const Status& status, const Event& event)>;
  // The GPUs for the fingerprint (NVML's UUIDs); nullopt until NVML has reported once.
  using Gpus = std::function<std::optional<std::vector<std::string>>()>;

  Service(boost::asio::io_context& io, db::Worker& database, Settings settings,
          std::filesystem::path root, Gpus gpus);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // The high-water mark kept in the database (read before the database moves to its worker).
  static std::int64_t storedHighWater(db::Database& db);
  // Loads the installed license, takes the later of `storedHighWater` and the second copy,
  // and starts the timers.
  void start(std::int64_t storedHighWater);
  void stop();
  void listen(Listener listener);

  Status status();
  // Checks `text` (parse, signature, this box's fingerprint, dates), then keeps it atomically
  // in place of the old one. Returns the new status, or why the file was refused.
  std::variant<Status, std::string> install(std::string_view text);
  // Recent license events, newest first (database worker).
  static std::vector<Event> events(db::Database& db, int limit);

  // nullopt when `wanted` (the count after the change) fits the license; else a message that
  // names the limit and the numbers. Needs a valid or grace license for instances and GPUs.
  std::optional<Refusal> refuse(Limit limit, std::int64_t wanted);
  std::optional<std::int64_t> maxConcurrency();
  bool hasModule(std::string_view module);

 private:
  void tick();
  Status compute(std::int64_t now);  // with the mutex held
  void observe(const Status& status, std::int64_t now);
  void record(const Event& event);
  void arm(std::int64_t seconds);

  boost::asio::io_context& io_;
  db::Worker& database_;
  const Settings settings_;
  const std::filesystem::path root_;
  Gpus gpus_;
  boost::asio::steady_timer timer_;
  std::mutex mutex_;  // guards the rest
  std::optional<SignedLicense> file_;
  std::string fileProblem_;  // the installed file cannot be read
  std::int64_t highWater_ = 0;
  std::optional<State> lastState_;
  std::int64_t lastReminder_ = 0;
  std::vector<Listener> listeners_;
  bool stopped_ = false;
};

}  // namespace aibox::agent::license
