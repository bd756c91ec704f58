// The model store through the real agent: imports from files and directories, dedupe, digest
// checks, verification, removal, bad requests, restart reconciliation, and aiboxctl models.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include "common/json/json.hpp"
#include "tests/support/gguf_writer.hpp"
#include "tests/support/http_file_server.hpp"
#include "tests/support/mount_sandbox.hpp"
#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

namespace stdfs = std::filesystem;

// A small llama GGUF: 2 blocks, 4 heads of 64, context 4096, Q4_K_M.
std::string llamaGguf(const std::string& name = "tiny") {
  GgufWriter w;
  w.string("general.architecture", "llama")
      .string("general.name", name)
      .u32("general.file_type", 15)
      .u32("llama.block_count", 2)
      .u32("llama.context_length", 4096)
      .u32("llama.embedding_length", 256)
      .u32("llama.attention.head_count", 4)
      .u32("llama.attention.head_count_kv", 4)
      .u32("llama.feed_forward_length", 256);
  w.tensor("token_embd.weight", {256, 100}, kGgmlQ4_K)
      .tensor("output.weight", {256, 100}, kGgmlQ6_K);
  return w.bytes();
}

// A GGUF of `mib` MiB of F32 weights.
std::string ggufOfMiB(int mib) {
  GgufWriter w;
  w.string("general.architecture", "llama")
      .u32("llama.block_count", 1)
      .u32("llama.context_length", 512)
      .u32("llama.embedding_length", 4096)
      .u32("llama.attention.head_count", 32);
  w.tensor("token_embd.weight", {4096, static_cast<std::uint64_t>(64 * mib)}, kGgmlF32);
  return w.bytes();
}

std::string sha256(const stdfs::path& file) {
  auto out = run({"sha256sum", file.string()}).out;
  return out.substr(0, 64);
}

boost::json::object parse(const std::string& body) {
  return boost::json::parse(body).as_object();
}

class ModelStore : public ::testing::Test {
 protected:
  ModelStore()
      : agent(std::make_unique<Agent>(
            root.path(), AgentOptions{.args = {"--models.import_dirs=" + usb.path().string(),
                                               "--models.reserve_bytes=0"}})) {}

  HttpReply import(const std::string& source, const std::string& name,
                   const std::string& extra = "") {
    return viaSocket(
        *agent, {.method = "POST",
                 .path = "/api/v1/models",
                 .body = R"({"source":")" + source + R"(","name":")" + name + "\"" + extra + "}"});
  }

  // Waits for the job to end and returns it.
  boost::json::object waitJob(const std::string& id) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (true) {
      auto job = parse(viaSocket(*agent, {.path = "/api/v1/jobs/" + id}).body);
      auto state = job.at("state").as_string();
      if ((state != "queued" && state != "running") ||
          std::chrono::steady_clock::now() > deadline) {
        return job;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  boost::json::object importAndWait(const std::string& source, const std::string& name,
                                    const std::string& extra = "") {
    auto reply = import(source, name, extra);
    EXPECT_EQ(reply.status, 202) << reply.body;
    return waitJob(std::string(parse(reply.body).at("job").at("id").as_string()));
  }

  boost::json::object model(const std::string& id) {
    auto reply = viaSocket(*agent, {.path = "/api/v1/models/" + id});
    EXPECT_EQ(reply.status, 200) << reply.body;
    return parse(reply.body);
  }

  stdfs::path blobs() const { return root.path() / "var/lib/aibox/models/blobs"; }
  std::size_t count(const stdfs::path& dir) const {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : stdfs::directory_iterator(dir)) {
      ++n;
    }
    return n;
  }

  TempDir root;
  TempDir usb;
  std::unique_ptr<Agent> agent;
};

TEST_F(ModelStore, ImportsAGgufFileWithItsMetadataAndDigest) {
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  auto job = importAndWait((usb.path() / "tiny.gguf").string(), "tiny");
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);
  EXPECT_EQ(job.at("bytes_done").as_int64(), job.at("bytes_total").as_int64());

  auto m = model("tiny");
  EXPECT_EQ(m.at("state").as_string(), "ready");
  EXPECT_EQ(m.at("tag").as_string(), "latest");
  EXPECT_EQ(m.at("format").as_string(), "gguf");
  EXPECT_EQ(m.at("architecture").as_string(), "llama");
  EXPECT_EQ(m.at("quantization").as_string(), "Q4_K_M");
  EXPECT_EQ(m.at("parameters").as_int64(), 2 * 256 * 100);
  EXPECT_EQ(m.at("context_length").as_int64(), 4096);
  // 2 (K, V) x 2 layers x 4096 tokens x 4 heads x 64 dims x 2 bytes
  EXPECT_EQ(m.at("memory").at("kv_cache_bytes").as_int64(), 2 * 2 * 4096 * 4 * 64 * 2);
  auto digest = sha256(usb.path() / "tiny.gguf");
  ASSERT_EQ(m.at("files").as_array().size(), 1u);
  EXPECT_EQ(m.at("files").at(0).at("sha256").as_string(), digest);
  auto blob = blobs() / ("sha256-" + digest);
  EXPECT_EQ(readFile(blob), readFile(usb.path() / "tiny.gguf"));
  struct stat st {};
  ASSERT_EQ(::stat(blob.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0440u);
  EXPECT_EQ(count(root.path() / "var/lib/aibox/models/partial"), 0u);
  auto listed = parse(viaSocket(*agent, {.path = "/api/v1/models"}).body);
  EXPECT_EQ(listed.at("models").as_array().size(), 1u);
}

TEST_F(ModelStore, ImportsASafetensorsDirectoryAsHardLinks) {
  auto dir = usb.path() / "qwen";
  writeFile(dir / "config.json",
            R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","num_hidden_layers":2,)"
            R"("hidden_size":64,"num_attention_heads":4,"num_key_value_heads":2,)"
            R"("max_position_embeddings":1024,"torch_dtype":"bfloat16","vocab_size":100})");
  std::string header =
      R"({"embed.weight":{"dtype":"BF16","shape":[100,64],"data_offsets":[0,12800]}})";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) {
    file[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  }
  writeFile(dir / "model.safetensors", file + header + std::string(12800, '\1'));
  auto job = importAndWait(dir.string(), "qwen", R"(,"tag":"bf16")");
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);
  auto m = model("qwen:bf16");
  EXPECT_EQ(m.at("format").as_string(), "safetensors");
  EXPECT_EQ(m.at("architecture").as_string(), "qwen2");
  EXPECT_EQ(m.at("parameters").as_int64(), 6400);
  EXPECT_EQ(m.at("files").as_array().size(), 2u);
  auto links = root.path() / "var/lib/aibox/models/links" / std::string(m.at("id").as_string());
  struct stat link {};
  struct stat blob {};
  ASSERT_EQ(::stat((links / "model.safetensors").c_str(), &link), 0);
  ASSERT_EQ(::stat((blobs() / ("sha256-" + sha256(dir / "model.safetensors"))).c_str(), &blob), 0);
  EXPECT_EQ(link.st_ino, blob.st_ino);  // a hard link, not a copy
  EXPECT_EQ(readFile(links / "config.json"), readFile(dir / "config.json"));
}

TEST_F(ModelStore, TheSameContentIsStoredOnceAndRemovedWithItsLastModel) {
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  ASSERT_EQ(importAndWait((usb.path() / "tiny.gguf").string(), "a").at("state").as_string(),
            "succeeded");
  ASSERT_EQ(importAndWait((usb.path() / "tiny.gguf").string(), "b").at("state").as_string(),
            "succeeded");
  EXPECT_EQ(count(blobs()), 1u);
  EXPECT_EQ(viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/models/a"}).status, 200);
  EXPECT_EQ(count(blobs()), 1u);
  EXPECT_EQ(viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/models/b:latest"}).status, 200);
  EXPECT_EQ(count(blobs()), 0u);
  EXPECT_EQ(viaSocket(*agent, {.path = "/api/v1/models/a"}).status, 404);
}

TEST_F(ModelStore, AWrongDigestFailsTheImportAndLeavesNothing) {
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  std::string wrong(64, 'a');
  auto job =
      importAndWait((usb.path() / "tiny.gguf").string(), "tiny", R"(,"sha256":")" + wrong + "\"");
  EXPECT_EQ(job.at("state").as_string(), "failed");
  auto error = std::string(job.at("error").as_string());
  EXPECT_NE(error.find("expected " + wrong), std::string::npos) << error;
  EXPECT_NE(error.find(sha256(usb.path() / "tiny.gguf")), std::string::npos) << error;
  EXPECT_EQ(viaSocket(*agent, {.path = "/api/v1/models/tiny"}).status, 404);
  EXPECT_EQ(count(blobs()), 0u);
  EXPECT_EQ(count(root.path() / "var/lib/aibox/models/partial"), 0u);
}

TEST_F(ModelStore, AFileThatIsNotAModelFailsWithTheReason) {
  writeFile(usb.path() / "notes.txt", "not a model at all\n");
  auto job = importAndWait((usb.path() / "notes.txt").string(), "notes");
  EXPECT_EQ(job.at("state").as_string(), "failed");
  EXPECT_NE(std::string(job.at("error").as_string()).find("GGUF"), std::string::npos)
      << json::serialize(job);
  EXPECT_EQ(count(blobs()), 0u);
}

TEST_F(ModelStore, BadRequestsAreRefusedAndChangeNothing) {
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  auto source = (usb.path() / "tiny.gguf").string();
  EXPECT_EQ(import("tiny.gguf", "x").status, 400);  // relative
  EXPECT_EQ(import((usb.path() / "missing.gguf").string(), "x").status, 400);
  auto outside = import("/etc/passwd", "x");
  EXPECT_EQ(outside.status, 400);
  EXPECT_NE(outside.body.find("import_dirs"), std::string::npos) << outside.body;
  auto escape = import((usb.path() / "../../etc/passwd").string(), "x");
  EXPECT_EQ(escape.status, 400) << escape.body;
  EXPECT_EQ(import(source, "Bad Name").status, 400);
  EXPECT_EQ(import(source, "x", R"(,"sha256":"xyz")").status, 400);
  EXPECT_EQ(import(source, "x", R"(,"colour":"red")").status, 400);
  EXPECT_EQ(import(source, "x", R"(,"labels":{"team":7})").status, 400);
  EXPECT_EQ(import(source, "x", R"(,"labels":{"Bad Key":"v"})").status, 400);
  ASSERT_EQ(importAndWait(source, "tiny").at("state").as_string(), "succeeded");
  EXPECT_EQ(import(source, "tiny").status, 409);
  EXPECT_EQ(viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/models/nope"}).status, 404);
  EXPECT_EQ(viaSocket(*agent, {.path = "/api/v1/jobs/nope"}).status, 404);
  auto listed = parse(viaSocket(*agent, {.path = "/api/v1/models"}).body);
  EXPECT_EQ(listed.at("models").as_array().size(), 1u);
  EXPECT_EQ(viaTls(*agent, {.path = "/api/v1/models"}).status, 401);
}

TEST_F(ModelStore, NotEnoughFreeSpaceIs507AndSaysWhatIsNeeded) {
  agent.reset();
  agent = std::make_unique<Agent>(
      root.path(), AgentOptions{.args = {"--models.import_dirs=" + usb.path().string(),
                                         "--models.reserve_bytes=1000000000000000"}});
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  auto reply = import((usb.path() / "tiny.gguf").string(), "tiny");
  EXPECT_EQ(reply.status, 507) << reply.body;
  EXPECT_NE(reply.body.find("reserve_bytes"), std::string::npos) << reply.body;
}

TEST_F(ModelStore, VerifyFindsACorruptBlob) {
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  ASSERT_EQ(importAndWait((usb.path() / "tiny.gguf").string(), "tiny").at("state").as_string(),
            "succeeded");
  auto verify = viaSocket(*agent, {.method = "POST", .path = "/api/v1/models/tiny/verify"});
  ASSERT_EQ(verify.status, 202) << verify.body;
  auto ok = waitJob(std::string(parse(verify.body).at("job").at("id").as_string()));
  EXPECT_EQ(ok.at("state").as_string(), "succeeded");
  EXPECT_FALSE(model("tiny").at("verified_at").is_null());

  auto blob = blobs() / ("sha256-" + sha256(usb.path() / "tiny.gguf"));
  ::chmod(blob.c_str(), 0640);
  auto bytes = readFile(blob);
  bytes[bytes.size() - 1] ^= 1;
  writeFile(blob, bytes);
  verify = viaSocket(*agent, {.method = "POST", .path = "/api/v1/models/tiny/verify"});
  auto bad = waitJob(std::string(parse(verify.body).at("job").at("id").as_string()));
  EXPECT_EQ(bad.at("state").as_string(), "failed");
  auto m = model("tiny");
  EXPECT_EQ(m.at("state").as_string(), "corrupt");
  EXPECT_NE(std::string(m.at("error").as_string()).find("tiny.gguf"), std::string::npos);
  auto events =
      parse(viaSocket(*agent, {.path = "/api/v1/hardware/events?subject=model:tiny:latest"}).body);
  ASSERT_EQ(events.at("events").as_array().size(), 1u) << json::serialize(events);
  EXPECT_EQ(events.at("events").at(0).at("type").as_string(), "model_corrupt");
  EXPECT_EQ(events.at("events").at(0).at("severity").as_string(), "critical");
}

TEST_F(ModelStore, ARestartReconcilesTheStoreWithTheDatabase) {
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  ASSERT_EQ(importAndWait((usb.path() / "tiny.gguf").string(), "tiny").at("state").as_string(),
            "succeeded");
  agent.reset();
  stdfs::remove(blobs() / ("sha256-" + sha256(usb.path() / "tiny.gguf")));
  writeFile(blobs() / ("sha256-" + std::string(64, 'b')), "stray");
  writeFile(root.path() / "var/lib/aibox/models/partial/leftover", "half");
  agent = std::make_unique<Agent>(
      root.path(), AgentOptions{.args = {"--models.import_dirs=" + usb.path().string()}});
  auto m = model("tiny");
  EXPECT_EQ(m.at("state").as_string(), "corrupt");
  EXPECT_NE(std::string(m.at("error").as_string()).find("missing"), std::string::npos);
  EXPECT_EQ(count(blobs()), 0u);
  EXPECT_EQ(count(root.path() / "var/lib/aibox/models/partial"), 0u);
}

TEST_F(ModelStore, AiboxctlModelsImportListShowRemove) {
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  std::string r = root.path().string();
  auto imported =
      run({AIBOX_CTL_BIN, "--root", r, "models", "import", (usb.path() / "tiny.gguf").string(),
           "--name", "tiny", "--label", "team=rag"});
  ASSERT_EQ(imported.exitCode, 0) << imported.out << imported.err;
  EXPECT_NE(imported.out.find("import succeeded"), std::string::npos) << imported.out;
  auto ls = run({AIBOX_CTL_BIN, "--root", r, "models", "ls"});
  EXPECT_NE(ls.out.find("tiny:latest"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("Q4_K_M"), std::string::npos) << ls.out;
  auto show = run({AIBOX_CTL_BIN, "--root", r, "models", "show", "tiny"});
  EXPECT_NE(show.out.find("{\"team\":\"rag\"}"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(sha256(usb.path() / "tiny.gguf")), std::string::npos) << show.out;
  auto json = run({AIBOX_CTL_BIN, "--root", r, "--json", "models", "verify", "tiny"});
  EXPECT_EQ(json.exitCode, 0) << json.err;
  EXPECT_NE(json.out.find("\"state\":\"succeeded\""), std::string::npos) << json.out;
  auto wrong =
      run({AIBOX_CTL_BIN, "--root", r, "models", "import", (usb.path() / "tiny.gguf").string(),
           "--name", "other", "--sha256", std::string(64, 'c')});
  EXPECT_EQ(wrong.exitCode, 1);
  EXPECT_NE(wrong.out.find("SHA-256 mismatch"), std::string::npos) << wrong.out;
  auto removed = run({AIBOX_CTL_BIN, "--root", r, "models", "rm", "tiny"});
  EXPECT_EQ(removed.exitCode, 0) << removed.out << removed.err;
  EXPECT_EQ(run({AIBOX_CTL_BIN, "--root", r, "models", "show", "tiny"}).exitCode, 1);
  EXPECT_EQ(run({AIBOX_CTL_BIN, "--root", r, "models", "import", "x"}).exitCode, 2);
}

TEST_F(ModelStore, AiboxctlImportsFromAUrlWithProgressAndDigest) {
  writeFile(usb.path() / "net.gguf", ggufOfMiB(3));
  const auto digest = sha256(usb.path() / "net.gguf");
  HttpFileServer server(usb.path());
  server.dropAfterBytes(1 << 20, 1);
  std::string r = root.path().string();
  auto imported = run({AIBOX_CTL_BIN, "--root", r, "--json", "models", "import",
                       server.url("net.gguf"), "--name", "net", "--sha256", digest});
  ASSERT_EQ(imported.exitCode, 0) << imported.out << imported.err;
  std::istringstream lines(imported.out);
  std::string line;
  boost::json::object last;
  int updates = 0;
  while (std::getline(lines, line)) {
    last = parse(line);
    EXPECT_EQ(last.at("kind").as_string(), "import") << line;
    EXPECT_TRUE(last.contains("bytes_done")) << line;
    ++updates;
  }
  EXPECT_EQ(last.at("state").as_string(), "succeeded") << imported.out;
  EXPECT_EQ(last.at("bytes_done").as_int64(),
            static_cast<std::int64_t>(stdfs::file_size(usb.path() / "net.gguf")))
      << imported.out;
  EXPECT_GE(updates, 2) << "no progress was shown before the end: " << imported.out;
  EXPECT_EQ(model("net").at("source").as_string(), server.url("net.gguf"));
  EXPECT_EQ(model("net").at("files").at(0).at("sha256").as_string(), digest);

  auto wrong = run({AIBOX_CTL_BIN, "--root", r, "models", "import", server.url("net.gguf"),
                    "--name", "other", "--sha256", std::string(64, 'c')});
  EXPECT_EQ(wrong.exitCode, 1);
  EXPECT_NE(wrong.out.find("SHA-256 mismatch"), std::string::npos) << wrong.out;
  auto unknownScheme = run({AIBOX_CTL_BIN, "--root", r, "models", "import",
                            "ftp://127.0.0.1/net.gguf", "--name", "ftp"});
  EXPECT_EQ(unknownScheme.exitCode, 1) << unknownScheme.out << unknownScheme.err;
  EXPECT_NE(unknownScheme.err.find("http:// or https:// URL"), std::string::npos)
      << unknownScheme.err;
}

// kill -9 at random moments of imports, 20 times: after every restart the database is intact,
// no ready model has a wrong digest, and each import either finishes or is cleanly gone.
TEST_F(ModelStore, KillMinusNineDuringImportsLeavesNoCorruptState) {
  writeFile(usb.path() / "big.gguf", ggufOfMiB(32));
  auto digest = sha256(usb.path() / "big.gguf");
  std::mt19937 random(2026);
  std::uniform_int_distribution<int> delay(0, 250);
  auto options = AgentOptions{
      .args = {"--models.import_dirs=" + usb.path().string(), "--models.reserve_bytes=0"}};
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    import((usb.path() / "big.gguf").string(), "m" + std::to_string(round));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay(random)));
    agent->signal(SIGKILL);
    agent->wait(std::chrono::seconds(10));
    agent = std::make_unique<Agent>(root.path(), options);
    auto check = run(
        {"sqlite3", (root.path() / "var/lib/aibox/aibox.db").string(), "PRAGMA integrity_check"});
    EXPECT_EQ(check.out, "ok\n") << check.err;
    auto listed = parse(viaSocket(*agent, {.path = "/api/v1/models"}).body);
    for (const auto& v : listed.at("models").as_array()) {
      const auto& m = v.as_object();
      if (m.at("state").as_string() == "ready") {
        ASSERT_EQ(m.at("files").as_array().size(), 1u);
        EXPECT_EQ(m.at("files").at(0).at("sha256").as_string(), digest);
        EXPECT_EQ(sha256(blobs() / ("sha256-" + digest)), digest);
      } else {
        EXPECT_EQ(m.at("state").as_string(), "importing") << json::serialize(m);
      }
    }
  }
  // Let the restarted imports finish: every model is then ready with the right digest, and
  // nothing is left half-copied.
  auto jobs = parse(viaSocket(*agent, {.path = "/api/v1/jobs"}).body);
  for (const auto& v : jobs.at("jobs").as_array()) {
    auto job = waitJob(std::string(v.at("id").as_string()));
    EXPECT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);
  }
  auto models = parse(viaSocket(*agent, {.path = "/api/v1/models"}).body);
  for (const auto& v : models.at("models").as_array()) {
    EXPECT_EQ(v.at("state").as_string(), "ready") << json::serialize(v);
    EXPECT_EQ(v.at("files").at(0).at("sha256").as_string(), digest);
  }
  EXPECT_EQ(count(root.path() / "var/lib/aibox/models/partial"), 0u);
  EXPECT_EQ(count(blobs()), 1u);
}

// The store's disk fills up during imports (a 24 MiB tmpfs over the models directory, in a
// private mount namespace the agent inherits; two 16 MiB imports each pass the free-space check
// and then run together): a clean failure, and nothing left behind.
TEST_F(ModelStore, ADiskThatFillsUpFailsTheImportCleanly) {
  agent.reset();
  auto models = root.path() / "var/lib/aibox/models";
  stdfs::create_directories(models);
  Mount tmpfs(24 << 20, models);
  ASSERT_EQ(tmpfs.error(), "");
  agent = std::make_unique<Agent>(
      root.path(), AgentOptions{.args = {"--models.import_dirs=" + usb.path().string(),
                                         "--models.reserve_bytes=0"}});
  writeFile(usb.path() / "big.gguf", ggufOfMiB(16));
  auto first = import((usb.path() / "big.gguf").string(), "first");
  auto second = import((usb.path() / "big.gguf").string(), "second");
  ASSERT_EQ(first.status, 202) << first.body;
  // The second check runs while the first copy may already be under way: when it has taken
  // more than 8 MiB, the check itself refuses the second import (507), which is clean too.
  ASSERT_TRUE(second.status == 202 || second.status == 507) << second.body;
  int full = second.status == 507 ? 1 : 0;
  int succeeded = 0;
  std::vector<const HttpReply*> started{&first};
  if (second.status == 202) {
    started.push_back(&second);
  }
  for (const auto* reply : started) {
    auto job = waitJob(std::string(parse(reply->body).at("job").at("id").as_string()));
    if (job.at("state").as_string() == "succeeded") {
      ++succeeded;
      continue;
    }
    EXPECT_NE(std::string(job.at("error").as_string()).find("disk of the model store is full"),
              std::string::npos)
        << json::serialize(job);
    ++full;
  }
  EXPECT_GE(full, 1);
  EXPECT_EQ(count(models / "partial"), 0u);
  EXPECT_EQ(count(blobs()), succeeded > 0 ? 1u : 0u);
  auto listed = parse(viaSocket(*agent, {.path = "/api/v1/models"}).body);
  EXPECT_EQ(listed.at("models").as_array().size(), static_cast<std::size_t>(succeeded));
  // The store still works once there is room.
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  EXPECT_EQ(importAndWait((usb.path() / "tiny.gguf").string(), "tiny").at("state").as_string(),
            "succeeded");
}

TEST_F(ModelStore, ImportsFromAUrlAndResumesAfterADroppedConnection) {
  writeFile(usb.path() / "net.gguf", ggufOfMiB(3));
  HttpFileServer server(usb.path());
  server.dropAfterBytes(1 << 20, 1);
  auto job = importAndWait(server.url("net.gguf"), "net");
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);
  auto m = model("net");
  EXPECT_EQ(m.at("files").at(0).at("path").as_string(), "net.gguf");
  EXPECT_EQ(m.at("files").at(0).at("sha256").as_string(), sha256(usb.path() / "net.gguf"));
  EXPECT_EQ(m.at("source").as_string(), server.url("net.gguf"));
  bool resumed = false;
  for (const auto& r : server.requests()) {
    resumed = resumed || r.range == "bytes=1048576-";
  }
  EXPECT_TRUE(resumed);

  auto missing = importAndWait(server.url("missing.gguf"), "missing");
  EXPECT_EQ(missing.at("state").as_string(), "failed");
  EXPECT_NE(std::string(missing.at("error").as_string()).find("404"), std::string::npos)
      << json::serialize(missing);
  EXPECT_EQ(viaSocket(*agent, {.path = "/api/v1/models/missing"}).status, 404);
}

TEST_F(ModelStore, ADownloadCutByARestartContinuesWithARange) {
  writeFile(usb.path() / "net.gguf", ggufOfMiB(10));
  HttpFileServer server(usb.path());
  server.stallAfterBytes(6 << 20);  // one 4 MiB block reaches the partial file, then nothing
  auto reply = import(server.url("net.gguf"), "net");
  ASSERT_EQ(reply.status, 202) << reply.body;
  auto id = std::string(parse(reply.body).at("job").at("id").as_string());
  auto partial = root.path() / "var/lib/aibox/models/partial" / (id + "-0");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // file_size() answers -1 for a file not made yet: that counts as empty.
  auto partialSize = [&partial] {
    std::error_code ec;
    auto size = stdfs::file_size(partial, ec);
    return ec ? 0 : size;
  };
  while (partialSize() < (4u << 20) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(partialSize(), 4u << 20);
  agent->signal(SIGKILL);
  agent->wait(std::chrono::seconds(10));
  server.stallAfterBytes(std::numeric_limits<std::uint64_t>::max());
  agent = std::make_unique<Agent>(
      root.path(), AgentOptions{.args = {"--models.import_dirs=" + usb.path().string(),
                                         "--models.reserve_bytes=0"}});
  auto job = waitJob(id);
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);
  EXPECT_EQ(model("net").at("files").at(0).at("sha256").as_string(),
            sha256(usb.path() / "net.gguf"));
  auto requests = server.requests();
  ASSERT_FALSE(requests.empty());
  std::string seen;
  for (const auto& r : requests) {
    seen += r.method + " " + r.range + "; ";
  }
  EXPECT_EQ(requests.back().range, "bytes=" + std::to_string(4u << 20) + "-") << seen;
}

TEST_F(ModelStore, ABundleCarriesAModelToAnotherBox) {
  writeFile(usb.path() / "tiny.gguf", llamaGguf());
  ASSERT_EQ(importAndWait((usb.path() / "tiny.gguf").string(), "tiny").at("state").as_string(),
            "succeeded");
  TempDir otherRoot;
  TempDir otherUsb;
  auto bundle = otherUsb.path() / "tiny.aibox.tar";
  auto exported = run(
      {AIBOX_CTL_BIN, "--root", root.path().string(), "models", "export", "tiny", bundle.string()});
  ASSERT_EQ(exported.exitCode, 0) << exported.out << exported.err;
  EXPECT_FALSE(stdfs::exists(bundle.string() + ".part"));
  auto listing = run({"tar", "tf", bundle.string()});
  EXPECT_EQ(listing.out, "manifest.json\nblobs/sha256-" + sha256(usb.path() / "tiny.gguf") + "\n");

  Agent other(otherRoot.path(),
              AgentOptions{.args = {"--models.import_dirs=" + otherUsb.path().string(),
                                    "--models.reserve_bytes=0"}});
  auto reply = viaSocket(
      other, {.method = "POST",
              .path = "/api/v1/models",
              .body = R"({"source":")" + bundle.string() + R"(","name":"tiny","tag":"copy"})"});
  ASSERT_EQ(reply.status, 202) << reply.body;
  auto id = std::string(parse(reply.body).at("job").at("id").as_string());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  boost::json::object job;
  do {
    job = parse(viaSocket(other, {.path = "/api/v1/jobs/" + id}).body);
  } while ((job.at("state").as_string() == "running" || job.at("state").as_string() == "queued") &&
           std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(job.at("state").as_string(), "succeeded") << json::serialize(job);
  auto copy = parse(viaSocket(other, {.path = "/api/v1/models/tiny:copy"}).body);
  EXPECT_EQ(copy.at("state").as_string(), "ready");
  EXPECT_EQ(copy.at("files").at(0).at("path").as_string(), "tiny.gguf");
  EXPECT_EQ(copy.at("files").at(0).at("sha256").as_string(), sha256(usb.path() / "tiny.gguf"));
  EXPECT_EQ(copy.at("quantization").as_string(), "Q4_K_M");
}

// A ustar member, written here independently of the agent's writer.
std::string member(const std::string& name, const std::string& content, char type = '0') {
  std::string h(512, '\0');
  std::copy(name.begin(), name.end(), h.begin());
  std::snprintf(&h[100], 8, "%07o", 0644);
  std::snprintf(&h[108], 8, "%07o", 0);
  std::snprintf(&h[116], 8, "%07o", 0);
  std::snprintf(&h[124], 12, "%011o", static_cast<unsigned>(content.size()));
  std::snprintf(&h[136], 12, "%011o", 0);
  h[156] = type;
  std::copy_n(
      "ustar\0"
      "00",
      8, &h[257]);
  std::fill_n(&h[148], 8, ' ');
  unsigned sum = 0;
  for (unsigned char c : h) {
    sum += c;
  }
  std::snprintf(&h[148], 8, "%06o", sum);
  return h + content + std::string((512 - content.size() % 512) % 512, '\0');
}

TEST_F(ModelStore, MaliciousOrDamagedBundlesAreRefusedAndLeaveNothing) {
  auto gguf = llamaGguf();
  writeFile(usb.path() / "tiny.gguf", gguf);
  auto digest = sha256(usb.path() / "tiny.gguf");
  auto manifest = [&digest, &gguf](const std::string& path) {
    return R"({"format":"aibox-model-bundle","version":1,"name":"t","tag":"latest","files":[)"
           R"({"path":")" +
           path + R"(","sha256":")" + digest + R"(","size":)" + std::to_string(gguf.size()) + "}]}";
  };
  std::string end(1024, '\0');
  struct Case {
    std::string file;
    std::string tar;
    std::string error;
  };
  std::vector<Case> cases{
      {"dotdot.tar",
       member("manifest.json", manifest("tiny.gguf")) + member("../../evil", gguf) + end,
       "points outside"},
      {"absolute.tar",
       member("manifest.json", manifest("tiny.gguf")) + member("/etc/evil", gguf) + end,
       "points outside"},
      {"link.tar",
       member("manifest.json", manifest("tiny.gguf")) + member("blobs/sha256-" + digest, "", '2') +
           end,
       "link"},
      {"device.tar",
       member("manifest.json", manifest("tiny.gguf")) + member("blobs/sha256-" + digest, "", '3') +
           end,
       "special"},
      {"tampered.tar",
       member("manifest.json", manifest("tiny.gguf")) +
           member("blobs/sha256-" + digest, gguf.substr(0, gguf.size() - 1) + "X") + end,
       "SHA-256 mismatch"},
      {"manifest-path.tar",
       member("manifest.json", manifest("../tiny.gguf")) + member("blobs/sha256-" + digest, gguf) +
           end,
       "bad path"},
      {"no-manifest.tar", member("blobs/sha256-" + digest, gguf) + end, "manifest.json"},
      {"truncated.tar",
       (member("manifest.json", manifest("tiny.gguf")) + member("blobs/sha256-" + digest, gguf))
           .substr(0, 2048),
       "truncated"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    writeFile(usb.path() / c.file, c.tar);
    auto reply = import((usb.path() / c.file).string(), "bundle");
    std::string error;
    if (reply.status == 202) {
      auto job = waitJob(std::string(parse(reply.body).at("job").at("id").as_string()));
      EXPECT_EQ(job.at("state").as_string(), "failed");
      error = std::string(job.at("error").as_string());
    } else {
      EXPECT_EQ(reply.status, 400) << reply.body;
      error = reply.body;
    }
    EXPECT_NE(error.find(c.error), std::string::npos) << error;
    EXPECT_EQ(viaSocket(*agent, {.path = "/api/v1/models/bundle"}).status, 404);
    EXPECT_EQ(count(blobs()), 0u);
    EXPECT_EQ(count(root.path() / "var/lib/aibox/models/partial"), 0u);
  }
}

}  // namespace
}  // namespace aibox::test
