// aibox-provision on a fake box: the simulated hardware source, a fake DMI/sysfs tree (the
// license fingerprint's), a real model bundle, a license from the test vendor key, the real
// agent (stopped, or running beside the tool).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "agent/license/license.hpp"
#include "tests/agent/license/fake_box.hpp"
#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

namespace stdfs = std::filesystem;

std::vector<boost::json::object> lines(const std::string& out) {
  std::vector<boost::json::object> events;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    EXPECT_FALSE(ec) << "not a JSON line: " << line;
    if (!ec && v.is_object()) {
      events.push_back(v.as_object());
    }
  }
  return events;
}

std::string str(const boost::json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : boost::json::serialize(v);
}

class Provision : public ::testing::Test {
 protected:
  void SetUp() override {
    // The burn-in finds aibox-runtime on $PATH, as on a box.
    static const std::string path =
        stdfs::path(AIBOX_RUNTIME_BIN).parent_path().string() + ":" + std::getenv("PATH");
    ::setenv("PATH", path.c_str(), 1);
    root = dir.path() / "root";
    station = dir.path() / "station";
    FakeBox{}.write(root);
    writeFile(root / "sys/class/dmi/id/product_serial", "AB123456\n");
    writeFile(root / "proc/cpuinfo",
              "processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\nphysical id\t: 0\n"
              "processor\t: 1\nmodel name\t: AMD EPYC 9654 96-Core Processor\nphysical id\t: 1\n");
    writeFile(root / "proc/meminfo", "MemTotal:       1056000000 kB\nMemFree: 1000 kB\n");
    writeFile(root / "sys/block/nvme0n1/size", std::to_string((3840LL << 30) / 512) + "\n");
    writeFile(root / "sys/block/nvme0n1/device/model", "SAMSUNG MZQL23T8HCLS\n");
    writeFile(root / "sys/block/loop0/size", "100\n");
    writeFile(root / "sys/class/net/eno1/speed", "25000\n");
    writeFile(root / "etc/aibox/aibox.conf",
              "[hardware]\nsources = sim\n[models]\nimport_dirs = " + station.string() + "\n");
    stdfs::create_directories(station);
    auto ca = run({AIBOX_PROVISION_BIN, "ca", "init", "--key", (station / "ca.key").string(),
                   "--cert", (station / "ca.crt").string()});
    ASSERT_EQ(ca.exitCode, 0) << ca.err;
    EXPECT_EQ(stdfs::status(station / "ca.key").permissions() & stdfs::perms::all,
              stdfs::perms::owner_read | stdfs::perms::owner_write);
    // A bundle as the model store writes it: manifest.json, then the blob.
    auto gguf = station / "stage/model.gguf";
    stdfs::create_directories(gguf.parent_path());
    ASSERT_EQ(run({AIBOX_RUNTIME_BIN, "make-test-model", gguf.string()}).exitCode, 0);
    auto digest = sha256(gguf);
    stdfs::create_directories(station / "stage/blobs");
    stdfs::rename(gguf, station / ("stage/blobs/sha256-" + digest));
    writeFile(station / "stage/manifest.json",
              R"({"format":"aibox-model-bundle","version":1,"name":"tiny","tag":"latest",)"
              R"("files":[{"path":"model.gguf","sha256":")" +
                  digest + R"(","size":)" +
                  std::to_string(stdfs::file_size(station / ("stage/blobs/sha256-" + digest))) +
                  "}]}");
    auto tar = run({"tar", "--format=ustar", "-cf", bundle().string(), "-C",
                    (station / "stage").string(), "manifest.json", "blobs/sha256-" + digest});
    ASSERT_EQ(tar.exitCode, 0) << tar.err;
    burnInModel = station / "burn-in.gguf";
    ASSERT_EQ(run({AIBOX_RUNTIME_BIN, "make-test-model", burnInModel.string()}).exitCode, 0);
    // The license for this box, issued by the test vendor from its fingerprint (DMI, boot disk
    // and NIC: the simulated GPUs are not in it).
    auto fingerprint = agent::license::readFingerprint(root, {});
    std::vector<std::string> components;
    for (const auto& c : fingerprint.components) {
      components.push_back(c.id());
    }
    writeFile(station / "licenses/AB123456.lic", issueLicense(components));
  }

  static std::string sha256(const stdfs::path& file) {
    auto out = run({"sha256sum", file.string()}).out;
    return out.substr(0, 64);
  }
  stdfs::path bundle() const { return station / "tiny.tar"; }

  std::string manifest(const std::string& sku = R"({"name":"SIM-8G","cpu":{"model":"EPYC 9654",)"
                                                R"("count":2},"memory_gib":1000,"gpus":[{"model":)"
                                                R"("H20","count":8}],"disks":[{"count":1,)"
                                                R"("min_gib":3000}],"nics":{"count":1,)"
                                                R"("min_speed_mbps":25000},"psus":2,"fans":6,)"
                                                R"("ups":2})",
                       const std::string& extra = "") const {
    return R"({"version":1,"sku":)" + sku +
           R"(,"self_tests":{"iops_min":100,"iops_seconds":0.2,"sensors":true,"gpu_health":true,)"
           R"("ups_online":true,"burn_in":{"model":")" +
           burnInModel.string() +
           R"(","tokens":8,"min_tokens_per_second":1}},)"
           R"("factory_ca":{"certificate":")" +
           (station / "ca.crt").string() + R"(","key":")" + (station / "ca.key").string() +
           R"("},"license":{"dir":")" + (station / "licenses").string() +
           R"("},"models":[{"bundle":")" + bundle().string() + R"(","sha256":")" +
           sha256(bundle()) +
           R"(","name":"tiny"}],"admin":{"one_time_password":"label-secret-0042"},)"
           R"("network":{"hostname":"box-ab123456","interfaces":[{"name":"eno1","dhcp":true}]},)"
           R"("ntp":{"servers":["10.1.0.1","10.1.0.2"]})" +
           extra + "}";
  }

  CommandResult provision(const std::string& manifestText, std::vector<std::string> extra = {}) {
    writeFile(station / "manifest.json", manifestText);
    std::vector<std::string> argv{AIBOX_PROVISION_BIN,
                                  "run",
                                  "--manifest",
                                  (station / "manifest.json").string(),
                                  "--root",
                                  root.string(),
                                  "--station",
                                  "line-3"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv);
  }

  static const boost::json::object* end(const std::vector<boost::json::object>& events,
                                        const std::string& step) {
    for (const auto& e : events) {
      if (e.at("event") == "end" && str(e.at("step")) == step) {
        return &e;
      }
    }
    return nullptr;
  }
  static std::string status(const std::vector<boost::json::object>& events,
                            const std::string& step) {
    const auto* e = end(events, step);
    return e != nullptr ? str(e->at("status")) : "missing";
  }

  TempDir dir;
  stdfs::path root;
  stdfs::path station;
  stdfs::path burnInModel;
};

TEST_F(Provision, AMatchingBoxPassesEveryStepAndARunAfterItIsAlreadyDone) {
  auto first = provision(manifest());
  ASSERT_EQ(first.exitCode, 0) << first.out << first.err;
  auto events = lines(first.out);
  for (const char* step :
       {"inventory", "self_tests", "identity", "license", "models", "admin", "report"}) {
    EXPECT_EQ(status(events, step), "PASSED") << step << "\n" << first.out;
    bool started = std::any_of(events.begin(), events.end(), [step](const auto& e) {
      return e.at("event") == "start" && e.at("step") == step;
    });
    EXPECT_TRUE(started) << step;
  }
  EXPECT_EQ(str(events.back().at("event")), "done");
  EXPECT_EQ(str(events.back().at("status")), "PASSED");
  EXPECT_TRUE(std::any_of(events.begin(), events.end(),
                          [](const auto& e) { return e.at("event") == "progress"; }));

  // Identity: the device key is 0600 and the certificate is the factory CA's, for the serial.
  auto identity = root / "var/lib/aibox/identity";
  EXPECT_EQ(stdfs::status(identity / "device.key").permissions() & stdfs::perms::all,
            stdfs::perms::owner_read | stdfs::perms::owner_write);
  auto verify = run({"openssl", "verify", "-CAfile", (station / "ca.crt").string(),
                     (identity / "device.crt").string()});
  EXPECT_EQ(verify.exitCode, 0) << verify.out << verify.err;
  auto subject =
      run({"openssl", "x509", "-noout", "-subject", "-in", (identity / "device.crt").string()});
  EXPECT_NE(subject.out.find("CN = AB123456"), std::string::npos) << subject.out;
  EXPECT_EQ(readFile(identity / "serial"), "AB123456\n");
  EXPECT_EQ(readFile(root / "var/lib/aibox/license/aibox.lic"),
            readFile(station / "licenses/AB123456.lic"));
  EXPECT_EQ(readFile(root / "etc/hostname"), "box-ab123456\n");
  EXPECT_NE(readFile(root / "etc/chrony/sources.d/aibox.sources").find("server 10.1.0.2 iburst"),
            std::string::npos);
  EXPECT_NE(readFile(root / "etc/systemd/network/10-aibox-eno1.network").find("DHCP=yes"),
            std::string::npos);

  // The signed report verifies, with the factory CA too; a changed byte does not.
  auto report = run({AIBOX_PROVISION_BIN, "report", "--root", root.string(), "--verify", "--ca",
                     (station / "ca.crt").string()});
  EXPECT_EQ(report.exitCode, 0) << report.err;
  auto reportFile = root / "var/lib/aibox/provisioning/report.json";
  auto text = readFile(reportFile);
  auto parsed = boost::json::parse(text).as_object();
  EXPECT_EQ(parsed.at("report").at("serial"), "AB123456");
  EXPECT_EQ(parsed.at("report").at("station"), "line-3");
  EXPECT_EQ(parsed.at("report").at("status"), "PASSED");
  EXPECT_TRUE(parsed.at("report").at("fingerprint").as_object().contains("components"));
  // aibox-license reads the fingerprint from the report, for the vendor.
  auto fingerprint = run({AIBOX_LICENSE_BIN, "fingerprint", "--from-report", reportFile.string()});
  EXPECT_EQ(fingerprint.exitCode, 0) << fingerprint.err;

  // A re-run redoes nothing that is done: the same key and certificate, one model.
  auto keyBefore = readFile(identity / "device.key");
  auto certificateBefore = readFile(identity / "device.crt");
  auto again = provision(manifest());
  ASSERT_EQ(again.exitCode, 0) << again.out;
  auto second = lines(again.out);
  for (const char* step : {"self_tests", "identity", "license", "models", "admin"}) {
    ASSERT_NE(end(second, step), nullptr) << step;
    EXPECT_TRUE(end(second, step)->at("already_done").as_bool()) << step << "\n" << again.out;
    EXPECT_NE(str(end(second, step)->at("message")).find("already done"), std::string::npos);
  }
  EXPECT_EQ(readFile(identity / "device.key"), keyBefore);
  EXPECT_EQ(readFile(identity / "device.crt"), certificateBefore);

  for (auto [from, to] : {std::pair{std::string("line-3"), std::string("line-4")},
                          {std::string("\"PASSED\""), std::string("\"FAILED\"")}}) {
    auto changed = readFile(reportFile);
    auto at = changed.find(from);
    ASSERT_NE(at, std::string::npos);
    writeFile(reportFile, changed.replace(at, from.size(), to));
    auto tampered = run({AIBOX_PROVISION_BIN, "report", "--root", root.string(), "--verify"});
    EXPECT_EQ(tampered.exitCode, 1);
    EXPECT_NE(tampered.err.find("changed after it was signed"), std::string::npos) << tampered.err;
    writeFile(reportFile, text);
  }
  // Another CA's device is refused.
  ASSERT_EQ(run({AIBOX_PROVISION_BIN, "ca", "init", "--key", (station / "other.key").string(),
                 "--cert", (station / "other.crt").string()})
                .exitCode,
            0);
  auto other = run({AIBOX_PROVISION_BIN, "report", "--root", root.string(), "--verify", "--ca",
                    (station / "other.crt").string()});
  EXPECT_EQ(other.exitCode, 1);
  EXPECT_NE(other.err.find("not the factory CA's"), std::string::npos) << other.err;
}

TEST_F(Provision, EachKindOfMismatchFailsWithTheDifferenceAndTheOtherStepsStillRun) {
  struct Case {
    std::string sku;
    std::string check;
    std::string says;
  };
  std::vector<Case> cases{
      {R"({"name":"X","cpu":{"model":"Xeon","count":2}})", "inventory.cpu", "2 x 'AMD EPYC"},
      {R"({"name":"X","cpu":{"model":"EPYC","count":1}})", "inventory.cpu", "the SKU has 1"},
      {R"({"name":"X","memory_gib":2048})", "inventory.memory", "at least 2048 GiB"},
      {R"({"name":"X","gpus":[{"model":"H20","count":4}]})", "inventory.gpus", "not in the SKU"},
      {R"({"name":"X","gpus":[{"model":"H100","count":8}]})", "inventory.gpus", "'H100': 0 found"},
      {R"({"name":"X","disks":[{"count":2,"min_gib":1000}]})", "inventory.disks", "1 found"},
      {R"({"name":"X","disks":[{"count":1,"min_gib":7000}]})", "inventory.disks",
       "at least 7000 GiB: 0 found"},
      {R"({"name":"X","nics":{"count":1,"min_speed_mbps":100000}})", "inventory.nics", "0 found"},
      {R"({"name":"X","psus":3})", "inventory.psus", "PSUs: 2 found, the SKU has 3"},
      {R"({"name":"X","fans":8})", "inventory.fans", "fans: 6 found"},
      {R"({"name":"X","ups":1})", "inventory.ups", "UPSes: 2 found"},
  };
  for (const auto& c : cases) {
    auto result = provision(manifest(c.sku), {"--skip", "models,self_tests"});
    EXPECT_EQ(result.exitCode, 1) << c.sku;
    auto events = lines(result.out);
    EXPECT_EQ(status(events, "inventory"), "FAILED") << c.sku;
    const auto* inventory = end(events, "inventory");
    ASSERT_NE(inventory, nullptr);
    bool found = false;
    for (const auto& f : inventory->at("findings").as_array()) {
      if (str(f.at("check")) == c.check && !f.at("ok").as_bool() &&
          str(f.at("message")).find(c.says) != std::string::npos) {
        found = true;
      }
    }
    EXPECT_TRUE(found) << c.sku << "\n" << boost::json::serialize(*inventory);
    // The rest that can run still runs.
    EXPECT_EQ(status(events, "identity"), "PASSED") << result.out;
    EXPECT_EQ(status(events, "models"), "SKIPPED");
    EXPECT_EQ(str(events.back().at("status")), "FAILED");
  }
  // A self-test below its floor fails too, and the report says so.
  auto slow = provision(manifest(R"({"name":"X"})")
                            .replace(manifest(R"({"name":"X"})").find("\"iops_min\":100"), 14,
                                     "\"iops_min\":999999999"),
                        {"--only", "self_tests,report"});
  EXPECT_EQ(slow.exitCode, 1);
  EXPECT_EQ(status(lines(slow.out), "self_tests"), "FAILED") << slow.out;
  auto report = boost::json::parse(readFile(root / "var/lib/aibox/provisioning/report.json"));
  EXPECT_EQ(report.at("report").at("status"), "FAILED");
}

TEST_F(Provision, AWaiverNamedInTheManifestTurnsAFailureIntoWaived) {
  auto result = provision(manifest(R"({"name":"X","gpus":[{"model":"H20","count":4}],"fans":8})",
                                   R"(,"waivers":[{"check":"inventory.gpus","reason":)"
                                   R"("customer ordered 4, RMA 7781","by":"QA lead"}])"),
                          {"--only", "inventory"});
  EXPECT_EQ(result.exitCode, 1) << "the fans are not waived";
  auto waived =
      provision(manifest(R"({"name":"X","gpus":[{"model":"H20","count":4}]})",
                         R"(,"waivers":[{"check":"inventory.gpus","reason":"customer ordered 4",)"
                         R"("by":"QA lead"}])"),
                {"--only", "inventory"});
  EXPECT_EQ(waived.exitCode, 0) << waived.out;
  auto events = lines(waived.out);
  EXPECT_EQ(status(events, "inventory"), "WAIVED");
  EXPECT_EQ(status(events, "identity"), "SKIPPED");
  EXPECT_NE(boost::json::serialize(*end(events, "inventory")).find("customer ordered 4 (QA lead)"),
            std::string::npos);
}

TEST_F(Provision, ABadManifestGetsOneMessagePerErrorWithLineAndPathAndChangesNothing) {
  writeFile(station / "bad.json",
            "{\n"
            "  \"version\": 1,\n"
            "  \"sku\": {\"name\": \"X\", \"gpus\": [{\"model\": \"H20\", \"count\": 0}]},\n"
            "  \"factory_ca\": {\"certificate\": \"ca.crt\"},\n"
            "  \"models\": [{\"bundle\": \"/srv/m.tar\", \"sha256\": \"xyz\", \"name\": \"M\"}],\n"
            "  \"admin\": {\"one_time_password\": \"short\"},\n"
            "  \"waivers\": [{\"check\": \"inventory.gpu\", \"reason\": \"r\"}],\n"
            "  \"colour\": \"blue\"\n"
            "}\n");
  auto result = run({AIBOX_PROVISION_BIN, "run", "--manifest", (station / "bad.json").string(),
                     "--root", root.string()});
  EXPECT_EQ(result.exitCode, 2);
  for (const char* expected :
       {"bad.json:3: sku.gpus[0].count: must be a whole number >= 1",
        "bad.json:4: factory_ca.certificate: must be an absolute path",
        "bad.json:4: factory_ca.key: is required", "bad.json:5: models[0].sha256: must be 64",
        "bad.json:5: models[0].name: 'M' must be", "bad.json:6: admin.one_time_password: must be",
        "bad.json:7: waivers[0].check: 'inventory.gpu' is not a check",
        "bad.json:8: colour: is not a known field", "nothing was changed"}) {
    EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  }
  EXPECT_FALSE(stdfs::exists(root / "var/lib/aibox"));
  writeFile(station / "broken.json", "{\n  \"version\": 1,\n  \"sku\": {\n}\n");
  auto broken =
      run({AIBOX_PROVISION_BIN, "plan", "--manifest", (station / "broken.json").string()});
  EXPECT_EQ(broken.exitCode, 2);
  EXPECT_NE(broken.err.find("broken.json:5: not valid JSON"), std::string::npos) << broken.err;
}

TEST_F(Provision, ARunKilledInAnyStepResumesAndLeavesNothingHalfDone) {
  writeFile(station / "manifest.json", manifest());
  for (const char* step : {"self_tests", "identity", "license", "models", "admin", "report"}) {
    // Started, then killed as soon as the step begins.
    int pipeFds[2];
    ASSERT_EQ(::pipe(pipeFds), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(pipeFds[1], STDOUT_FILENO);
      ::close(pipeFds[0]);
      ::execl(AIBOX_PROVISION_BIN, AIBOX_PROVISION_BIN, "run", "--manifest",
              (station / "manifest.json").c_str(), "--root", root.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(pipeFds[1]);
    std::string seen;
    std::string marker = std::string(R"("event":"start","step":")") + step + "\"";
    char buffer[4096];
    for (ssize_t n; seen.find(marker) == std::string::npos &&
                    (n = ::read(pipeFds[0], buffer, sizeof buffer)) > 0;) {
      seen.append(buffer, static_cast<std::size_t>(n));
    }
    ::kill(pid, SIGKILL);
    ::close(pipeFds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_NE(seen.find(marker), std::string::npos) << step << "\n" << seen;
    auto resumed = provision(manifest());
    ASSERT_EQ(resumed.exitCode, 0) << "after a kill in " << step << ":\n" << resumed.out;
  }
  // One model, one admin, one good certificate.
  auto agent = std::make_unique<Agent>(root, AgentOptions{});
  auto models = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/models"}).body);
  ASSERT_EQ(models.at("models").as_array().size(), 1U);
  EXPECT_EQ(models.at("models").as_array()[0].at("state"), "ready");
  auto users = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/users"}).body);
  ASSERT_EQ(users.at("users").as_array().size(), 1U) << boost::json::serialize(users);
  EXPECT_EQ(run({"openssl", "verify", "-CAfile", (station / "ca.crt").string(),
                 (root / "var/lib/aibox/identity/device.crt").string()})
                .exitCode,
            0);
}

TEST_F(Provision, GpusAndTheirHealthComeFromNvml) {
  // The fake NVML's eight GPUs, one with uncorrected ECC errors and thermal slowdown.
  auto gpus = boost::json::parse(readFile(NVML_FIXTURE));
  auto& third = gpus.at("gpus").as_array().at(3).as_object();
  third["ecc_uncorrected"] = 2;
  third["throttle"] = 0x40;
  writeFile(station / "nvml.json", boost::json::serialize(gpus));
  ::setenv("AIBOX_FAKE_NVML", (station / "nvml.json").c_str(), 1);
  writeFile(root / "etc/aibox/aibox.conf",
            std::string("[hardware]\nsources = nvml\nnvml_library = ") + FAKE_NVML + "\n");
  auto text = manifest(R"({"name":"ADA-8G","gpus":[{"model":"RTX 6000 Ada","count":8}]})");
  auto result = provision(text, {"--only", "inventory,self_tests"});
  ::unsetenv("AIBOX_FAKE_NVML");
  EXPECT_EQ(result.exitCode, 1);
  auto events = lines(result.out);
  EXPECT_EQ(status(events, "inventory"), "PASSED") << result.out;
  std::string selfTests = boost::json::serialize(*end(events, "self_tests"));
  EXPECT_NE(selfTests.find("GPU 3 (NVIDIA RTX 6000 Ada Generation): 2 uncorrected ECC errors; "
                           "throttled: hw_thermal_slowdown"),
            std::string::npos)
      << selfTests;
  EXPECT_NE(selfTests.find("GPU 2 (NVIDIA RTX 6000 Ada Generation): healthy"), std::string::npos);
  // No UPS on this box: the UPS check says so.
  EXPECT_NE(selfTests.find("UPS: none found"), std::string::npos);
}

TEST_F(Provision, ExitCodeThreeWhenAnotherProvisioningHoldsTheLock) {
  stdfs::create_directories(root / "var/lib/aibox/provisioning");
  int fd = ::open((root / "var/lib/aibox/provisioning/.lock").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto result = provision(manifest());
  EXPECT_EQ(result.exitCode, 3);
  EXPECT_NE(result.out.find("another aibox-provision is running"), std::string::npos) << result.out;
  ::close(fd);
  if (::geteuid() != 0) {
    auto notRoot =
        run({AIBOX_PROVISION_BIN, "run", "--manifest", (station / "manifest.json").string()});
    EXPECT_EQ(notRoot.exitCode, 3);
  }
  EXPECT_EQ(run({AIBOX_PROVISION_BIN, "run", "--manifest", "/nonexistent.json"}).exitCode, 2);
}

TEST_F(Provision, ThroughARunningAgentAndAFactoryResetKeepsIdentityLicenseAndFactoryModels) {
  auto agent = std::make_unique<Agent>(root, AgentOptions{});
  auto result = provision(manifest());
  ASSERT_EQ(result.exitCode, 0) << result.out << result.err;
  auto events = lines(result.out);
  EXPECT_EQ(str(events.front().at("agent")), "running");
  auto system = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/system"}).body);
  EXPECT_EQ(system.at("provisioning").at("state"), "provisioned");
  EXPECT_EQ(system.at("provisioning").at("report").at("station"), "line-3");
  EXPECT_NE(str(system.at("device_certificate").at("subject")).find("CN=AB123456"),
            std::string::npos);
  auto license = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/license"}).body);
  EXPECT_EQ(license.at("state"), "valid") << boost::json::serialize(license);

  // The box in use: another user, an imported model, an API token.
  ASSERT_EQ(viaSocket(*agent, {.method = "POST",
                               .path = "/api/v1/users",
                               .body = R"({"name":"alice","role":"operator"})"})
                .status,
            201);
  stdfs::copy_file(burnInModel, station / "mine.gguf");
  auto import = viaSocket(*agent, {.method = "POST",
                                   .path = "/api/v1/models",
                                   .body = R"({"source":")" + (station / "mine.gguf").string() +
                                           R"(","name":"mine"})"});
  ASSERT_EQ(import.status, 202) << import.body;
  for (int i = 0; i < 100; ++i) {
    auto m = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/models/mine"}).body);
    if (m.at("state") == "ready") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto wrong = viaSocket(
      *agent,
      {.method = "POST", .path = "/api/v1/system/factory-reset", .body = R"({"confirm":"yes"})"});
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.body.find("serial number"), std::string::npos);

  auto reset = run({AIBOX_PROVISION_BIN, "reset", "--keep-identity", "--root", root.string()});
  ASSERT_EQ(reset.exitCode, 0) << reset.out << reset.err;
  // The agent restarted itself (same process) with a new one-time admin password.
  ASSERT_TRUE(agent->waitNotification("READY=1", std::chrono::seconds(20))) << agent->log();
  std::optional<boost::json::value> users;
  for (int i = 0; i < 100 && !users; ++i) {
    auto reply = viaSocket(*agent, {.path = "/api/v1/users"});
    if (reply.status == 200) {
      users = boost::json::parse(reply.body);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_TRUE(users);
  ASSERT_EQ(users->at("users").as_array().size(), 1U) << boost::json::serialize(*users);
  EXPECT_EQ(users->at("users").as_array()[0].at("name"), "admin");
  EXPECT_TRUE(users->at("users").as_array()[0].at("must_change_password").as_bool());
  EXPECT_TRUE(stdfs::exists(root / "var/lib/aibox/initial-admin-password"));
  auto models = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/models"}).body);
  ASSERT_EQ(models.at("models").as_array().size(), 1U);
  EXPECT_EQ(models.at("models").as_array()[0].at("name"), "tiny");
  license = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/license"}).body);
  EXPECT_EQ(license.at("state"), "valid");
  system = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/system"}).body);
  // After the restart the agent serves the device certificate.
  EXPECT_NE(str(system.at("tls").at("subject")).find("CN=AB123456"), std::string::npos)
      << boost::json::serialize(system.at("tls"));
  // The audit log was archived, and its chain still verifies.
  auto audit = boost::json::parse(viaSocket(*agent, {.path = "/api/v1/audit/verify"}).body);
  EXPECT_EQ(audit.at("problems").as_array().size(), 0U) << boost::json::serialize(audit);

  // With the agent stopped, the reset works on the database.
  agent.reset();
  auto offline =
      run({AIBOX_PROVISION_BIN, "reset", "--keep-identity", "--root", root.string(), "--json"});
  ASSERT_EQ(offline.exitCode, 0) << offline.out << offline.err;
  EXPECT_EQ(str(lines(offline.out).at(0).at("through")), "database");
  EXPECT_TRUE(stdfs::exists(root / "var/lib/aibox/identity/device.key"));
  EXPECT_TRUE(stdfs::exists(root / "var/lib/aibox/license/aibox.lic"));
}

}  // namespace
}  // namespace aibox::test
