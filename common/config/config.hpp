#pragma once
// Settings come from the INI file /etc/aibox/aibox.conf (sections become dotted names:
// "listen" in [server] is "server.listen") and from the command line, which wins. Any unknown
// key, malformed line or bad value stops start-up with the file, the line and the key.

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace aibox::config {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by a setting's validator (a program_options notifier) to reject its value.
class InvalidValue : public std::runtime_error {
 public:
  InvalidValue(std::string settingKey, const std::string& what)
      : std::runtime_error(what), key(std::move(settingKey)) {}
  std::string key;
};

// A notifier that refuses a value of `key` outside [low, high].
template <class T>
auto inRange(const char* key, T low, T high) {
  return [key, low, high](const T& v) {
    if (v < low || v > high) {
      throw InvalidValue(key,
                         "must be between " + std::to_string(low) + " and " + std::to_string(high));
    }
  };
}

// Where each stored setting came from ("FILE:LINE" or "command line"), for error messages.
using Origins = std::map<std::string, std::string, std::less<>>;

// Parses the command line into `vm`. Throws Error with a usage hint on a bad option.
void parseCommandLine(int argc, const char* const* argv,
                      const boost::program_options::options_description& options,
                      boost::program_options::variables_map& vm, Origins& origins);

// Whether a [section] of the shared file holds this program's settings; the others belong to
// another program reading the same file (the gateway's [gateway], the agent's the rest) and
// are skipped. A key outside every section is always this program's.
using OwnsSection = bool (*)(std::string_view section);

// Adds the settings of the INI file at `file` to `vm` (values already there win).
void parseFile(const std::filesystem::path& file,
               const boost::program_options::options_description& settings,
               boost::program_options::variables_map& vm, Origins& origins,
               OwnsSection owns = nullptr);

// Runs the validators; an InvalidValue becomes an Error naming where the value came from.
void validate(boost::program_options::variables_map& vm, const Origins& origins);

// The paths of the FHS layout, all below one root ("/" on a box; a temp dir in tests and the
// demo). Every path in a setting is taken inside this root, like a chroot.
class Paths {
 public:
  explicit Paths(std::filesystem::path root);

  // The root from --root, else $AIBOX_ROOT, else "/"; made absolute.
  static Paths resolve(const std::optional<std::string>& rootArgument);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path under(std::string_view absolute) const;

  std::filesystem::path configFile() const { return under("/etc/aibox/aibox.conf"); }
  std::filesystem::path stateDir() const { return under("/var/lib/aibox"); }
  std::filesystem::path database() const { return under("/var/lib/aibox/aibox.db"); }
  std::filesystem::path identityDir() const { return under("/var/lib/aibox/identity"); }
  // The provisioned identity (aibox-provision): served over HTTPS instead of the self-signed
  // https.crt once it exists, unless the TLS settings name other files.
  std::filesystem::path deviceKey() const { return identityDir() / "device.key"; }
  std::filesystem::path deviceCertificate() const { return identityDir() / "device.crt"; }
  std::filesystem::path modelsDir() const { return under("/var/lib/aibox/models"); }
  std::filesystem::path runDir() const { return under("/run/aibox"); }
  std::filesystem::path agentSocket() const { return under("/run/aibox/agent.sock"); }
  std::filesystem::path webuiDir() const { return under("/usr/share/aibox/webui"); }

 private:
  std::filesystem::path root_;
};

}  // namespace aibox::config
