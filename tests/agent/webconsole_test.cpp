// What the web console needs of the agent, against the real agent: its static files (types,
// security headers, validators, HEAD, refusals of every way out of the directory), the live
// event stream (auth, job progress, heartbeats, revoked sessions, the cap, shutdown), the
// system page's fields and password resets.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <future>
#include <thread>

#include "tests/support/gguf_writer.hpp"
#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'";

boost::json::object parse(const std::string& body) {
  return boost::json::parse(body).as_object();
}

std::string code(const HttpReply& reply) {
  auto v = boost::json::parse(reply.body);
  return v.is_object() && v.as_object().contains("error")
             ? std::string(v.at("error").at("code").as_string())
             : "";
}

// A request sent exactly as written (curl would normalise "..").
struct RawReply {
  int status = 0;
  std::string head;
  std::string body;
};
RawReply rawGet(const Agent& agent, const std::string& target) {
  RawClient client(agent.socket());
  client.send("GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  auto text = client.readResponse(5s);
  RawReply out;
  auto end = text.find("\r\n\r\n");
  out.head = text.substr(0, end);
  out.body = end == std::string::npos ? "" : text.substr(end + 4);
  if (text.starts_with("HTTP/1.1 ")) {
    out.status = std::stoi(text.substr(9, 3));
  }
  return out;
}

// The web console's files, with the things it must never serve beside and inside them.
class Console : public ::testing::Test {
 protected:
  Console() {
    auto ui = webui();
    stdfs::create_directories(ui / "js");
    stdfs::create_directories(ui / "css");
    stdfs::create_directories(ui / "i18n");
    stdfs::create_directories(ui / "img");
    stdfs::create_directories(ui / "fonts");
    stdfs::create_directories(ui / "api");
    writeFile(ui / "index.html", "<!doctype html><title>aibox</title>\n");
    writeFile(ui / "js/app.js", "export const app = 1;\n");
    writeFile(ui / "js/util.mjs", "export const util = 2;\n");
    writeFile(ui / "css/app.css", "body { margin: 0 }\n");
    writeFile(ui / "i18n/zh-CN.json", "{\"login\":\"登录\"}\n");
    writeFile(ui / "img/logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n");
    writeFile(ui / "img/logo.png", std::string("\x89PNG\r\n\x1a\n", 8));
    writeFile(ui / "favicon.ico", std::string(32, '\0'));
    writeFile(ui / "fonts/inter.woff2", "wOF2");
    writeFile(ui / "js/big.js", std::string(3 * 1024 * 1024 + 17, 'x'));
    writeFile(ui / ".env", "outside-content\n");
    writeFile(ui / "js/.hidden.js", "hidden\n");
    writeFile(ui / "README", "not a served type\n");
    writeFile(ui / "api/x.json", "{}\n");
    writeFile(outside.path() / "secret.js", "outside-content\n");
    stdfs::create_symlink(outside.path() / "secret.js", ui / "js/link.js");
    stdfs::create_directory_symlink(outside.path(), ui / "out");
    ::mkfifo((ui / "js/fifo.js").c_str(), 0644);
    agent = std::make_unique<Agent>(root.path(),
                                    AgentOptions{.args = {"--server.webui_dir=" + ui.string()}});
  }

  stdfs::path webui() const { return files.path() / "webui"; }

  TempDir files;
  TempDir outside;
  TempDir root;
  std::unique_ptr<Agent> agent;
};

TEST_F(Console, FilesHaveTheirTypesAndSecurityHeaders) {
  struct Case {
    std::string path;
    std::string type;
    std::string cache;
  };
  for (const auto& c : std::vector<Case>{
           {"/", "text/html; charset=utf-8", "no-cache"},
           {"/index.html", "text/html; charset=utf-8", "no-cache"},
           {"/js/app.js", "text/javascript; charset=utf-8", "no-cache"},
           {"/js/util.mjs", "text/javascript; charset=utf-8", "no-cache"},
           {"/css/app.css", "text/css; charset=utf-8", "no-cache"},
           {"/i18n/zh-CN.json", "application/json", "no-cache"},
           {"/img/logo.svg", "image/svg+xml", "max-age=86400"},
           {"/img/logo.png", "image/png", "max-age=86400"},
           {"/favicon.ico", "image/x-icon", "max-age=86400"},
           {"/fonts/inter.woff2", "font/woff2", "max-age=86400"},
       }) {
    SCOPED_TRACE(c.path);
    auto reply = viaTls(*agent, {.path = c.path});  // anonymous: the login page needs them
    EXPECT_EQ(reply.status, 200) << reply.body;
    auto file = c.path == "/" ? std::string("index.html") : c.path.substr(1);
    EXPECT_EQ(reply.body, readFile(webui() / file));
    EXPECT_EQ(reply.headers["content-type"], c.type);
    EXPECT_EQ(reply.headers["cache-control"], c.cache);
    EXPECT_EQ(reply.headers["content-security-policy"], kCsp);
    EXPECT_EQ(reply.headers["x-content-type-options"], "nosniff");
    EXPECT_EQ(reply.headers["referrer-policy"], "no-referrer");
    EXPECT_EQ(reply.headers["x-frame-options"], "DENY");
    EXPECT_FALSE(reply.headers["etag"].empty());
  }
  auto big = viaSocket(*agent, {.path = "/js/big.js"});
  EXPECT_EQ(big.status, 200);
  EXPECT_EQ(big.body.size(), 3u * 1024 * 1024 + 17) << "streamed, whole";
  EXPECT_EQ(big.headers["content-length"], std::to_string(3 * 1024 * 1024 + 17));
}

TEST_F(Console, EtagRevalidatesAndChangesWithTheFile) {
  auto first = viaSocket(*agent, {.path = "/js/app.js"});
  auto etag = first.headers["etag"];
  ASSERT_FALSE(etag.empty());
  auto again = viaSocket(*agent, {.path = "/js/app.js", .headers = {"If-None-Match: " + etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.headers["etag"], etag);
  EXPECT_EQ(again.headers["cache-control"], "no-cache");
  EXPECT_EQ(
      viaSocket(*agent, {.path = "/js/app.js", .headers = {"If-None-Match: W/" + etag}}).status,
      304);
  EXPECT_EQ(
      viaSocket(*agent, {.path = "/js/app.js", .headers = {"If-None-Match: \"other\""}}).status,
      200);
  writeFile(webui() / "js/app.js", "export const app = 22;\n");
  auto changed = viaSocket(*agent, {.path = "/js/app.js", .headers = {"If-None-Match: " + etag}});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, "export const app = 22;\n");
  EXPECT_NE(changed.headers["etag"], etag);
}

TEST_F(Console, HeadSendsTheHeadOnly) {
  auto head = viaSocket(*agent, {.method = "HEAD", .path = "/index.html"});
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.headers["content-length"],
            std::to_string(readFile(webui() / "index.html").size()));
  EXPECT_EQ(head.headers["content-type"], "text/html; charset=utf-8");
  auto big = viaSocket(*agent, {.method = "HEAD", .path = "/js/big.js"});
  EXPECT_EQ(big.status, 200);
  EXPECT_EQ(big.headers["content-length"], std::to_string(3 * 1024 * 1024 + 17));
  // The connection is still good for the next request after a HEAD.
  RawClient client(agent->socket());
  client.send(
      "HEAD /js/app.js HTTP/1.1\r\nHost: x\r\n\r\nGET /js/app.js HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  auto both = client.readAll(2s, closed);
  EXPECT_NE(both.find("HTTP/1.1 200"), both.rfind("HTTP/1.1 200")) << both;
  EXPECT_TRUE(both.ends_with("export const app = 1;\n")) << both;
}

TEST_F(Console, EveryWayOutOfTheDirectoryIs404) {
  for (const char* target : {"/../etc/passwd",
                             "/js/../../etc/passwd",
                             "/%2e%2e/etc/passwd",
                             "/js/%2e%2e/%2e%2e/x.js",
                             "/js%2fapp.js",
                             "/js%2f..%2f..%2fetc%2fpasswd",
                             "/js%5capp.js",
                             "//etc/passwd",
                             "/./index.html",
                             "/.env",
                             "/%2eenv",
                             "/js/.hidden.js",
                             "/js/link.js",
                             "/out/secret.js",
                             "/js/fifo.js",
                             "/js",
                             "/js/",
                             "/README",
                             "/nope.html",
                             "/index.html%00.js",
                             "/img/logo.png/x"}) {
    SCOPED_TRACE(target);
    auto reply = rawGet(*agent, target);
    EXPECT_EQ(reply.status, 404) << reply.head;
    EXPECT_NE(reply.body.find("\"not_found\""), std::string::npos) << reply.body;
    EXPECT_EQ(reply.body.find("outside-content"), std::string::npos);
  }
}

TEST_F(Console, ApiRoutesWinAndOnlyGetAndHeadAreAllowed) {
  auto system = viaSocket(*agent, {.path = "/api/v1/system"});
  EXPECT_EQ(system.status, 200);
  EXPECT_EQ(system.headers["content-type"], "application/json");
  auto unknown = viaSocket(*agent, {.path = "/api/x.json"});
  EXPECT_EQ(unknown.status, 404) << "a file under webui/api/ never stands in for the API";
  EXPECT_NE(unknown.body.find("no such resource"), std::string::npos) << unknown.body;
  EXPECT_EQ(viaSocket(*agent, {.method = "POST", .path = "/api/v1/nope", .body = "{}"}).status,
            404);
  EXPECT_EQ(viaSocket(*agent, {.path = "/healthz"}).body, "{\"status\":\"ok\"}\n");
  auto post = viaSocket(*agent, {.method = "POST", .path = "/index.html", .body = "{}"});
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
  auto audit = viaSocket(*agent, {.path = "/api/v1/audit?limit=1000"});
  EXPECT_EQ(audit.status, 200);
  EXPECT_EQ(audit.body.find("/index.html"), std::string::npos) << "console calls are not audited";
  auto metrics = viaSocket(*agent, {.path = "/metrics"}).body;
  EXPECT_NE(metrics.find("route=\"/{file}\""), std::string::npos);
}

TEST(ConsoleSettings, DefaultIsInsideTheRootAndAMissingDirectoryIs404) {
  TempDir root;
  {
    Agent agent(root.path(), {});
    auto missing = viaSocket(agent, {.path = "/"});
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(code(missing), "not_found");
    EXPECT_NE(agent.log().find("the web console is not served"), std::string::npos);
  }
  writeFile(root.path() / "usr/share/aibox/webui/index.html", "inside the root\n");
  Agent agent(root.path(), {});
  EXPECT_EQ(viaSocket(agent, {.path = "/"}).body, "inside the root\n");
  auto relative =
      run({AIBOX_AGENT_BIN, "--root", root.path().string(), "--server.webui_dir=webui"});
  EXPECT_EQ(relative.exitCode, 2);
  EXPECT_NE(relative.err.find("server.webui_dir"), std::string::npos) << relative.err;
}

// --- the event stream ------------------------------------------------------------------

struct Login {
  std::string cookie;
  std::string csrf;
  std::string sessionId;
};

// Logs in as the first admin and sets a password.
Login adminLogin(const Agent& agent) {
  auto once = readFile(agent.root() / "var/lib/aibox/initial-admin-password");
  once = once.substr(0, once.find('\n'));
  auto reply = viaTls(agent, {.method = "POST",
                              .path = "/api/v1/auth/login",
                              .body = R"({"username":"admin","password":")" + once + "\"}"});
  EXPECT_EQ(reply.status, 200) << reply.body;
  Login login;
  auto cookie = reply.headers["set-cookie"];
  login.cookie = cookie.substr(0, cookie.find(';'));
  login.csrf = std::string(parse(reply.body).at("csrf_token").as_string());
  auto changed = viaTls(
      agent,
      {.method = "POST",
       .path = "/api/v1/auth/password",
       .body = R"({"old_password":")" + once + R"(","new_password":"the console passphrase"})",
       .headers = {"Cookie: " + login.cookie, "X-CSRF-Token: " + login.csrf}});
  EXPECT_EQ(changed.status, 200) << changed.body;
  auto session =
      viaTls(agent, {.path = "/api/v1/auth/session", .headers = {"Cookie: " + login.cookie}});
  auto body = parse(session.body);
  if (body.contains("session_id")) {
    login.sessionId = std::string(body.at("session_id").as_string());
  }
  return login;
}

bool has(const std::string& body, std::string_view text) {
  return body.find(text) != std::string::npos;
}

TEST(EventStream, NeedsALoginAndAllowedRole) {
  Agent agent;
  auto anonymous = viaTls(agent, {.path = "/api/v1/events"});
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(code(anonymous), "unauthenticated");
  auto once = readFile(agent.root() / "var/lib/aibox/initial-admin-password");
  once = once.substr(0, once.find('\n'));
  auto first = viaTls(agent, {.method = "POST",
                              .path = "/api/v1/auth/login",
                              .body = R"({"username":"admin","password":")" + once + "\"}"});
  auto cookie = first.headers["set-cookie"];
  auto mustChange = viaTls(agent, {.path = "/api/v1/events",
                                   .headers = {"Cookie: " + cookie.substr(0, cookie.find(';'))}});
  EXPECT_EQ(mustChange.status, 403);
  EXPECT_EQ(code(mustChange), "password_change_required");
}

TEST(EventStream, LoggedInUserSeesAnImportsJobAndModelEvents) {
  TempDir usb;
  GgufWriter w;
  w.string("general.architecture", "llama")
      .u32("llama.block_count", 1)
      .u32("llama.context_length", 512)
      .u32("llama.embedding_length", 4096)
      .u32("llama.attention.head_count", 32);
  w.tensor("token_embd.weight", {4096, 64 * 8}, kGgmlF32);  // 8 MiB
  writeFile(usb.path() / "tiny.gguf", w.bytes());
  Agent agent(AgentOptions{
      .args = {"--models.import_dirs=" + usb.path().string(), "--models.reserve_bytes=0"}});
  auto login = adminLogin(agent);

  std::atomic<bool> subscribed{false};
  auto stream = std::async(std::launch::async, [&agent, &login, &subscribed] {
    return viaTls(agent, {.path = "/api/v1/events",
                          .headers = {"Cookie: " + login.cookie},
                          .until =
                              [&subscribed](const std::string& body) {
                                subscribed = has(body, "event: hello");
                                return has(body, "\"state\":\"succeeded\"") &&
                                       has(body, "\"state\":\"ready\"");
                              },
                          .timeout = 30s});
  });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!subscribed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(subscribed);
  auto started = viaTls(
      agent,
      {.method = "POST",
       .path = "/api/v1/models",
       .body = R"({"source":")" + (usb.path() / "tiny.gguf").string() + R"(","name":"tiny"})",
       .headers = {"Cookie: " + login.cookie, "X-CSRF-Token: " + login.csrf}});
  ASSERT_EQ(started.status, 202) << started.body;
  auto job = std::string(parse(started.body).at("job").at("id").as_string());
  auto reply = stream.get();
  EXPECT_EQ(reply.status, 200) << reply.error;
  EXPECT_EQ(reply.headers["content-type"], "text/event-stream");
  EXPECT_EQ(reply.headers["cache-control"], "no-store");
  const auto& body = reply.body;
  EXPECT_TRUE(body.starts_with("retry: 5000\nevent: hello\ndata: {\"user\":\"user:admin\""))
      << body;
  EXPECT_TRUE(has(body,
                  "\"events\":[\"hello\",\"resync\",\"end\",\"hardware\",\"hardware_event\","
                  "\"job\",\"model\",\"license\",\"runtime\",\"key\"]"))
      << body;
  EXPECT_TRUE(has(body, "event: model\ndata: {\"id\":")) << body;
  EXPECT_TRUE(has(body, "\"name\":\"tiny\",\"tag\":\"latest\",\"state\":\"importing\"")) << body;
  EXPECT_TRUE(has(body, "\"name\":\"tiny\",\"tag\":\"latest\",\"state\":\"ready\"")) << body;
  // Every job event is a whole JSON object of GET /api/v1/jobs/{id}.
  std::size_t jobEvents = 0;
  for (auto at = body.find("event: job\ndata: "); at != std::string::npos;
       at = body.find("event: job\ndata: ", at + 1)) {
    auto start = at + std::string_view("event: job\ndata: ").size();
    auto data = parse(body.substr(start, body.find('\n', start) - start));
    EXPECT_EQ(data.at("id").as_string(), job);
    EXPECT_EQ(data.at("kind").as_string(), "import");
    EXPECT_EQ(data.at("bytes_total").to_number<std::uint64_t>(), w.bytes().size());
    EXPECT_TRUE(data.contains("bytes_done") && data.contains("bytes_per_second") &&
                data.contains("eta_seconds"));
    ++jobEvents;
  }
  EXPECT_GE(jobEvents, 2u) << body;  // started, succeeded
}

TEST(EventStream, HeartbeatsAndARevokedSessionEndsTheStream) {
  Agent agent(AgentOptions{.args = {"--server.events_heartbeat_s=1"}});
  auto login = adminLogin(agent);
  auto beat = viaTls(agent, {.path = "/api/v1/events",
                             .headers = {"Cookie: " + login.cookie},
                             .until = [](const std::string& body) { return has(body, "\n:\n\n"); },
                             .timeout = 10s});
  EXPECT_EQ(beat.status, 200) << beat.error;
  EXPECT_TRUE(has(beat.body, "\n:\n\n")) << beat.body;

  std::atomic<bool> subscribed{false};
  auto stream = std::async(std::launch::async, [&agent, &login, &subscribed] {
    return viaTls(agent, {.path = "/api/v1/events",
                          .headers = {"Cookie: " + login.cookie},
                          .until =
                              [&subscribed](const std::string& body) {
                                subscribed = has(body, "event: hello");
                                return false;  // until the agent ends it
                              },
                          .timeout = 20s});
  });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!subscribed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(subscribed);
  ASSERT_FALSE(login.sessionId.empty());
  EXPECT_EQ(
      viaSocket(agent, {.method = "DELETE", .path = "/api/v1/sessions/" + login.sessionId}).status,
      200);
  auto ended = stream.get();
  EXPECT_TRUE(ended.error.empty()) << "the body ended cleanly: " << ended.error;
  EXPECT_TRUE(ended.body.ends_with("event: end\ndata: {\"reason\":\"session_ended\"}\n\n"))
      << ended.body;
  EXPECT_EQ(
      viaTls(agent, {.path = "/api/v1/events", .headers = {"Cookie: " + login.cookie}}).status,
      401);
}

TEST(EventStream, HardwareStatusComesAsItIs) {
  Agent agent(AgentOptions{.args = {"--hardware.sources=sim", "--hardware.poll_interval=0.2",
                                    "--hardware.threshold=coretemp-isa-0000/temp1: "
                                    "critical_high=1"}});
  auto reply =
      viaSocket(agent, {.path = "/api/v1/events",
                        .until =
                            [](const std::string& body) {
                              return has(body, "event: hardware\ndata: ") && body.ends_with("\n\n");
                            },
                        .timeout = 10s});
  EXPECT_EQ(reply.status, 200) << reply.error;
  auto at = reply.body.find("event: hardware\ndata: ");
  ASSERT_NE(at, std::string::npos) << reply.body;
  auto start = at + std::string_view("event: hardware\ndata: ").size();
  auto summary = parse(reply.body.substr(start, reply.body.find('\n', start) - start));
  EXPECT_EQ(summary.at("health").as_string(), "critical");
  EXPECT_TRUE(summary.at("simulated").as_bool());
  EXPECT_GE(summary.at("counts").at("critical").to_number<int>(), 1);
}

// An event stream opened over the unix socket (a local admin), its head read.
std::unique_ptr<RawClient> openStream(const Agent& agent, std::string& head) {
  auto client = std::make_unique<RawClient>(agent.socket());
  client->send("GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n");
  bool closed = false;
  head.clear();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!has(head, "\r\n\r\n") && !closed && std::chrono::steady_clock::now() < deadline) {
    head += client->readAll(100ms, closed);
  }
  return client;
}

TEST(EventStream, CapOnOpenStreams) {
  Agent agent(
      AgentOptions{.args = {"--server.events_max_clients=2", "--server.events_heartbeat_s=1"}});
  std::string head;
  auto a = openStream(agent, head);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  auto b = openStream(agent, head);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  auto refused = viaSocket(agent, {.path = "/api/v1/events"});
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(code(refused), "too_many_streams");
  EXPECT_EQ(refused.headers["retry-after"], "30");
  a.reset();  // the agent notices at the next heartbeat and frees the place
  auto deadline = std::chrono::steady_clock::now() + 10s;
  bool reopened = false;
  while (!reopened && std::chrono::steady_clock::now() < deadline) {
    auto c = openStream(agent, head);
    reopened = head.starts_with("HTTP/1.1 200");
    if (!reopened) {
      std::this_thread::sleep_for(200ms);
    }
  }
  EXPECT_TRUE(reopened);
}

TEST(EventStream, ShutdownEndsOpenStreamsPromptly) {
  Agent agent;
  std::string head;
  auto stream = openStream(agent, head);
  ASSERT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  auto stopping = std::chrono::steady_clock::now();
  agent.signal(SIGTERM);
  auto code = agent.wait(10s);
  auto took = std::chrono::steady_clock::now() - stopping;
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
  EXPECT_LT(took, 5s) << "the drain (20 s) did not wait for the stream";
  bool closed = false;
  auto rest = head + stream->readAll(2s, closed);
  EXPECT_TRUE(has(rest, "event: end\r\n") || has(rest, "event: end\n")) << rest;
  EXPECT_TRUE(has(rest, "{\"reason\":\"shutdown\"}")) << rest;
  EXPECT_TRUE(closed);
}

// --- what other console pages need --------------------------------------------------------

TEST(ConsoleApi, SystemShowsTheCertificateAndIdentity) {
  TempDir root;
  writeFile(root.path() / "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
  Agent agent(root.path(), {});
  auto system = parse(viaSocket(agent, {.path = "/api/v1/system"}).body);
  EXPECT_EQ(system.at("machine_id").as_string(), "0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(system.at("kernel").as_string().empty());
  EXPECT_TRUE(system.at("time").as_string().ends_with("Z"));
  EXPECT_TRUE(system.contains("version") && system.contains("build_id") &&
              system.contains("uptime_seconds") && system.contains("hostname") &&
              system.contains("serial"));
  const auto& tls = system.at("tls").as_object();
  EXPECT_TRUE(tls.at("subject").as_string().starts_with("CN=")) << tls;
  EXPECT_EQ(tls.at("subject"), tls.at("issuer"));
  EXPECT_TRUE(tls.at("self_signed").as_bool());
  EXPECT_EQ(tls.at("key_type").as_string(), "EC P-256");
  EXPECT_EQ(tls.at("sha256_fingerprint").as_string().size(), 32u * 3 - 1);
  EXPECT_EQ(tls.at("not_before").as_string().size(), 20u);
  EXPECT_LT(tls.at("not_before").as_string(), tls.at("not_after").as_string());
  bool localhost = false;
  for (const auto& n : tls.at("names").as_array()) {
    localhost = localhost || n.as_string() == "DNS:localhost";
  }
  EXPECT_TRUE(localhost) << tls;
  // The fingerprint is the one of the certificate a client is shown.
  auto pem = run({"openssl", "x509", "-in", agent.certificate().string(), "-noout", "-fingerprint",
                  "-sha256"});
  EXPECT_NE(pem.out.find(std::string(tls.at("sha256_fingerprint").as_string())), std::string::npos)
      << pem.out;

  Agent plain(AgentOptions{.args = {"--tls.enabled=false"}});
  EXPECT_TRUE(parse(viaSocket(plain, {.path = "/api/v1/system"}).body).at("tls").is_null());
}

TEST(ConsoleApi, AdminResetsAPasswordToAOneTimeOne) {
  Agent agent;
  auto created = viaSocket(
      agent,
      {.method = "POST", .path = "/api/v1/users", .body = R"({"name":"alice","role":"viewer"})"});
  ASSERT_EQ(created.status, 201) << created.body;
  auto reset = viaSocket(
      agent,
      {.method = "PATCH", .path = "/api/v1/users/alice", .body = R"({"reset_password":true})"});
  ASSERT_EQ(reset.status, 200) << reset.body;
  auto body = parse(reset.body);
  auto password = std::string(body.at("password").as_string());
  EXPECT_EQ(password.size(), 16u);
  EXPECT_TRUE(body.at("must_change_password").as_bool());
  auto login = viaTls(agent, {.method = "POST",
                              .path = "/api/v1/auth/login",
                              .body = R"({"username":"alice","password":")" + password + "\"}"});
  EXPECT_EQ(login.status, 200) << login.body;
  EXPECT_TRUE(parse(login.body).at("must_change_password").as_bool());
  auto both =
      viaSocket(agent, {.method = "PATCH",
                        .path = "/api/v1/users/alice",
                        .body = R"({"reset_password":true,"password":"a long passphrase"})"});
  EXPECT_EQ(both.status, 400);
  EXPECT_EQ(parse(both.body).at("error").at("field").as_string(), "reset_password");
  EXPECT_FALSE(parse(viaSocket(agent, {.path = "/api/v1/users"}).body).contains("password"));
}

}  // namespace
}  // namespace aibox::test
