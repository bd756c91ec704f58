// Step 4, license: the box's license file (given, or <dir>/<serial>.lic), checked against the
// vendor keys and the fingerprint inventory just measured, then installed by the agent's
// license service (through the agent when it runs).
#include <boost/asio/io_context.hpp>

#include "agent/license/license.hpp"
#include "provisioning/steps.hpp"

namespace aibox::provisioning {

namespace lic = agent::license;

StepResult licenseStep(Box& box, const Manifest& manifest) {
  StepResult r;
  if (!manifest.licenseFile && !manifest.licenseDir) {
    r.outcome = Outcome::skipped;
    r.message = "no license in the manifest";
    return r;
  }
  std::string serial = box.serial;
  if (serial.empty()) {
    serial = readText(box.paths.identityDir() / "serial").value_or("");
    serial.erase(serial.find_last_not_of("\r\n") + 1);
  }
  if (manifest.licenseDir && serial.empty()) {
    r.outcome = Outcome::failed;
    r.message = "the license is looked up by serial, and the box has none yet: run identity";
    return r;
  }
  auto file =
      manifest.licenseFile ? *manifest.licenseFile : *manifest.licenseDir / (serial + ".lic");
  r.details["file"] = file.string();
  auto text = readText(file);
  if (!text) {
    r.outcome = Outcome::failed;
    r.message =
        "cannot read the license " + file.string() +
        (manifest.licenseDir ? " (has the vendor issued it for serial " + serial + "?)" : "");
    return r;
  }
  auto parsed = lic::parseFile(*text);
  if (auto* problem = std::get_if<std::string>(&parsed)) {
    r.outcome = Outcome::failed;
    r.message = file.string() + " is not a license file: " + *problem;
    return r;
  }
  const auto& signedLicense = std::get<lic::SignedLicense>(parsed);
  if (auto problem = lic::verify(signedLicense, lic::vendorKeys())) {
    r.outcome = Outcome::failed;
    r.message = file.string() + ": " + *problem;
    return r;
  }
  auto matched = lic::matchCount(signedLicense.license, box.fingerprint);
  r.details["id"] = signedLicense.license.id;
  r.details["matched"] = matched;
  r.details["components"] = signedLicense.license.components.size();
  if (static_cast<std::int64_t>(matched) < signedLicense.license.minMatch) {
    r.outcome = Outcome::failed;
    r.message = "license " + signedLicense.license.id +
                " is for another machine: " + std::to_string(matched) + " of its " +
                std::to_string(signedLicense.license.components.size()) +
                " components are on this box and it needs " +
                std::to_string(signedLicense.license.minMatch) +
                " (issue it from this box's report fingerprint)";
    return r;
  }
  if (readText(box.settings.license.file) == *text) {
    r.alreadyDone = true;
    r.message = "already done: license " + signedLicense.license.id + " is installed";
    return r;
  }
  if (box.agent) {
    box.call("PUT", "/api/v1/license", *text);
  } else {
    box.database();  // migrated
    boost::asio::io_context io;
    std::int64_t highWater = lic::Service::storedHighWater(box.database());
    db::Worker worker(db::Database::open(box.paths.database()));
    lic::Service service(io, worker, box.settings.license, box.paths.root(),
                         [uuids = box.gpuUuids()] { return std::optional(uuids); });
    service.start(highWater);
    auto installed = service.install(*text);
    service.stop();
    if (auto* problem = std::get_if<std::string>(&installed)) {
      r.outcome = Outcome::failed;
      r.message = "license " + signedLicense.license.id + " refused: " + *problem;
      return r;
    }
  }
  r.message = "license " + signedLicense.license.id + " for " + signedLicense.license.customer +
              " installed (" + std::to_string(matched) + " of " +
              std::to_string(signedLicense.license.components.size()) + " components match)";
  return r;
}

}  // namespace aibox::provisioning
