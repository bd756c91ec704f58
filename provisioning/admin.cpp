// Step 6, admin and settings: the first admin with the one-time password printed on the box
// label (or a given hash), who must change it at first login; the host name, NTP servers and
// network interfaces; and a copy of the factory config, which a factory reset puts back.
#include "agent/security/security.hpp"
#include "common/fs/fs.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {
namespace {

namespace security = agent::security;

// Writes `text` unless the file already holds it; true when it wrote.
bool writeIfChanged(const std::filesystem::path& file, const std::string& text, mode_t mode) {
  if (readText(file) == text) {
    return false;
  }
  std::filesystem::create_directories(file.parent_path());  // existing ones keep their mode
  fs::writeFileAtomic(file, text, mode);
  return true;
}

// True when the admin already is as the manifest says.
bool adminDone(db::Database& db, const Manifest& m) {
  auto s = db.prepare(
      "SELECT password_hash, role, disabled, must_change_password FROM users WHERE name = ?");
  s.bind(1, m.adminName);
  if (!s.step() || s.text(1) != "admin" || s.integer(2) != 0 || s.integer(3) != 1) {
    return false;
  }
  return m.adminPasswordHash ? s.text(0) == *m.adminPasswordHash
                             : security::verifyPassword(*m.adminPassword, s.text(0));
}

void setAdmin(db::Database& db, const Manifest& m, int log2n) {
  std::string hash =
      m.adminPasswordHash ? *m.adminPasswordHash : security::hashPassword(*m.adminPassword, log2n);
  db.transaction([&m, &hash](db::Database& tx) {
    // The agent's own first admin (random password, never used) gives way to the label's.
    tx.prepare(
          "DELETE FROM users WHERE name = 'admin' AND name <> ? AND must_change_password = 1 AND "
          "last_login_at IS NULL")
        .bind(1, m.adminName)
        .step();
    tx.prepare(
          "INSERT INTO users(name, password_hash, role, must_change_password) VALUES (?, ?, "
          "'admin', 1) ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash, "
          "role = 'admin', disabled = 0, must_change_password = 1")
        .bind(1, m.adminName)
        .bind(2, hash)
        .step();
  });
}

std::string networkFile(const Manifest::Interface& nic) {
  std::string out =
      "# Written by aibox-provision at the factory.\n[Match]\nName=" + nic.name + "\n\n[Network]\n";
  if (nic.dhcp) {
    out += "DHCP=yes\n";
  } else {
    out += "Address=" + nic.address + "\n";
    if (!nic.gateway.empty()) {
      out += "Gateway=" + nic.gateway + "\n";
    }
  }
  for (const auto& dns : nic.dns) {
    out += "DNS=" + dns + "\n";
  }
  return out;
}

}  // namespace

StepResult adminStep(Box& box, const Manifest& manifest) {
  StepResult r;
  std::vector<std::string> done;
  auto& db = box.database();
  if (!adminDone(db, manifest)) {
    setAdmin(db, manifest, box.settings.security.scryptLog2N);
    done.push_back("admin '" + manifest.adminName + "' set with the label's one-time password");
  }
  std::error_code ec;
  if (std::filesystem::remove(box.paths.stateDir() / "initial-admin-password", ec)) {
    done.push_back("the agent's random first password removed");
  }
  if (manifest.hostname &&
      writeIfChanged(box.paths.under("/etc/hostname"), *manifest.hostname + "\n", 0644)) {
    done.push_back("host name " + *manifest.hostname);
  }
  if (!manifest.ntpServers.empty()) {
    std::string sources = "# Written by aibox-provision at the factory.\n";
    for (const auto& server : manifest.ntpServers) {
      sources += "server " + server + " iburst\n";
    }
    if (writeIfChanged(box.paths.under("/etc/chrony/sources.d/aibox.sources"), sources, 0644)) {
      done.push_back(std::to_string(manifest.ntpServers.size()) + " NTP server(s)");
    }
  }
  for (const auto& nic : manifest.interfaces) {
    if (writeIfChanged(box.paths.under("/etc/systemd/network/10-aibox-" + nic.name + ".network"),
                       networkFile(nic), 0644)) {
      done.push_back("network " + nic.name + (nic.dhcp ? " (DHCP)" : " " + nic.address));
    }
  }
  auto config = readText(box.paths.configFile());
  if (config && writeIfChanged(box.dir / "factory-aibox.conf", *config, 0640)) {
    done.push_back("factory config kept for a factory reset");
  }
  r.alreadyDone = done.empty();
  if (done.empty()) {
    r.message = "already done: admin '" + manifest.adminName + "' and the settings are in place";
  } else {
    for (const auto& d : done) {
      r.message += (r.message.empty() ? "" : "; ") + d;
    }
  }
  r.details["admin"] = manifest.adminName;
  return r;
}

}  // namespace aibox::provisioning
