#pragma once
// aibox-provision, the factory station tool (docs/provisioning.md): the manifest, the steps
// (inventory, self-tests, identity, license, models, admin, report), the signed report, the
// factory CA and the factory reset. It runs on the box and uses the agent's libraries, never
// its process: over the agent's unix socket when the agent runs, on its database otherwise.

#include <boost/json/object.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace aibox::provisioning {

// --- the manifest ---------------------------------------------------------------------------

struct CountRule {    // a part of the SKU: how many, and what each must be
  std::string model;  // a substring of the part's model name; empty: any
  std::int64_t count = 0;
  std::int64_t minGib = 0;        // disks
  std::int64_t minSpeedMbps = 0;  // NICs
};

struct Sku {
  std::string name;
  std::optional<CountRule> cpu;           // model and packages (sockets)
  std::optional<std::int64_t> memoryGib;  // at least, as the kernel counts it
  std::vector<CountRule> gpus;
  std::vector<CountRule> disks;
  std::optional<CountRule> nics;
  std::optional<std::int64_t> psus;
  std::optional<std::int64_t> fans;
  std::optional<std::int64_t> upses;
};

struct SelfTests {
  std::optional<std::int64_t> iopsMin;  // 4 KiB random reads a second
  std::filesystem::path iopsPath = "/var/lib/aibox";
  double iopsSeconds = 3;
  std::optional<std::int64_t> timeOffsetMaxUs;
  bool upsOnline = false;
  bool sensors = false;
  bool gpuHealth = false;
  std::optional<std::filesystem::path> burnInModel;
  std::int64_t burnInTokens = 32;
  std::optional<double> burnInMinTokensPerSecond;
};

struct Waiver {
  std::string check;  // "inventory.gpus", "self_tests.time_sync", ...
  std::string reason;
  std::string by;
};

struct Preload {
  std::filesystem::path bundle;
  std::string sha256;  // of the bundle file
  std::string name;
  std::string tag = "latest";
};

struct Manifest {
  std::string file;    // where it was read from, for messages
  std::string digest;  // SHA-256 of its bytes: a re-run with another manifest redoes the tests
  Sku sku;
  SelfTests selfTests;
  std::vector<Waiver> waivers;
  std::optional<std::string> serial;  // else the DMI product serial
  std::filesystem::path caCertificate;
  std::filesystem::path caKey;
  std::int64_t certificateDays = 3650;
  std::optional<std::filesystem::path> licenseFile;
  std::optional<std::filesystem::path> licenseDir;  // <dir>/<serial>.lic
  std::vector<Preload> models;
  std::string adminName = "admin";
  std::optional<std::string> adminPassword;  // one-time, printed on the box label
  std::optional<std::string> adminPasswordHash;
  std::optional<std::string> hostname;
  std::vector<std::string> ntpServers;
  struct Interface {
    std::string name;
    bool dhcp = true;
    std::string address;  // "10.0.0.5/24" when not dhcp
    std::string gateway;
    std::vector<std::string> dns;
  };
  std::vector<Interface> interfaces;
};

// Every problem of a manifest, each naming its line and JSON path:
// "manifest.json:12: sku.gpus[0].count: must be a whole number >= 1".
std::variant<Manifest, std::vector<std::string>> parseManifest(std::string_view text,
                                                               const std::string& file);
std::variant<Manifest, std::vector<std::string>> readManifest(const std::filesystem::path& file);

// The line (1-based) of the value at `path` ("sku.gpus[0].count") in a JSON text; 0 when the
// path is not in it.
int lineOf(std::string_view text, std::string_view path);

// --- steps ----------------------------------------------------------------------------------

enum class Outcome { passed, failed, skipped, waived };
std::string_view outcomeName(Outcome outcome);  // PASSED, FAILED, SKIPPED, WAIVED

inline constexpr std::string_view kSteps[] = {"inventory", "self_tests", "identity", "license",
                                              "models",    "admin",      "report"};

// One check inside a step: a difference from the SKU, a self-test below its floor.
struct Finding {
  std::string check;  // "inventory.gpus"
  bool ok = true;
  std::string message;
  std::optional<std::string> waivedBy;  // the waiver's reason, when a failure is waived
};

struct StepResult {
  std::string step;
  Outcome outcome = Outcome::passed;
  double seconds = 0;
  std::string message;
  bool alreadyDone = false;
  std::vector<Finding> findings;
  boost::json::object details;
};

// Where the run's progress goes: JSON lines, or a view for people on a terminal.
class Reporter {
 public:
  Reporter(std::ostream& out, bool json) : out_(out), json_(json) {}
  void start(std::string_view step);
  void progress(std::string_view step, double fraction, std::string_view what);
  void end(const StepResult& result);
  void line(const boost::json::object& event, const std::string& human);

 private:
  std::ostream& out_;
  bool json_;
};

// What the steps work on: the box's root and settings, the agent (running or not).
struct Box;

struct RunOptions {
  std::filesystem::path root = "/";
  std::string station;
  std::set<std::string> only;  // empty: all
  std::set<std::string> skip;
  bool json = false;
};

// Exit codes.
inline constexpr int kOk = 0;
inline constexpr int kStepFailed = 1;
inline constexpr int kBadManifest = 2;
inline constexpr int kCannotRun = 3;

int run(const Manifest& manifest, const RunOptions& options, std::ostream& out);
// What `run` would do, step by step, without doing it.
void plan(const Manifest& manifest, const RunOptions& options, std::ostream& out);

// --- the report -----------------------------------------------------------------------------

std::filesystem::path reportFile(const std::filesystem::path& root);
// Signs `report` with the device key: {"report": ..., "signature": {algorithm, certificate,
// value}}; the signature covers the report as common/json writes it.
std::string signReport(const boost::json::object& report, const std::filesystem::path& key,
                       const std::filesystem::path& certificate);
// nullopt when the signature is good (and, with a CA, the certificate is the CA's); else why
// not.
std::optional<std::string> verifyReport(std::string_view text,
                                        const std::optional<std::filesystem::path>& ca);

// --- the factory CA -------------------------------------------------------------------------

// A P-256 CA key (0600) and a self-signed CA certificate.
void caInit(const std::filesystem::path& key, const std::filesystem::path& certificate,
            const std::string& name, int days);
// Signs a CSR (PEM) as a device certificate: the CSR's subject and key, server and client
// auth, the SANs given. Throws std::runtime_error saying what is wrong.
std::string caSign(std::string_view csrPem, const std::filesystem::path& caKey,
                   const std::filesystem::path& caCertificate, int days,
                   const std::vector<std::string>& names);

// --- factory reset --------------------------------------------------------------------------

// Stops instances, removes users, sessions, keys, audit (archived first), settings and
// imported models; keeps identity, license and the factory models. Through the agent when it
// runs (it restarts itself), else on the database. Returns the exit code.
int reset(const std::filesystem::path& root, bool json, std::ostream& out);

}  // namespace aibox::provisioning
