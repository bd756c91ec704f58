// The real aibox-agent, started in a temp root, through its real interfaces.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json/parse.hpp>
#include <thread>

#include "tests/support/support.hpp"

namespace aibox::test {
namespace {

using namespace std::chrono_literals;

boost::json::value parse(const std::string& body) {
  return boost::json::parse(body);
}

std::string errorCode(const HttpReply& reply) {
  return std::string(parse(reply.body).at("error").at("code").as_string());
}

class AgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    agent = new Agent(AgentOptions{{"--server.header_timeout_ms=1000"}});
  }
  static void TearDownTestSuite() {
    delete agent;
    agent = nullptr;
  }
  static Agent* agent;
};
Agent* AgentTest::agent = nullptr;

TEST_F(AgentTest, HealthzIsOpenOverTls) {
  auto reply = viaTls(*agent, {.path = "/healthz"});
  ASSERT_EQ(reply.error, "");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(parse(reply.body).at("status").as_string(), "ok");
  EXPECT_EQ(reply.headers["content-type"], "application/json");
  EXPECT_EQ(reply.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(reply.headers["strict-transport-security"], "max-age=31536000");
}

TEST_F(AgentTest, SystemNeedsAnAdminPeer) {
  auto anonymous = viaTls(*agent, {.path = "/api/v1/system"});
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(errorCode(anonymous), "unauthenticated");

  auto reply = viaSocket(*agent, {.path = "/api/v1/system"});
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto system = parse(reply.body).as_object();
  for (const char* key : {"hostname", "serial", "version", "build_id", "started_at",
                          "uptime_seconds", "root", "schema_version", "starts"}) {
    EXPECT_TRUE(system.contains(key)) << key;
  }
  EXPECT_EQ(system.at("root").as_string(), agent->root().string());
  EXPECT_GE(system.at("schema_version").as_int64(), 1);
  EXPECT_TRUE(system.at("serial").is_null());
}

TEST_F(AgentTest, UnknownRouteAndWrongMethod) {
  auto missing = viaSocket(*agent, {.path = "/api/v1/nope"});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(errorCode(missing), "not_found");
  auto wrong = viaSocket(*agent, {.method = "DELETE", .path = "/api/v1/system"});
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers["allow"], "GET");
  EXPECT_EQ(errorCode(wrong), "method_not_allowed");
}

TEST_F(AgentTest, MetricsPassPromtool) {
  viaTls(*agent, {.path = "/healthz"});
  auto reply = viaSocket(*agent, {.path = "/metrics"});
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(reply.body.find("aibox_build_info{version=\""), std::string::npos);
  EXPECT_NE(reply.body.find("process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(
      reply.body.find("aibox_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"}"),
      std::string::npos);
  EXPECT_NE(
      reply.body.find("aibox_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"}"),
      std::string::npos);
  auto check = run({"promtool", "check", "metrics"}, reply.body);
  EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
  EXPECT_EQ(viaTls(*agent, {.path = "/metrics"}).status, 401);
}

TEST_F(AgentTest, OversizedHeadIs431AndBodyIs413) {
  auto big =
      viaSocket(*agent, {.path = "/healthz", .headers = {"X-Filler: " + std::string(20000, 'a')}});
  EXPECT_EQ(big.status, 431);
  EXPECT_EQ(errorCode(big), "header_too_large");
  auto body =
      viaSocket(*agent, {.method = "POST", .path = "/healthz", .body = std::string(2 << 20, 'b')});
  EXPECT_EQ(body.status, 413) << body.error;
  EXPECT_EQ(errorCode(body), "body_too_large");
  EXPECT_EQ(viaSocket(*agent, {.path = "/healthz"}).status, 200);  // still serving
}

TEST_F(AgentTest, MalformedRequestIs400) {
  RawClient client(agent->socket());
  client.send("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n");
  auto response = client.readResponse(5s);
  EXPECT_EQ(response.rfind("HTTP/1.1 400", 0), 0u) << response;
  EXPECT_NE(response.find("malformed_request"), std::string::npos);
}

TEST_F(AgentTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  RawClient client(agent->socket());
  for (int i = 0; i < 3; ++i) {
    client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    auto response = client.readResponse(5s);
    EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
    EXPECT_EQ(response.find("Connection: close"), std::string::npos);
  }
}

TEST_F(AgentTest, SlowClientIsCutOffAfterTheHeaderTimeout) {
  RawClient client(agent->socket());
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // never finishes its head
  bool closed = false;
  auto start = std::chrono::steady_clock::now();
  client.readAll(8s, closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(AgentTest, OnlyTls12AndNewerWithAeadCiphers) {
  std::string target = "127.0.0.1:" + std::to_string(agent->port());
  auto old =
      run({"openssl", "s_client", "-connect", target, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"},
          "\n");
  EXPECT_NE(old.exitCode, 0);
  EXPECT_NE((old.out + old.err).find("protocol version"), std::string::npos) << old.out << old.err;
  auto cbc = run({"openssl", "s_client", "-connect", target, "-tls1_2", "-cipher",
                  "ECDHE-ECDSA-AES128-SHA256"},
                 "\n");
  EXPECT_NE(cbc.exitCode, 0);
  auto modern = run({"openssl", "s_client", "-connect", target, "-tls1_3"}, "\n");
  EXPECT_EQ(modern.exitCode, 0) << modern.err;
  EXPECT_NE(modern.out.find("TLSv1.3"), std::string::npos);
  auto gcm = run({"openssl", "s_client", "-connect", target, "-tls1_2", "-cipher",
                  "ECDHE-ECDSA-AES256-GCM-SHA384"},
                 "\n");
  EXPECT_EQ(gcm.exitCode, 0) << gcm.err;
}

TEST(AgentLifecycle, SigtermDrainsTheRequestInFlight) {
  Agent agent(AgentOptions{{"--server.drain_timeout_ms=10000"}});
  RawClient idle(agent.socket());
  idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(idle.readResponse(5s).rfind("HTTP/1.1 200", 0), 0u);
  RawClient inFlight(agent.socket());
  inFlight.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // half a request

  agent.signal(SIGTERM);
  ASSERT_TRUE(agent.waitNotification("STOPPING=1", 10s));
  bool closed = false;
  idle.readAll(5s, closed);
  EXPECT_TRUE(closed) << "an idle keep-alive connection is closed at once";
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(RawClient(agent.socket()).connected()) << "no new connections while draining";
  EXPECT_FALSE(agent.wait(300ms).has_value()) << "the agent waits for the request in flight";

  inFlight.send("\r\n");
  auto response = inFlight.readResponse(5s);
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
  EXPECT_NE(response.find("Connection: close"), std::string::npos);
  EXPECT_EQ(agent.wait(10s), 0) << agent.log();
}

TEST(AgentLifecycle, WatchdogIsPingedFromTheLoop) {
  Agent agent(AgentOptions{.watchdog = 300ms});
  int pings = 0;
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (pings < 3 && std::chrono::steady_clock::now() < deadline) {
    auto message = agent.nextNotification(1s);
    if (message && message->find("WATCHDOG=1") != std::string::npos) {
      ++pings;
    }
  }
  EXPECT_GE(pings, 3);
}

TEST(AgentLifecycle, RestartKeepsDatabaseAndCertificate) {
  TempDir root;
  std::string certificate;
  {
    Agent first(root.path(), {});
    certificate = readFile(first.certificate());
    EXPECT_EQ(parse(viaSocket(first, {.path = "/api/v1/system"}).body).at("starts").as_int64(), 1);
  }
  Agent second(root.path(), {});
  EXPECT_EQ(parse(viaSocket(second, {.path = "/api/v1/system"}).body).at("starts").as_int64(), 2);
  EXPECT_EQ(readFile(second.certificate()), certificate);
  EXPECT_EQ(viaTls(second, {.path = "/healthz"}).status, 200);
}

TEST(AgentLifecycle, SecondAgentOnTheSameRootIsRefused) {
  Agent first;
  Agent second(first.root(), {.waitReady = false});
  auto code = second.wait(30s);
  EXPECT_EQ(code, 1);
  EXPECT_NE(second.log().find("another aibox-agent is already listening"), std::string::npos)
      << second.log();
  EXPECT_EQ(viaSocket(first, {.path = "/healthz"}).status, 200);
  EXPECT_EQ(parse(viaSocket(first, {.path = "/api/v1/system"}).body).at("starts").as_int64(), 1)
      << "the refused agent recorded nothing";
}

TEST(AgentLifecycle, BadConfigStopsStartWithFileLineAndKey) {
  TempDir root;
  writeFile(root.path() / "etc/aibox/aibox.conf", "[server]\nthreads = 2\nlisen = 1.2.3.4:5\n");
  auto result = run({AIBOX_AGENT_BIN, "--root", root.path().string()});
  EXPECT_EQ(result.exitCode, 2);
  EXPECT_NE(result.err.find("aibox.conf:3: unknown key 'server.lisen'"), std::string::npos)
      << result.err;
  EXPECT_FALSE(std::filesystem::exists(root.path() / "var/lib/aibox/aibox.db"))
      << "nothing changed";
}

TEST(AgentLifecycle, DatabaseFromANewerAiboxIsRefused) {
  TempDir root;
  { Agent first(root.path(), {}); }
  auto db = (root.path() / "var/lib/aibox/aibox.db").string();
  auto bump =
      run({"sqlite3", db, "INSERT INTO schema_version(version, name) VALUES (99, 'future')"});
  ASSERT_EQ(bump.exitCode, 0) << bump.err;
  auto result = run({AIBOX_AGENT_BIN, "--root", root.path().string(), "--listen", "127.0.0.1:0"});
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("schema version 99 is newer than this aibox supports"),
            std::string::npos)
      << result.err;
}

TEST(AgentLifecycle, LocalNonAdminPeerIsForbidden) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to act as another user (CI runs as root)";
  }
  Agent agent;
  std::filesystem::permissions(agent.socket(), std::filesystem::perms::all);
  for (const auto& dir : {agent.root(), agent.root() / "run", agent.root() / "run/aibox"}) {
    std::filesystem::permissions(dir, std::filesystem::perms::others_exec,
                                 std::filesystem::perm_options::add);
  }
  std::string socket = agent.socket().string();
  auto asNobody = [&socket](const std::string& path) {
    return run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-s", "-o",
                "/dev/null", "-w", "%{http_code}", "--unix-socket", socket,
                "http://localhost" + path});
  };
  EXPECT_EQ(asNobody("/healthz").out, "200");
  EXPECT_EQ(asNobody("/api/v1/system").out, "403");
}

}  // namespace
}  // namespace aibox::test
