// agent/license and the vendor's issuing (provisioning/license): canonical form, signing and
// verification, the fingerprint on a fake machine with k of n matching, the states.
#include "agent/license/license.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <future>

#include "common/db/db.hpp"
#include "common/json/json.hpp"
#include "provisioning/license/issue.hpp"
#include "tests/agent/license/fake_box.hpp"
#include "tests/support/files.hpp"

namespace aibox::test {
namespace {

namespace lic = agent::license;

std::string canonicalOf(std::string_view text) {
  std::string problem;
  auto out = lic::canonical(boost::json::parse(text), problem);
  return out ? *out : "error: " + problem;
}

TEST(LicenseCanonical, SortsKeysDropsWhitespaceAndEscapesAsRfc8785) {
  EXPECT_EQ(canonicalOf(R"({ "b": [1, true, null], "a": {"z": "x", "y": -3} })"),
            R"({"a":{"y":-3,"z":"x"},"b":[1,true,null]})");
  EXPECT_EQ(canonicalOf(R"({"s": "q\"b\\ \n\t\u0001 é €"})"),
            "{\"s\":\"q\\\"b\\\\ \\n\\t\\u0001 é €\"}");
  EXPECT_EQ(canonicalOf(R"({"s": "\u00e9\/"})"), "{\"s\":\"é/\"}");
  EXPECT_EQ(canonicalOf(R"({"s": "\b\f\r\u001f\u007f"})"), "{\"s\":\"\\b\\f\\r\\u001f\x7f\"}");
  // Byte order of ASCII keys: upper case before lower case, "a" before "ab".
  EXPECT_EQ(canonicalOf(R"({"ab":1,"a":2,"B":3})"), R"({"B":3,"a":2,"ab":1})");
  EXPECT_EQ(canonicalOf(R"({"n": 1.5})").substr(0, 6), "error:");
  EXPECT_EQ(canonicalOf(R"({"é": 1})").substr(0, 6), "error:");
}

std::vector<std::string> boxComponents(const lic::Fingerprint& fp) {
  std::vector<std::string> out;
  for (const auto& c : fp.components) {
    out.push_back(c.id());
  }
  return out;
}

TEST(LicenseFingerprint, ReadsEveryPartOfAFakeMachine) {
  TempDir root;
  FakeBox box;
  box.write(root.path());
  auto fp = lic::readFingerprint(root.path(), {"GPU-aaaa", "GPU-bbbb"});
  ASSERT_EQ(fp.components.size(), 6u) << fp.missing.size();
  EXPECT_TRUE(fp.missing.empty());
  std::vector<std::string> kinds;
  for (const auto& c : fp.components) {
    kinds.push_back(c.kind + "/" + c.label);
    EXPECT_EQ(c.hash.size(), 64u);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"dmi_product_uuid/product_uuid",
                                             "dmi_board_serial/board_serial", "gpu/GPU 0",
                                             "gpu/GPU 1", "boot_disk/nvme0n1", "nic/eno1"}));
  // Nothing of the raw values leaves the box.
  auto text = json::serialize(lic::fingerprintJson(fp));
  for (const auto& raw :
       {box.productUuid, box.boardSerial, box.diskSerial, box.mac, std::string("GPU-aaaa")}) {
    EXPECT_EQ(text.find(raw), std::string::npos) << raw;
  }
  // The same machine read again gives the same fingerprint.
  EXPECT_EQ(boxComponents(lic::readFingerprint(root.path(), {"GPU-aaaa", "GPU-bbbb"})),
            boxComponents(fp));
}

TEST(LicenseFingerprint, PlaceholdersAndMissingPartsAreNamedNotHashed) {
  TempDir root;
  writeFile(root.path() / "sys/class/dmi/id/product_uuid",
            "03000200-0400-0500-0006-000700080009\n");
  writeFile(root.path() / "sys/class/dmi/id/board_serial", "To be filled by O.E.M.\n");
  auto fp = lic::readFingerprint(root.path(), {});
  EXPECT_TRUE(fp.components.empty());
  ASSERT_EQ(fp.missing.size(), 4u);
  EXPECT_NE(fp.missing[0].find("not set by the firmware"), std::string::npos);
  EXPECT_NE(fp.missing[2].find("boot_disk"), std::string::npos);
  // A copy the agent's unit made for an unprivileged agent is read when sysfs is not.
  writeFile(root.path() / "sys/class/dmi/id/product_uuid", "");
  writeFile(root.path() / "run/aibox/dmi/product_uuid", "4C4C4544-0042-3510-8052-B4C04F4E3332\n");
  auto copied = lic::readFingerprint(root.path(), {});
  ASSERT_EQ(copied.components.size(), 1u);
  FakeBox box;
  TempDir other;
  box.write(other.path());
  // Case does not matter: the same UUID as the fake box's.
  EXPECT_EQ(copied.components[0].id(), lic::readFingerprint(other.path(), {}).components[0].id());
}

TEST(LicenseFingerprint, SataDiskSerialComesFromUdev) {
  TempDir root;
  writeFile(root.path() / "proc/self/mountinfo", "26 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
  auto disk = root.path() / "sys/devices/pci0000:00/ata1/host0/target0:0:0/0:0:0:0/block/sda";
  writeFile(disk / "sda1/partition", "1\n");
  writeFile(disk / "dev", "8:0\n");
  std::filesystem::create_directories(root.path() / "sys/dev/block");
  std::filesystem::create_directory_symlink(disk / "sda1", root.path() / "sys/dev/block/8:1");
  writeFile(root.path() / "run/udev/data/b8:0",
            "E:ID_SERIAL=Samsung_SSD_870_S5Y1\nE:ID_SERIAL_SHORT=S5Y1NX0T\n");
  auto fp = lic::readFingerprint(root.path(), {});
  ASSERT_EQ(fp.components.size(), 1u);
  EXPECT_EQ(fp.components[0].kind, "boot_disk");
  EXPECT_EQ(fp.components[0].label, "sda");
}

struct Issued {
  TempDir root;
  FakeBox box;
  std::vector<std::string> gpus{"GPU-aaaa", "GPU-bbbb"};
  lic::Fingerprint fingerprint() const { return lic::readFingerprint(root.path(), gpus); }
};

lic::SignedLicense parsed(const std::string& text) {
  auto file = lic::parseFile(text);
  if (auto* problem = std::get_if<std::string>(&file)) {
    ADD_FAILURE() << *problem;
    return {};
  }
  return std::get<lic::SignedLicense>(file);
}

lic::Evaluation evaluateOn(const lic::SignedLicense& file, const lic::Fingerprint& fp,
                           std::int64_t now, std::int64_t highWater = 0) {
  return lic::evaluate(&file, lic::vendorKeys(), lic::matchCount(file.license, fp), now, highWater,
                       3600);
}

TEST(LicenseState, KOfNPartsKeepABoxLicensedAndACloneOut) {
  Issued m;
  m.box.write(m.root.path());
  auto file = parsed(issueLicense(boxComponents(m.fingerprint())));
  EXPECT_EQ(file.license.minMatch, 5);  // 6 parts: one may be replaced
  auto now = unixNow();
  EXPECT_EQ(evaluateOn(file, m.fingerprint(), now).state, lic::State::valid);

  m.gpus[1] = "GPU-cccc";  // a GPU replaced
  auto one = evaluateOn(file, m.fingerprint(), now);
  EXPECT_EQ(one.state, lic::State::valid);
  EXPECT_EQ(one.matched, 5u);

  m.box.mac = "3c:ec:ef:00:00:01";  // and the NIC
  m.box.write(m.root.path());
  auto two = evaluateOn(file, m.fingerprint(), now);
  EXPECT_EQ(two.state, lic::State::invalid);
  EXPECT_EQ(two.code, "fingerprint");
  EXPECT_NE(two.message.find("4 of 6"), std::string::npos) << two.message;

  // Another box of the same model: nothing matches.
  Issued clone;
  clone.box = {"4c4c4544-0000-0000-0000-000000000000", "CN0000", "S4EW000", "3c:ec:ef:99:99:99"};
  clone.gpus = {"GPU-xxxx", "GPU-yyyy"};
  clone.box.write(clone.root.path());
  EXPECT_EQ(evaluateOn(file, clone.fingerprint(), now).code, "fingerprint");
  // While NVML has not reported, the GPUs are given the benefit of the doubt.
  Issued pending;
  pending.box.write(pending.root.path());
  pending.gpus.clear();
  auto fp = pending.fingerprint();
  EXPECT_EQ(lic::matchCount(file.license, fp, true), 6u);
  EXPECT_EQ(lic::matchCount(file.license, fp, false), 4u);
}

TEST(LicenseState, DatesGraceAndTheClockHighWaterMark) {
  Issued m;
  m.box.write(m.root.path());
  auto parts = boxComponents(m.fingerprint());
  auto now = unixNow();
  auto day = std::int64_t{86400};
  auto file = parsed(issueLicense(parts, {{"days", 30}, {"grace_days", 7}}, now));
  EXPECT_EQ(evaluateOn(file, m.fingerprint(), now).state, lic::State::valid);
  EXPECT_EQ(evaluateOn(file, m.fingerprint(), now).nextChange, now + 30 * day);
  EXPECT_EQ(evaluateOn(file, m.fingerprint(), now - day).code, "not_yet_valid");
  auto grace = evaluateOn(file, m.fingerprint(), now + 31 * day);
  EXPECT_EQ(grace.state, lic::State::grace);
  EXPECT_NE(grace.message.find("6 days"), std::string::npos) << grace.message;
  EXPECT_EQ(evaluateOn(file, m.fingerprint(), now + 38 * day).state, lic::State::expired);
  // Set back past the tolerance: a rollback, whatever the dates say.
  auto rollback = evaluateOn(file, m.fingerprint(), now + day, now + 3 * day);
  EXPECT_EQ(rollback.code, "clock_rollback");
  // Within the tolerance, the mark is the time: turning the clock back wins nothing.
  auto late = evaluateOn(file, m.fingerprint(), now + 38 * day - 600, now + 38 * day);
  EXPECT_EQ(late.state, lic::State::expired);
  EXPECT_EQ(lic::evaluate(nullptr, lic::vendorKeys(), 0, now, 0, 0).state, lic::State::none);
}

TEST(LicenseSignature, AnotherKeyAnAlteredFieldOrAForeignFileFail) {
  std::vector<std::string> parts{"nic:" + std::string(64, 'a')};
  auto text = issueLicense(parts);
  auto good = parsed(text);
  EXPECT_FALSE(lic::verify(good, lic::vendorKeys()));

  auto other = provisioning::license::generateKey();
  auto foreign = parsed(issueLicense(parts, {}, 0, other.privatePem));
  auto problem = lic::verify(foreign, lic::vendorKeys());
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("does not trust"), std::string::npos);
  EXPECT_FALSE(lic::verify(
      foreign, std::vector<lic::PublicKey>{{*lic::keyId(other.publicPem), other.publicPem}}));
  // A key that claims another's id is still checked against the key itself.
  auto forged = foreign;
  forged.keyId = good.keyId;
  EXPECT_TRUE(lic::verify(forged, lic::vendorKeys()));

  auto altered = good;
  altered.license.document["customer"] = "Someone Else";
  EXPECT_TRUE(lic::verify(altered, lic::vendorKeys()));
  // Re-indenting the file does not matter: the canonical form is signed.
  auto reordered = boost::json::parse(text).as_object();
  EXPECT_FALSE(lic::verify(parsed(json::serialize(reordered)), lic::vendorKeys()));
}

TEST(LicenseSignature, EveryByteFlippedIsCaught) {
  std::vector<std::string> parts{"nic:" + std::string(64, 'a')};
  auto text = issueLicense(parts, {{"grace_days", 3}, {"entitlements", {{"max_models", 2}}}});
  auto now = unixNow();
  lic::Fingerprint fp;
  fp.components.push_back({"nic", "eno1", std::string(64, 'a')});
  ASSERT_EQ(evaluateOn(parsed(text), fp, now).state, lic::State::valid);
  for (unsigned char mask : {0x01, 0x20, 0x80}) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      auto flipped = text;
      flipped[i] = static_cast<char>(flipped[i] ^ mask);
      auto file = lic::parseFile(flipped);
      if (auto* f = std::get_if<lic::SignedLicense>(&file)) {
        EXPECT_NE(evaluateOn(*f, fp, now).state, lic::State::valid)
            << "offset " << i << " mask " << int(mask);
      }
    }
  }
}

TEST(LicenseParse, BadFilesSayWhatIsWrong) {
  auto problem = [](std::string_view text) {
    auto r = lic::parseFile(text);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : "";
  };
  EXPECT_NE(problem("").find("not JSON"), std::string::npos);
  EXPECT_NE(problem("{}").find("'license' and 'signature'"), std::string::npos);
  EXPECT_NE(problem(R"({"license":{},"signature":{"algorithm":"rsa","key_id":"x","value":"00"}})")
                .find("ed25519"),
            std::string::npos);
  auto text = issueLicense({"nic:" + std::string(64, 'a')});
  auto o = boost::json::parse(text).as_object();
  o["license"].as_object()["version"] = 2;
  EXPECT_NE(problem(json::serialize(o)).find("update the agent"), std::string::npos);
  o["license"].as_object()["version"] = 1;
  o["license"].as_object()["grace_days"] = 1.5;
  EXPECT_NE(problem(json::serialize(o)).find("grace_days"), std::string::npos);
  EXPECT_NE(problem(std::string(70 * 1024, ' ')).find("64 KiB"), std::string::npos);
}

TEST(LicenseIssue, RequestsAreCheckedBeforeSigning) {
  auto build = [](boost::json::object fields, std::vector<std::string> parts = {"nic:aa"}) {
    auto r =
        provisioning::license::buildDocument({std::move(fields), std::move(parts)}, 1'800'000'000);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : "ok";
  };
  EXPECT_EQ(build({{"id", "L"}, {"customer", "C"}, {"days", 10}}), "ok");
  EXPECT_NE(build({{"id", "L"}, {"customer", "C"}}).find("'days'"), std::string::npos);
  EXPECT_NE(build({{"id", "L"}, {"customer", "C"}, {"days", 10}, {"colour", "red"}}).find("colour"),
            std::string::npos);
  EXPECT_NE(build({{"id", "L"}, {"customer", "C"}, {"days", 10}}, {}).find("fingerprint"),
            std::string::npos);
  EXPECT_NE(
      build({{"id", "L"}, {"customer", "C"}, {"days", 10}, {"min_match", 3}}).find("min_match"),
      std::string::npos);
  EXPECT_NE(
      build({{"id", "L"}, {"customer", "C"}, {"days", 10}, {"entitlements", {{"max_gpus", -1}}}})
          .find("max_gpus"),
      std::string::npos);
  auto key = provisioning::license::generateKey();
  EXPECT_NE(key.privatePem.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(lic::keyId(key.publicPem));
  EXPECT_FALSE(lic::keyId(key.privatePem));
  auto bad = provisioning::license::signFile({}, "not a key");
  EXPECT_EQ(bad.index(), 1u);
}

// The service the agent runs: limits for the supervision and the gateway, installing, the
// clock mark kept in both places.
TEST(LicenseService, RefusesWhatTheLicenseDoesNotAllowAndKeepsTheMark) {
  TempDir dir;
  FakeBox box;
  box.write(dir.path());
  auto database = db::Database::open(dir.path() / "agent.db");
  const std::array kMigrations{db::Migration{1, "license", lic::kSchema}};
  db::migrate(database, kMigrations);
  db::Worker worker(std::move(database));
  boost::asio::io_context io;
  lic::Settings settings{dir.path() / "license/aibox.lic", dir.path() / "license/clock", 3600};
  lic::Service service(io, worker, settings, dir.path(), [] {
    return std::optional<std::vector<std::string>>(std::vector<std::string>{"GPU-1"});
  });
  service.start(0);
  io.run_for(std::chrono::milliseconds(50));

  auto none = service.refuse(lic::Limit::instances, 1);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 402);
  EXPECT_EQ(none->code, "license_required");
  EXPECT_FALSE(service.refuse(lic::Limit::models, 100));  // managing the store needs none
  EXPECT_FALSE(service.hasModule("gateway"));

  auto parts = boxComponents(lic::readFingerprint(dir.path(), {"GPU-1"}));
  auto installed = service.install(issueLicense(parts, {{"entitlements",
                                                         {{"max_instances", 2},
                                                          {"max_gpus", 4},
                                                          {"max_concurrency", 16},
                                                          {"modules", {"gateway"}}}}}));
  ASSERT_TRUE(std::holds_alternative<lic::Status>(installed)) << std::get<std::string>(installed);
  EXPECT_FALSE(service.refuse(lic::Limit::instances, 2));
  auto three = service.refuse(lic::Limit::instances, 3);
  ASSERT_TRUE(three);
  EXPECT_EQ(three->status, 403);
  EXPECT_TRUE(
      three->message.starts_with("the license allows 2 model instances; this would make 3."))
      << three->message;
  EXPECT_TRUE(service.refuse(lic::Limit::gpus, 5));
  EXPECT_FALSE(service.refuse(lic::Limit::models, 1000));  // no max_models: no limit
  EXPECT_EQ(service.maxConcurrency(), 16);
  EXPECT_TRUE(service.hasModule("gateway"));
  EXPECT_FALSE(service.hasModule("fleet"));
  // A refused install changes nothing.
  EXPECT_TRUE(std::holds_alternative<std::string>(service.install("{}")));
  EXPECT_EQ(service.status().file->license.id, "LIC-TEST-1");

  // The mark, in the database and the second file, once the worker has written it.
  service.stop();
  std::promise<std::int64_t> stored;
  worker.post([&stored](db::Database& d) { stored.set_value(lic::Service::storedHighWater(d)); });
  auto mark = stored.get_future().get();
  EXPECT_GE(mark, unixNow() - 60);
  EXPECT_EQ(std::stoll(readFile(dir.path() / "license/clock")), mark);
}

}  // namespace
}  // namespace aibox::test
