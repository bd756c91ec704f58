// The station manifest: read whole, every problem collected, each with its line and JSON path.
#include <boost/json/parse.hpp>
#include <boost/json/stream_parser.hpp>
#include <fstream>
#include <sstream>

#include "agent/models/models.hpp"
#include "agent/security/security.hpp"
#include "provisioning/provision.hpp"

namespace aibox::provisioning {
namespace {

// Finds the line of a value by its path in text that is known to be valid JSON.
class Locator {
 public:
  Locator(std::string_view text, std::string_view target) : text_(text), target_(target) {}
  int find() {
    skipSpace();
    value("");
    return found_;
  }

 private:
  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])) != 0) {
      if (text_[pos_] == '\n') {
        ++line_;
      }
      ++pos_;
    }
  }
  std::string string() {
    std::string out;
    ++pos_;  // the opening quote
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\\') {
        ++pos_;
      }
      out += text_[pos_++];
    }
    ++pos_;
    return out;
  }
  void value(const std::string& path) {
    if (found_ == 0 && path == target_) {
      found_ = line_;
    }
    if (pos_ >= text_.size()) {
      return;
    }
    char c = text_[pos_];
    if (c == '{') {
      ++pos_;
      skipSpace();
      while (pos_ < text_.size() && text_[pos_] != '}') {
        std::string key = string();
        skipSpace();
        ++pos_;  // ':'
        skipSpace();
        value(path.empty() ? key : path + "." + key);
        skipSpace();
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          skipSpace();
        }
      }
      ++pos_;
    } else if (c == '[') {
      ++pos_;
      skipSpace();
      for (int index = 0; pos_ < text_.size() && text_[pos_] != ']'; ++index) {
        value(path + "[" + std::to_string(index) + "]");
        skipSpace();
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          skipSpace();
        }
      }
      ++pos_;
    } else if (c == '"') {
      string();
    } else {
      while (pos_ < text_.size() &&
             std::string_view(",]} \t\r\n").find(text_[pos_]) == std::string_view::npos) {
        ++pos_;
      }
    }
  }

  std::string_view text_;
  std::string_view target_;
  std::size_t pos_ = 0;
  int line_ = 1;
  int found_ = 0;
};

// Reads typed fields of one object, collecting a problem for each bad or unknown one.
class Fields {
 public:
  Fields(std::string_view text, const std::string& file, std::vector<std::string>& problems)
      : text_(text), file_(file), problems_(problems) {}

  void fail(const std::string& path, const std::string& message) {
    // A missing field: the line of the object it belongs in.
    int line = 0;
    for (std::string at = path; line == 0 && !at.empty();) {
      line = lineOf(text_, at);
      auto cut = at.find_last_of(".[");
      at = cut == std::string::npos ? std::string() : at.substr(0, cut);
    }
    problems_.push_back(file_ + ":" + (line > 0 ? std::to_string(line) + ":" : "") + " " + path +
                        ": " + message);
  }

  // The object at `key` of `parent` (path `at`), or null when absent (a problem if required).
  const boost::json::object* object(const boost::json::object& parent, const std::string& at,
                                    std::string_view key, bool required) {
    const auto* v = parent.if_contains(key);
    std::string path = join(at, key);
    if (v == nullptr) {
      if (required) {
        fail(path, "is required");
      }
      return nullptr;
    }
    if (!v->is_object()) {
      fail(path, "must be an object");
      return nullptr;
    }
    return &v->as_object();
  }
  const boost::json::array* array(const boost::json::object& parent, const std::string& at,
                                  std::string_view key) {
    const auto* v = parent.if_contains(key);
    if (v == nullptr) {
      return nullptr;
    }
    if (!v->is_array()) {
      fail(join(at, key), "must be a list");
      return nullptr;
    }
    return &v->as_array();
  }
  std::optional<std::string> text(const boost::json::object& parent, const std::string& at,
                                  std::string_view key, bool required = false) {
    const auto* v = parent.if_contains(key);
    if (v == nullptr) {
      if (required) {
        fail(join(at, key), "is required");
      }
      return std::nullopt;
    }
    if (!v->is_string() || v->as_string().empty()) {
      fail(join(at, key), "must be a non-empty string");
      return std::nullopt;
    }
    return std::string(v->as_string());
  }
  std::optional<std::filesystem::path> absolutePath(const boost::json::object& parent,
                                                    const std::string& at, std::string_view key,
                                                    bool required = false) {
    auto value = text(parent, at, key, required);
    if (value && !value->starts_with("/")) {
      fail(join(at, key), "must be an absolute path, not '" + *value + "'");
      return std::nullopt;
    }
    return value ? std::optional<std::filesystem::path>(*value) : std::nullopt;
  }
  std::optional<std::int64_t> integer(const boost::json::object& parent, const std::string& at,
                                      std::string_view key, std::int64_t min,
                                      bool required = false) {
    const auto* v = parent.if_contains(key);
    if (v == nullptr) {
      if (required) {
        fail(join(at, key), "is required");
      }
      return std::nullopt;
    }
    std::optional<std::int64_t> n;
    if (v->is_int64()) {
      n = v->as_int64();
    } else if (v->is_uint64() && v->as_uint64() <= INT64_MAX) {
      n = static_cast<std::int64_t>(v->as_uint64());
    }
    if (!n || *n < min) {
      fail(join(at, key), "must be a whole number >= " + std::to_string(min));
      return std::nullopt;
    }
    return n;
  }
  std::optional<double> number(const boost::json::object& parent, const std::string& at,
                               std::string_view key) {
    const auto* v = parent.if_contains(key);
    if (v == nullptr) {
      return std::nullopt;
    }
    if (!v->is_number() || v->to_number<double>() <= 0) {
      fail(join(at, key), "must be a number > 0");
      return std::nullopt;
    }
    return v->to_number<double>();
  }
  std::optional<bool> boolean(const boost::json::object& parent, const std::string& at,
                              std::string_view key) {
    const auto* v = parent.if_contains(key);
    if (v == nullptr) {
      return std::nullopt;
    }
    if (!v->is_bool()) {
      fail(join(at, key), "must be true or false");
      return std::nullopt;
    }
    return v->as_bool();
  }
  std::vector<std::string> strings(const boost::json::object& parent, const std::string& at,
                                   std::string_view key) {
    std::vector<std::string> out;
    const auto* list = array(parent, at, key);
    for (std::size_t i = 0; list != nullptr && i < list->size(); ++i) {
      const auto& v = (*list)[i];
      if (!v.is_string() || v.as_string().empty()) {
        fail(join(at, key) + "[" + std::to_string(i) + "]", "must be a non-empty string");
      } else {
        out.emplace_back(v.as_string());
      }
    }
    return out;
  }
  // Each key of `object` not in `known` is a problem (a typo must not pass silently).
  void known(const boost::json::object& object, const std::string& at,
             std::initializer_list<std::string_view> keys) {
    for (const auto& [key, value] : object) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        std::string list;
        for (auto k : keys) {
          list += (list.empty() ? "" : ", ") + std::string(k);
        }
        fail(join(at, key), "is not a known field (known: " + list + ")");
      }
    }
  }
  static std::string join(const std::string& at, std::string_view key) {
    return at.empty() ? std::string(key) : at + "." + std::string(key);
  }

 private:
  std::string_view text_;
  const std::string& file_;
  std::vector<std::string>& problems_;
};

std::optional<CountRule> countRule(Fields& f, const boost::json::object& o, const std::string& at,
                                   std::initializer_list<std::string_view> keys) {
  f.known(o, at, keys);
  CountRule rule;
  rule.model = f.text(o, at, "model").value_or("");
  auto count = f.integer(o, at, "count", 1, true);
  rule.minGib = f.integer(o, at, "min_gib", 1).value_or(0);
  rule.minSpeedMbps = f.integer(o, at, "min_speed_mbps", 1).value_or(0);
  if (!count) {
    return std::nullopt;
  }
  rule.count = *count;
  return rule;
}

void readSku(Fields& f, const boost::json::object& root, Sku& sku) {
  const auto* o = f.object(root, "", "sku", true);
  if (o == nullptr) {
    return;
  }
  f.known(*o, "sku", {"name", "cpu", "memory_gib", "gpus", "disks", "nics", "psus", "fans", "ups"});
  sku.name = f.text(*o, "sku", "name", true).value_or("");
  if (const auto* cpu = f.object(*o, "sku", "cpu", false)) {
    sku.cpu = countRule(f, *cpu, "sku.cpu", {"model", "count"});
  }
  sku.memoryGib = f.integer(*o, "sku", "memory_gib", 1);
  auto list = [&f, o](std::string_view key, std::vector<CountRule>& out,
                      std::initializer_list<std::string_view> keys) {
    const auto* items = f.array(*o, "sku", key);
    for (std::size_t i = 0; items != nullptr && i < items->size(); ++i) {
      std::string at = "sku." + std::string(key) + "[" + std::to_string(i) + "]";
      if (!(*items)[i].is_object()) {
        f.fail(at, "must be an object");
      } else if (auto rule = countRule(f, (*items)[i].as_object(), at, keys)) {
        out.push_back(*rule);
      }
    }
  };
  list("gpus", sku.gpus, {"model", "count"});
  list("disks", sku.disks, {"model", "count", "min_gib"});
  if (const auto* nics = f.object(*o, "sku", "nics", false)) {
    sku.nics = countRule(f, *nics, "sku.nics", {"count", "min_speed_mbps"});
  }
  sku.psus = f.integer(*o, "sku", "psus", 0);
  sku.fans = f.integer(*o, "sku", "fans", 0);
  sku.upses = f.integer(*o, "sku", "ups", 0);
}

void readSelfTests(Fields& f, const boost::json::object& root, SelfTests& t) {
  const auto* o = f.object(root, "", "self_tests", false);
  if (o == nullptr) {
    return;
  }
  const std::string at = "self_tests";
  f.known(*o, at,
          {"iops_min", "iops_path", "iops_seconds", "time_offset_max_us", "ups_online", "sensors",
           "gpu_health", "burn_in"});
  t.iopsMin = f.integer(*o, at, "iops_min", 1);
  t.iopsPath = f.absolutePath(*o, at, "iops_path").value_or(t.iopsPath);
  t.iopsSeconds = f.number(*o, at, "iops_seconds").value_or(t.iopsSeconds);
  t.timeOffsetMaxUs = f.integer(*o, at, "time_offset_max_us", 1);
  t.upsOnline = f.boolean(*o, at, "ups_online").value_or(false);
  t.sensors = f.boolean(*o, at, "sensors").value_or(false);
  t.gpuHealth = f.boolean(*o, at, "gpu_health").value_or(false);
  if (const auto* burn = f.object(*o, at, "burn_in", false)) {
    f.known(*burn, at + ".burn_in", {"model", "tokens", "min_tokens_per_second"});
    t.burnInModel = f.absolutePath(*burn, at + ".burn_in", "model", true);
    t.burnInTokens = f.integer(*burn, at + ".burn_in", "tokens", 1).value_or(t.burnInTokens);
    t.burnInMinTokensPerSecond = f.number(*burn, at + ".burn_in", "min_tokens_per_second");
  }
}

constexpr std::string_view kChecks[] = {
    "inventory.cpu",         "inventory.memory",     "inventory.gpus", "inventory.disks",
    "inventory.nics",        "inventory.psus",       "inventory.fans", "inventory.ups",
    "self_tests.iops",       "self_tests.time_sync", "self_tests.ups", "self_tests.sensors",
    "self_tests.gpu_health", "self_tests.burn_in"};

void readWaivers(Fields& f, const boost::json::object& root, std::vector<Waiver>& out) {
  const auto* items = f.array(root, "", "waivers");
  for (std::size_t i = 0; items != nullptr && i < items->size(); ++i) {
    std::string at = "waivers[" + std::to_string(i) + "]";
    if (!(*items)[i].is_object()) {
      f.fail(at, "must be an object");
      continue;
    }
    const auto& o = (*items)[i].as_object();
    f.known(o, at, {"check", "reason", "by"});
    Waiver w;
    w.check = f.text(o, at, "check", true).value_or("");
    w.reason = f.text(o, at, "reason", true).value_or("");
    w.by = f.text(o, at, "by").value_or("");
    if (!w.check.empty() &&
        std::find(std::begin(kChecks), std::end(kChecks), w.check) == std::end(kChecks)) {
      std::string list;
      for (auto c : kChecks) {
        list += (list.empty() ? "" : ", ") + std::string(c);
      }
      f.fail(at + ".check", "'" + w.check + "' is not a check (checks: " + list + ")");
    }
    out.push_back(std::move(w));
  }
}

void readModels(Fields& f, const boost::json::object& root, std::vector<Preload>& out) {
  const auto* items = f.array(root, "", "models");
  for (std::size_t i = 0; items != nullptr && i < items->size(); ++i) {
    std::string at = "models[" + std::to_string(i) + "]";
    if (!(*items)[i].is_object()) {
      f.fail(at, "must be an object");
      continue;
    }
    const auto& o = (*items)[i].as_object();
    f.known(o, at, {"bundle", "sha256", "name", "tag"});
    Preload p;
    p.bundle = f.absolutePath(o, at, "bundle", true).value_or("");
    p.sha256 = f.text(o, at, "sha256", true).value_or("");
    p.name = f.text(o, at, "name", true).value_or("");
    p.tag = f.text(o, at, "tag").value_or(p.tag);
    if (!p.bundle.empty() && p.bundle.extension() != ".tar") {
      f.fail(at + ".bundle",
             "must be a model bundle (.tar, as GET /api/v1/models/{id}/bundle "
             "or 'aiboxctl models export' writes it)");
    }
    if (!p.sha256.empty() && !agent::models::isDigest(p.sha256)) {
      f.fail(at + ".sha256", "must be 64 lower-case hex digits (sha256sum of the bundle)");
    }
    for (const auto* name : {&p.name, &p.tag}) {
      if (!name->empty() && !agent::models::isName(*name)) {
        f.fail(at + (name == &p.name ? ".name" : ".tag"),
               "'" + *name + "' must be 1 to 64 of a-z, 0-9, '.', '_' and '-'");
      }
    }
    out.push_back(std::move(p));
  }
}

void readSettings(Fields& f, const boost::json::object& root, Manifest& m) {
  if (const auto* admin = f.object(root, "", "admin", true)) {
    f.known(*admin, "admin", {"username", "one_time_password", "password_hash"});
    m.adminName = f.text(*admin, "admin", "username").value_or(m.adminName);
    m.adminPassword = f.text(*admin, "admin", "one_time_password");
    m.adminPasswordHash = f.text(*admin, "admin", "password_hash");
    if (m.adminPassword.has_value() == m.adminPasswordHash.has_value()) {
      f.fail("admin",
             "give one of 'one_time_password' (printed on the box label) or "
             "'password_hash' (as 'aibox-provision hash-password' prints it)");
    } else if (m.adminPassword && m.adminPassword->size() < 12) {
      f.fail("admin.one_time_password", "must be at least 12 characters");
    } else if (m.adminPasswordHash && !m.adminPasswordHash->starts_with("scrypt$")) {
      f.fail("admin.password_hash",
             "must be a 'scrypt$...' hash (as 'aibox-provision hash-password' prints it)");
    }
  }
  if (const auto* net = f.object(root, "", "network", false)) {
    f.known(*net, "network", {"hostname", "interfaces"});
    m.hostname = f.text(*net, "network", "hostname");
    const auto* items = f.array(*net, "network", "interfaces");
    for (std::size_t i = 0; items != nullptr && i < items->size(); ++i) {
      std::string at = "network.interfaces[" + std::to_string(i) + "]";
      if (!(*items)[i].is_object()) {
        f.fail(at, "must be an object");
        continue;
      }
      const auto& o = (*items)[i].as_object();
      f.known(o, at, {"name", "dhcp", "address", "gateway", "dns"});
      Manifest::Interface nic;
      nic.name = f.text(o, at, "name", true).value_or("");
      nic.dhcp = f.boolean(o, at, "dhcp").value_or(!o.contains("address"));
      nic.address = f.text(o, at, "address", !nic.dhcp).value_or("");
      nic.gateway = f.text(o, at, "gateway").value_or("");
      nic.dns = f.strings(o, at, "dns");
      if (!nic.address.empty() && nic.address.find('/') == std::string::npos) {
        f.fail(at + ".address", "must be ADDRESS/PREFIX, e.g. 10.0.0.5/24");
      }
      m.interfaces.push_back(std::move(nic));
    }
  }
  if (const auto* ntp = f.object(root, "", "ntp", false)) {
    f.known(*ntp, "ntp", {"servers"});
    m.ntpServers = f.strings(*ntp, "ntp", "servers");
  }
}

}  // namespace

int lineOf(std::string_view text, std::string_view path) {
  return Locator(text, path).find();
}

std::variant<Manifest, std::vector<std::string>> parseManifest(std::string_view text,
                                                               const std::string& file) {
  std::vector<std::string> problems;
  boost::json::stream_parser parser;
  boost::system::error_code ec;
  std::size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec) {
    parser.finish(ec);
  }
  if (ec || used < text.size()) {
    auto at = text.substr(0, used);
    int line = 1 + static_cast<int>(std::count(at.begin(), at.end(), '\n'));
    problems.push_back(file + ":" + std::to_string(line) + ": not valid JSON (" +
                       (ec ? ec.message() : std::string("text after the end")) + ")");
    return problems;
  }
  auto value = parser.release();
  if (!value.is_object()) {
    problems.push_back(file + ":1: the manifest must be a JSON object");
    return problems;
  }
  const auto& root = value.as_object();
  Fields f(text, file, problems);
  Manifest m;
  m.file = file;
  m.digest = agent::security::sha256Hex(text);
  f.known(root, "",
          {"version", "sku", "self_tests", "waivers", "serial", "factory_ca", "license", "models",
           "admin", "network", "ntp"});
  if (auto version = f.integer(root, "", "version", 1, true); version && *version != 1) {
    f.fail("version",
           "this aibox-provision reads manifest version 1, not " + std::to_string(*version));
  }
  readSku(f, root, m.sku);
  readSelfTests(f, root, m.selfTests);
  readWaivers(f, root, m.waivers);
  m.serial = f.text(root, "", "serial");
  if (const auto* ca = f.object(root, "", "factory_ca", true)) {
    f.known(*ca, "factory_ca", {"certificate", "key", "days"});
    m.caCertificate = f.absolutePath(*ca, "factory_ca", "certificate", true).value_or("");
    m.caKey = f.absolutePath(*ca, "factory_ca", "key", true).value_or("");
    m.certificateDays = f.integer(*ca, "factory_ca", "days", 1).value_or(m.certificateDays);
  }
  if (const auto* lic = f.object(root, "", "license", false)) {
    f.known(*lic, "license", {"file", "dir"});
    m.licenseFile = f.absolutePath(*lic, "license", "file");
    m.licenseDir = f.absolutePath(*lic, "license", "dir");
    if (m.licenseFile.has_value() == m.licenseDir.has_value()) {
      f.fail("license", "give one of 'file' or 'dir' (which holds <serial>.lic)");
    }
  }
  readModels(f, root, m.models);
  readSettings(f, root, m);
  if (!problems.empty()) {
    return problems;
  }
  return m;
}

std::variant<Manifest, std::vector<std::string>> readManifest(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return std::vector<std::string>{file.string() + ": cannot read the manifest"};
  }
  std::stringstream text;
  text << in.rdbuf();
  return parseManifest(text.str(), file.string());
}

}  // namespace aibox::provisioning
