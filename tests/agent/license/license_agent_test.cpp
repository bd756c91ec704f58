// Licensing through the real agent on a fake machine (DMI, boot disk and NIC files under the
// root, GPUs from the fake NVML): install, refusals that keep the old license, every byte
// flipped, replaced parts, grace and its end, a clock set back (libfaketime), the limits; and
// the vendor's aibox-license tool, checked by a foreign verifier (Python and openssl).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <cstdlib>
#include <thread>

#include "common/json/json.hpp"
#include "common/time/time.hpp"
#include "tests/agent/license/fake_box.hpp"
#include "tests/support/gguf_writer.hpp"
#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

boost::json::object parse(const std::string& body) {
  return boost::json::parse(body).as_object();
}

std::string gpusJson(const std::vector<std::string>& uuids) {
  boost::json::array gpus;
  for (std::size_t i = 0; i < uuids.size(); ++i) {
    gpus.push_back(boost::json::object{{"name", "NVIDIA H100"},
                                       {"uuid", uuids[i]},
                                       {"serial", "132" + std::to_string(i)},
                                       {"pci_bus_id", "00000000:1" + std::to_string(i) + ":00.0"}});
  }
  return json::serialize(boost::json::object{{"gpus", gpus}});
}

class License : public ::testing::Test {
 protected:
  License() {
    box.write(root.path());
    writeGpus();
    ::setenv("AIBOX_FAKE_NVML", (root.path() / "nvml.json").c_str(), 1);
    start();
  }
  ~License() override { ::unsetenv("AIBOX_FAKE_NVML"); }

  void writeGpus() { writeFile(root.path() / "nvml.json", gpusJson(gpus)); }

  void start(std::vector<std::string> extra = {}) {
    agent.reset();
    std::vector<std::string> args{
        "--hardware.sources=nvml", std::string("--hardware.nvml_library=") + FAKE_NVML,
        "--models.import_dirs=" + root.path().string(), "--models.reserve_bytes=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    agent = std::make_unique<Agent>(root.path(), AgentOptions{.args = args});
    // The GPUs count once NVML has reported.
    for (int i = 0; i < 100 && show().at("fingerprint").at("gpus_pending").as_bool(); ++i) {
      std::this_thread::sleep_for(50ms);
    }
  }

  boost::json::object show() { return parse(viaSocket(*agent, {.path = "/api/v1/license"}).body); }
  HttpReply install(const std::string& text) {
    return viaSocket(*agent, {.method = "PUT", .path = "/api/v1/license", .body = text});
  }
  std::vector<std::string> components() {
    auto fp = parse(viaSocket(*agent, {.path = "/api/v1/license/fingerprint"}).body);
    std::vector<std::string> out;
    for (const auto& c : fp.at("components").as_array()) {
      out.emplace_back(c.as_string());
    }
    return out;
  }
  std::string state() { return std::string(show().at("state").as_string()); }
  bool eventSaying(const std::string& text) {
    auto l = show();
    for (const auto& e : l.at("events").as_array()) {
      if (std::string(e.at("message").as_string()).find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  TempDir root;
  FakeBox box;
  std::vector<std::string> gpus{"GPU-11111111-2222-3333-4444-555555555555",
                                "GPU-66666666-7777-8888-9999-000000000000"};
  std::unique_ptr<Agent> agent;
};

TEST_F(License, AFreshBoxIsManagedButRunsNothing) {
  auto l = show();
  EXPECT_EQ(l.at("state").as_string(), "none");
  EXPECT_FALSE(l.at("instances_allowed").as_bool());
  EXPECT_TRUE(l.at("license").is_null());
  EXPECT_TRUE(l.at("test_key_trusted").as_bool());
  EXPECT_EQ(components().size(), 6u);
  auto metrics = viaSocket(*agent, {.path = "/metrics"}).body;
  EXPECT_NE(metrics.find("aibox_license_state{state=\"none\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("aibox_license_state{state=\"valid\"} 0"), std::string::npos);
  EXPECT_NE(agent->log().find("trusts the test license key"), std::string::npos);
}

TEST_F(License, InstalledKeptAtomicallySurvivesARestartAndIsAudited) {
  auto reply = install(issueLicense(components(), {{"entitlements", {{"max_gpus", 8}}}}));
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto l = parse(reply.body);
  EXPECT_EQ(l.at("state").as_string(), "valid");
  EXPECT_EQ(l.at("license").at("id").as_string(), "LIC-TEST-1");
  EXPECT_EQ(l.at("entitlements").at("max_gpus").as_int64(), 8);
  EXPECT_TRUE(l.at("entitlements").at("max_models").is_null());
  EXPECT_EQ(l.at("fingerprint").at("matched").as_int64(), 6);
  EXPECT_EQ(l.at("fingerprint").at("needed").as_int64(), 5);
  EXPECT_GT(l.at("seconds_to_expiry").as_int64(), 364 * 86400);
  auto file = root.path() / "var/lib/aibox/license/aibox.lic";
  ASSERT_TRUE(stdfs::exists(file));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  auto metrics = viaSocket(*agent, {.path = "/metrics"}).body;
  EXPECT_NE(metrics.find("aibox_license_state{state=\"valid\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("aibox_license_expiry_seconds 3"), std::string::npos) << metrics;
  auto audit = viaSocket(*agent, {.path = "/api/v1/audit"}).body;
  EXPECT_NE(audit.find("/api/v1/license"), std::string::npos);
  EXPECT_NE(audit.find("LIC-TEST-1"), std::string::npos);

  start();
  EXPECT_EQ(state(), "valid");
  EXPECT_TRUE(eventSaying("LIC-TEST-1 for Example Corp installed"));
}

TEST_F(License, RefusedFilesSayWhyAndKeepTheOldLicense) {
  auto parts = components();
  ASSERT_EQ(install(issueLicense(parts, {{"id", "LIC-OLD"}})).status, 200);
  auto now = unixNow();
  struct Case {
    std::string name;
    std::string text;
    std::string says;
  };
  auto other = [] {
    auto key = run({"openssl", "genpkey", "-algorithm", "ed25519"});
    return key.out;
  }();
  std::vector<Case> cases{
      {"expired",
       issueLicense(
           parts, {{"not_before", "2020-01-01T00:00:00Z"}, {"not_after", "2021-01-01T00:00:00Z"}}),
       "grace period has ended"},
      {"not yet valid", issueLicense(parts, {{"not_before", time::isoTime(now + 10 * 86400)}}),
       "valid from"},
      {"another box", issueLicense({"nic:" + std::string(64, 'a'), "gpu:" + std::string(64, 'b')}),
       "bound to another machine: 0 of 2"},
      {"another key", issueLicense(parts, {}, 0, other), "does not trust"},
      {"not JSON", "hello", "not JSON"},
      {"empty", "", "not JSON"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto reply = install(c.text);
    EXPECT_EQ(reply.status, 400) << reply.body;
    EXPECT_NE(reply.body.find(c.says), std::string::npos) << reply.body;
    EXPECT_NE(reply.body.find("invalid_license"), std::string::npos);
  }
  auto l = show();
  EXPECT_EQ(l.at("state").as_string(), "valid");
  EXPECT_EQ(l.at("license").at("id").as_string(), "LIC-OLD");
}

TEST_F(License, EveryByteOfASmallLicenseFlippedIsRefused) {
  // The smallest useful license: one part, no entitlements.
  auto parts = components();
  auto text = issueLicense({parts.back()}, {{"id", "L"}, {"customer", "C"}});
  int refused = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto flipped = text;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    auto reply = install(flipped);
    EXPECT_EQ(reply.status, 400) << "offset " << i << ": " << reply.body;
    refused += reply.status == 400 ? 1 : 0;
  }
  EXPECT_EQ(refused, static_cast<int>(text.size()));
  EXPECT_EQ(state(), "none");
  EXPECT_EQ(install(text).status, 200);
}

TEST_F(License, OneReplacedPartKeepsTheBoxLicensedTwoDoNot) {
  ASSERT_EQ(install(issueLicense(components())).status, 200);
  gpus[1] = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";  // an RMA'd GPU
  writeGpus();
  std::this_thread::sleep_for(1500ms);  // the next NVML poll
  auto one = show();
  EXPECT_EQ(one.at("state").as_string(), "valid");
  EXPECT_EQ(one.at("fingerprint").at("matched").as_int64(), 5);
  box.mac = "3c:ec:ef:00:00:99";  // and a new NIC
  box.write(root.path());
  auto two = show();
  EXPECT_EQ(two.at("state").as_string(), "invalid");
  EXPECT_EQ(two.at("reason").as_string(), "fingerprint");
  EXPECT_FALSE(two.at("instances_allowed").as_bool());
}

TEST_F(License, GraceWorksWithAWarningAndItsEndIsAnEvent) {
  auto now = unixNow();
  auto grace = install(issueLicense(components(), {{"not_before", time::isoTime(now - 40 * 86400)},
                                                   {"not_after", time::isoTime(now - 86400)},
                                                   {"grace_days", 14}}));
  ASSERT_EQ(grace.status, 200) << grace.body;
  auto l = parse(grace.body);
  EXPECT_EQ(l.at("state").as_string(), "grace");
  EXPECT_TRUE(l.at("instances_allowed").as_bool());
  EXPECT_NE(std::string(l.at("message").as_string()).find("13 days"), std::string::npos)
      << l.at("message");
  EXPECT_TRUE(eventSaying("license grace"));

  // A license that ends in two seconds with no grace: the agent sees it end on its own.
  auto ending = install(issueLicense(
      components(),
      {{"id", "LIC-SHORT"}, {"not_after", time::isoTime(now + 2)}, {"grace_days", 0}}));
  ASSERT_EQ(ending.status, 200) << ending.body;
  for (int i = 0; i < 100 && state() != "expired"; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(state(), "expired");
  // The agent's own timer raises the event (within a second or two of the end).
  for (int i = 0; i < 50 && !eventSaying("Model instances may no longer run"); ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(eventSaying("Model instances may no longer run"));
  EXPECT_NE(agent->log().find("license expired"), std::string::npos);
}

TEST_F(License, AClockSetBackCountsAsExpiredUntilItIsRight) {
  ASSERT_EQ(install(issueLicense(components())).status, 200);
  agent.reset();
  // Three days back, with libfaketime under the agent.
  ::setenv("LD_PRELOAD", FAKETIME_LIB, 1);
  ::setenv("FAKETIME", "-3d", 1);
  ::setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
  start();
  ::unsetenv("LD_PRELOAD");
  ::unsetenv("FAKETIME");
  auto l = show();
  EXPECT_EQ(l.at("state").as_string(), "invalid");
  EXPECT_EQ(l.at("reason").as_string(), "clock_rollback");
  EXPECT_NE(std::string(l.at("message").as_string()).find("behind the latest time"),
            std::string::npos);
  EXPECT_TRUE(eventSaying("behind the latest time"));
  // The mark did not move back with the clock.
  start();
  EXPECT_EQ(state(), "valid");
}

TEST_F(License, AClockBehindTheSecondCopyOfTheMarkIsCaughtToo) {
  ASSERT_EQ(install(issueLicense(components())).status, 200);
  agent.reset();
  // As if the database had been put back from an old backup: the file keeps the later time.
  writeFile(root.path() / "var/lib/aibox/license/clock", std::to_string(unixNow() + 5 * 86400));
  start();
  EXPECT_EQ(show().at("reason").as_string(), "clock_rollback");
}

TEST_F(License, LimitsNameTheLimitAndTheNumbers) {
  auto model = [this](const std::string& name) {
    GgufWriter w;
    w.string("general.architecture", "llama")
        .string("general.name", name)
        .u32("llama.block_count", 1)
        .u32("llama.context_length", 512)
        .u32("llama.embedding_length", 64)
        .u32("llama.attention.head_count", 4);
    w.tensor("token_embd.weight", {64, 10 + name.size()}, kGgmlF32);
    auto path = root.path() / (name + ".gguf");
    writeFile(path, w.bytes());
    return viaSocket(*agent,
                     {.method = "POST",
                      .path = "/api/v1/models",
                      .body = R"({"source":")" + path.string() + R"(","name":")" + name + "\"}"});
  };
  // Without a license the store is managed as usual.
  ASSERT_EQ(model("first").status, 202);
  ASSERT_EQ(install(issueLicense(components(), {{"entitlements", {{"max_models", 2}}}})).status,
            200);
  EXPECT_EQ(model("second").status, 202);
  auto third = model("third");
  EXPECT_EQ(third.status, 403) << third.body;
  EXPECT_NE(third.body.find("license_limit"), std::string::npos);
  EXPECT_NE(third.body.find("allows 2 models; this would make 3"), std::string::npos) << third.body;
  auto l = show();
  EXPECT_EQ(l.at("usage").at("models").as_int64(), 2);
}

TEST_F(License, AiboxctlShowsInstallsAndPrintsTheFingerprint) {
  auto ctl = [this](std::vector<std::string> args) {
    args.insert(args.begin(), {AIBOX_CTL_BIN, "--root", root.path().string()});
    return run(args);
  };
  auto none = ctl({"license", "show"});
  EXPECT_EQ(none.exitCode, 0) << none.err;
  EXPECT_NE(none.out.find("State  none"), std::string::npos) << none.out;
  auto fp = ctl({"--json", "license", "fingerprint"});
  ASSERT_EQ(fp.exitCode, 0);
  writeFile(root.path() / "fp.json", fp.out);
  auto table = ctl({"license", "fingerprint"});
  EXPECT_NE(table.out.find("boot_disk"), std::string::npos);
  EXPECT_NE(table.out.find("nvme0n1"), std::string::npos);

  // The vendor's tool issues from what the box printed.
  writeFile(root.path() / "key.pem", testVendorKey());
  writeFile(root.path() / "request.json",
            R"({"id":"LIC-CLI","customer":"Example Corp","days":30,"grace_days":7,)"
            R"("entitlements":{"max_instances":2,"modules":["gateway"]}})");
  auto issued =
      run({AIBOX_LICENSE_BIN, "issue", "--key", (root.path() / "key.pem").string(), "--request",
           (root.path() / "request.json").string(), "--fingerprint",
           (root.path() / "fp.json").string(), "--out", (root.path() / "box.lic").string()});
  ASSERT_EQ(issued.exitCode, 0) << issued.err;
  auto installed = ctl({"license", "install", (root.path() / "box.lic").string()});
  EXPECT_EQ(installed.exitCode, 0) << installed.err;
  EXPECT_NE(installed.out.find("license installed"), std::string::npos);
  EXPECT_NE(installed.out.find("Instances    0 of 2"), std::string::npos) << installed.out;
  EXPECT_NE(installed.out.find("Modules      gateway"), std::string::npos);
  auto json = parse(ctl({"--json", "license", "show"}).out);
  EXPECT_EQ(json.at("license").at("id").as_string(), "LIC-CLI");
  auto bad = ctl({"license", "install", (root.path() / "fp.json").string()});
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_NE(bad.err.find("not a license file"), std::string::npos) << bad.err;
  EXPECT_EQ(ctl({"license", "frob"}).exitCode, 2);
  EXPECT_EQ(ctl({"license", "install", "/nonexistent"}).exitCode, 1);
}

TEST(LicenseTool, KeygenIssueVerifyAndAForeignVerifier) {
  TempDir dir;
  auto d = dir.path();
  auto keygen = run({AIBOX_LICENSE_BIN, "keygen", "--out", (d / "vendor").string()});
  ASSERT_EQ(keygen.exitCode, 0) << keygen.err;
  struct stat st {};
  ASSERT_EQ(::stat((d / "vendor.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(run({AIBOX_LICENSE_BIN, "keygen", "--out", (d / "vendor").string()}).exitCode, 1);

  FakeBox box;
  box.write(d / "box");
  auto fp = run({AIBOX_LICENSE_BIN, "fingerprint", "--root", (d / "box").string(), "--nvml",
                 "/nonexistent/libnvidia-ml.so.1"});
  ASSERT_EQ(fp.exitCode, 0) << fp.err;
  EXPECT_EQ(parse(fp.out).at("components").as_array().size(), 4u) << fp.out;
  writeFile(d / "fp.json", fp.out);
  writeFile(d / "request.json", R"({"id":"LIC-9","customer":"Example Corp","days":10})");
  auto issued = run({AIBOX_LICENSE_BIN, "issue", "--key", (d / "vendor.key").string(), "--request",
                     (d / "request.json").string(), "--fingerprint", (d / "fp.json").string(),
                     "--out", (d / "box.lic").string()});
  ASSERT_EQ(issued.exitCode, 0) << issued.err;

  // Its own key verifies it; the keys built in do not know it.
  auto own = run({AIBOX_LICENSE_BIN, "verify", (d / "box.lic").string(), "--pub",
                  (d / "vendor.pub").string(), "--fingerprint", (d / "fp.json").string()});
  EXPECT_EQ(own.exitCode, 0) << own.out << own.err;
  EXPECT_NE(own.out.find("Signature       valid"), std::string::npos);
  EXPECT_NE(own.out.find("On that box     valid"), std::string::npos);
  auto builtIn = run({AIBOX_LICENSE_BIN, "verify", (d / "box.lic").string()});
  EXPECT_EQ(builtIn.exitCode, 1);
  EXPECT_NE(builtIn.out.find("does not trust"), std::string::npos);
  auto shown = run({AIBOX_LICENSE_BIN, "show", (d / "box.lic").string()});
  EXPECT_EQ(shown.exitCode, 0);
  EXPECT_NE(shown.out.find("Bound to        3 of 4 machine parts"), std::string::npos) << shown.out;

  // docs/licensing.md: a third party verifies with any RFC 8785 encoder and openssl.
  auto canonical =
      run({"python3", "-c",
           "import json,sys; d=json.load(open(sys.argv[1])); "
           "open(sys.argv[2],'w').write(json.dumps(d['license'],sort_keys=True,"
           "separators=(',',':'),ensure_ascii=False)); "
           "open(sys.argv[3],'wb').write(bytes.fromhex(d['signature']['value']))",
           (d / "box.lic").string(), (d / "signed.json").string(), (d / "sig.bin").string()});
  ASSERT_EQ(canonical.exitCode, 0) << canonical.err;
  auto foreign =
      run({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", (d / "vendor.pub").string(),
           "-rawin", "-in", (d / "signed.json").string(), "-sigfile", (d / "sig.bin").string()});
  EXPECT_EQ(foreign.exitCode, 0) << foreign.out << foreign.err;
  EXPECT_NE(foreign.out.find("Signature Verified Successfully"), std::string::npos);

  EXPECT_EQ(run({AIBOX_LICENSE_BIN}).exitCode, 2);
  EXPECT_EQ(run({AIBOX_LICENSE_BIN, "issue", "--key"}).exitCode, 2);
  EXPECT_EQ(run({AIBOX_LICENSE_BIN, "frob"}).exitCode, 2);
  EXPECT_EQ(run({AIBOX_LICENSE_BIN, "--help"}).exitCode, 0);
}

}  // namespace
}  // namespace aibox::test
