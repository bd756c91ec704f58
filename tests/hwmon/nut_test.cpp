// The NUT source against a real upsd serving NUT's dummy-ups driver, which plays a power cut
// from a sequence file: on line, on battery, low battery, back on line and charging. Both
// daemons run in the foreground as children of the test, in a temp dir of their own.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <system_error>
#include <thread>

#include "hwmon/hwmon.hpp"
#include "tests/hwmon/fake_sysfs.hpp"

extern char** environ;

namespace aibox::hwmon {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A port nothing listens on right now.
int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error("cannot find a free port: " +
                             std::error_code(errno, std::generic_category()).message());
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

bool accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return ok;
}

template <class Predicate>
bool waitUntil(Predicate done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

// A NUT program run in the foreground, its output in `log`; stopped (and reaped) when destroyed.
// It also dies with the test process, so a crashed test leaves no daemon behind.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& argv, const std::vector<std::string>& env,
         const stdfs::path& log) {
    // Everything the child needs is made before fork: after it, only async-signal-safe calls.
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      environment.emplace_back(*e);
    }
    environment.insert(environment.end(), env.begin(), env.end());
    std::vector<char*> envp;
    envp.reserve(environment.size() + 1);
    for (auto& e : environment) {
      envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
      throw std::runtime_error("cannot fork for " + argv[0] + ": " +
                               std::error_code(errno, std::generic_category()).message());
    }
    if (pid_ == 0) {
      int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (out < 0 || in < 0 || ::dup2(in, STDIN_FILENO) < 0 || ::dup2(out, STDOUT_FILENO) < 0 ||
          ::dup2(out, STDERR_FILENO) < 0 || ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
          ::getppid() != parent) {
        ::_exit(127);
      }
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() { stop(SIGTERM); }

  bool running() {
    if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
    }
    return pid_ > 0;
  }

  // Signals the process and reaps it; SIGKILL if it has not gone within two seconds.
  void stop(int sig) {
    if (pid_ <= 0) {
      return;
    }
    ::kill(pid_, sig);
    if (!waitUntil([this] { return !running(); }, 2s)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
};

// The power cut: each block holds until its TIMER runs out; the last one holds for the rest of
// the test (dummy-ups would start over at the end of the file). The first block lasts long
// enough for upsd to come up and the test to see it.
constexpr const char* kPowerCut = R"(ups.mfr: Dummy Power
ups.model: DP-3000 RM
battery.charge.low: 20
battery.charge.warning: 50
battery.runtime.low: 120
input.transfer.low: 170
input.transfer.high: 270
battery.charge: 100
battery.runtime: 1800
input.voltage: 230.4
ups.load: 35
ups.realpower: 1050
ups.status: OL
TIMER 4
input.voltage: 0
battery.charge: 80
battery.runtime: 1200
ups.status: OB DISCHRG
TIMER 2
battery.charge: 15
battery.runtime: 90
ups.status: OB LB
TIMER 2
input.voltage: 229.8
battery.charge: 30
battery.runtime: 400
ups.status: OL CHRG
TIMER 600
)";

// A UPS that stays on line, for tests that need upsd but no power cut.
constexpr const char* kOnLine = R"(ups.mfr: Dummy Power
ups.model: DP-3000 RM
battery.charge: 100
battery.runtime: 1800
input.voltage: 230.4
ups.load: 35
ups.status: OL
TIMER 600
)";

std::string flags(const Ups& ups) {
  std::string text;
  for (const auto& f : ups.statusFlags) {
    text += (text.empty() ? "" : " ") + f;
  }
  return text;
}

const Reading* findReading(const Report& report, const std::string& id) {
  auto it = std::find_if(report.readings.begin(), report.readings.end(),
                         [&id](const Reading& r) { return r.id == id; });
  return it == report.readings.end() ? nullptr : &*it;
}

std::vector<Event> upsEvents(const Report& report) {
  std::vector<Event> events;
  std::copy_if(report.events.begin(), report.events.end(), std::back_inserter(events),
               [](const Event& e) { return e.type == "ups_status"; });
  return events;
}

class Nut : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stdfs::exists(NUT_DUMMY_UPS) && stdfs::exists(NUT_UPSD))
        << "the NUT tests need nut-server (dummy-ups and upsd)";
    const auto& dir = dir_.path();
    port_ = freePort();
    test::writeFile(dir / "ups.conf",
                    "[ups1]\n  driver = dummy-ups\n  port = ups1.seq\n"
                    "  desc = \"aibox test UPS\"\n  pollinterval = 1\n");
    test::writeFile(dir / "upsd.conf", "LISTEN 127.0.0.1 " + std::to_string(port_) + "\n");
    test::writeFile(dir / "upsd.users", "");
    test::writeFile(dir / "ups1.seq", sequence());
    // upsd warns about configuration others can read.
    ::chmod(dir.c_str(), 0700);
    std::vector<std::string> env{"NUT_CONFPATH=" + dir.string(), "NUT_STATEPATH=" + dir.string()};
    driver_.emplace(std::vector<std::string>{NUT_DUMMY_UPS, "-a", "ups1", "-u", "root", "-F"}, env,
                    dir / "driver.log");
    ASSERT_TRUE(waitUntil([&dir] { return stdfs::exists(dir / "dummy-ups-ups1"); }, 5s))
        << "dummy-ups did not start:\n"
        << test::readFile(dir / "driver.log");
    upsd_.emplace(std::vector<std::string>{NUT_UPSD, "-u", "root", "-F"}, env, dir / "upsd.log");
    ASSERT_TRUE(waitUntil([this] { return accepts(port_); }, 5s))
        << "upsd did not start:\n"
        << test::readFile(dir / "upsd.log");
  }

  void TearDown() override {
    upsd_.reset();
    driver_.reset();
  }

  // What dummy-ups plays.
  virtual const char* sequence() const { return kPowerCut; }

  std::string logs() const {
    return "driver:\n" + test::readFile(dir_.path() / "driver.log") + "upsd:\n" +
           test::readFile(dir_.path() / "upsd.log");
  }

  test::TempDir dir_;
  int port_ = 0;
  std::optional<Daemon> driver_;
  std::optional<Daemon> upsd_;
};

struct Observed {
  std::vector<std::string> states;  // each distinct ups.status, in order
  std::vector<Event> upsEvents;
  std::map<std::string, Report> reportByState;  // the first report in each state
  std::vector<std::string> problems;            // each distinct problem, in order

  // For failure messages.
  std::string describe() const {
    std::string text = "states:";
    for (const auto& s : states) {
      text += " [" + s + "]";
    }
    text += "\nproblems:";
    for (const auto& p : problems) {
      text += " [" + p + "]";
    }
    return text + "\n";
  }
};

// Polls every 100 ms until the UPS reports `last` (or 20 s pass), noting what changes.
Observed pollUntil(Source& source, Monitor& monitor, const std::string& last) {
  Observed seen;
  auto deadline = Clock::now() + 20s;
  while (Clock::now() < deadline) {
    auto report = source.poll();
    monitor.evaluate(report);
    auto events = upsEvents(report);
    seen.upsEvents.insert(seen.upsEvents.end(), events.begin(), events.end());
    const auto& problem = report.upses.empty() ? std::string() : report.upses.front().problem;
    if (!problem.empty() && (seen.problems.empty() || seen.problems.back() != problem)) {
      seen.problems.push_back(problem);
    }
    if (!report.upses.empty() && report.upses.front().communicating && problem.empty()) {
      auto state = flags(report.upses.front());
      if (seen.states.empty() || seen.states.back() != state) {
        seen.states.push_back(state);
        seen.reportByState.emplace(state, report);
      }
      if (state == last) {
        break;
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  return seen;
}

TEST_F(Nut, FollowsAPowerCutAndRaisesEventsForEachChange) {
  auto source = makeNutSource({{"ups1", "127.0.0.1", port_}});
  EXPECT_EQ(source->name(), "nut");
  Monitor monitor;
  auto seen = pollUntil(*source, monitor, "OL CHRG");
  // upsd says WAIT until the driver's first data is in.
  std::erase(seen.states, "WAIT");
  ASSERT_EQ(seen.states, (std::vector<std::string>{"OL", "OB DISCHRG", "OB LB", "OL CHRG"}))
      << seen.describe() << logs();

  const auto& online = seen.reportByState.at("OL");
  ASSERT_EQ(online.upses.size(), 1u);
  const auto& ups = online.upses.front();
  EXPECT_EQ(ups.name, "ups1");
  EXPECT_EQ(ups.host, "127.0.0.1");
  EXPECT_EQ(ups.port, port_);
  EXPECT_EQ(ups.chip, "ups-ups1");
  EXPECT_TRUE(ups.communicating);
  EXPECT_EQ(ups.manufacturer, "Dummy Power");
  EXPECT_EQ(ups.model, "DP-3000 RM");
  EXPECT_EQ(ups.batteryCharge, 100);
  EXPECT_EQ(ups.batteryRuntime, 1800);
  EXPECT_EQ(ups.inputVoltage, 230.4);
  EXPECT_EQ(ups.load, 35);
  EXPECT_EQ(ups.realPowerWatts, 1050);
  EXPECT_EQ(ups.status(), Status::ok);
  const auto* charge = findReading(online, "ups-ups1/battery_charge");
  ASSERT_NE(charge, nullptr);
  EXPECT_EQ(charge->kind, Kind::charge);
  EXPECT_EQ(charge->thresholds.criticalLow, 20);
  EXPECT_EQ(charge->thresholds.warningLow, 50);
  const auto* voltage = findReading(online, "ups-ups1/input_voltage");
  ASSERT_NE(voltage, nullptr);
  EXPECT_EQ(voltage->thresholds.criticalLow, 170);
  EXPECT_EQ(voltage->thresholds.criticalHigh, 270);
  ASSERT_NE(findReading(online, "ups-ups1/realpower"), nullptr);
  EXPECT_EQ(findReading(online, "ups-ups1/load")->status, Status::ok);

  const auto& onBattery = seen.reportByState.at("OB DISCHRG").upses.front();
  EXPECT_TRUE(onBattery.has("OB"));
  EXPECT_EQ(onBattery.status(), Status::warning);
  const auto& low = seen.reportByState.at("OB LB");
  EXPECT_EQ(low.upses.front().batteryCharge, 15);
  EXPECT_EQ(low.upses.front().status(), Status::critical);
  EXPECT_EQ(findReading(low, "ups-ups1/battery_charge")->status, Status::critical);
  EXPECT_EQ(findReading(low, "ups-ups1/battery_runtime")->status, Status::critical);
  EXPECT_EQ(seen.reportByState.at("OL CHRG").upses.front().batteryCharge, 30);

  ASSERT_EQ(seen.upsEvents.size(), 3u) << logs();
  EXPECT_EQ(seen.upsEvents[0].severity, Status::warning);
  EXPECT_NE(seen.upsEvents[0].message.find("status OB DISCHRG"), std::string::npos)
      << seen.upsEvents[0].message;
  EXPECT_EQ(seen.upsEvents[1].severity, Status::critical);
  EXPECT_NE(seen.upsEvents[1].message.find("OB LB"), std::string::npos);
  EXPECT_EQ(seen.upsEvents[1].value, 15);
  EXPECT_EQ(seen.upsEvents[2].severity, Status::ok);
  for (const auto& e : seen.upsEvents) {
    EXPECT_EQ(e.subject, "ups-ups1");
    EXPECT_EQ(e.source, "nut");
  }
}

class NutOnLine : public Nut {
 protected:
  const char* sequence() const override { return kOnLine; }
};

TEST_F(NutOnLine, CommunicationIsLostAfterThreeFailedPolls) {
  auto source = makeNutSource({{"ups1", "127.0.0.1", port_}});
  Monitor monitor;
  auto seen = pollUntil(*source, monitor, "OL");
  ASSERT_TRUE(!seen.states.empty() && seen.states.back() == "OL") << seen.describe() << logs();
  upsd_->stop(SIGKILL);
  for (int poll = 1; poll <= 3; ++poll) {
    auto report = source->poll();
    monitor.evaluate(report);
    ASSERT_EQ(report.upses.size(), 1u);
    const auto& ups = report.upses.front();
    EXPECT_FALSE(ups.problem.empty()) << poll;
    auto events = upsEvents(report);
    if (poll < 3) {
      // One or two missed answers are a blip, not an outage.
      EXPECT_TRUE(ups.communicating) << poll;
      EXPECT_EQ(ups.status(), Status::ok) << poll;
      EXPECT_EQ(flags(ups), "OL") << "the last known flags stay";
      EXPECT_TRUE(events.empty()) << poll;
    } else {
      EXPECT_FALSE(ups.communicating);
      EXPECT_EQ(ups.status(), Status::critical);
      ASSERT_EQ(events.size(), 1u);
      EXPECT_EQ(events.front().severity, Status::critical);
      EXPECT_NE(events.front().message.find("communication lost"), std::string::npos)
          << events.front().message;
      EXPECT_NE(events.front().message.find("127.0.0.1"), std::string::npos)
          << events.front().message;
    }
    const auto* charge = findReading(report, "ups-ups1/battery_charge");
    ASSERT_NE(charge, nullptr);
    EXPECT_FALSE(charge->value) << "no answer is no value, not 0";
  }
}

TEST_F(NutOnLine, AnUpsUpsdDoesNotKnowIsAProblemNotACrash) {
  auto source = makeNutSource({{"ups1", "127.0.0.1", port_}, {"nosuch", "127.0.0.1", port_}});
  Monitor monitor;
  auto seen = pollUntil(*source, monitor, "OL");
  ASSERT_TRUE(!seen.states.empty() && seen.states.back() == "OL") << seen.describe() << logs();
  auto report = source->poll();
  ASSERT_EQ(report.upses.size(), 2u);
  EXPECT_TRUE(report.upses[0].problem.empty()) << report.upses[0].problem;
  const auto& unknown = report.upses[1];
  EXPECT_EQ(unknown.chip, "ups-nosuch");
  EXPECT_NE(unknown.problem.find("Unknown UPS"), std::string::npos) << unknown.problem;
  EXPECT_TRUE(unknown.statusFlags.empty());
}

TEST(NutSource, NoUpsConfiguredSaysHowToConfigureOne) {
  auto report = makeNutSource({})->poll();
  ASSERT_TRUE(report.problem);
  EXPECT_NE(report.problem->find("ups = NAME@HOST:PORT"), std::string::npos) << *report.problem;
}

TEST(NutSource, NobodyListeningIsAProblemNamingTheAddress) {
  int port = freePort();
  auto source = makeNutSource({{"ups1", "127.0.0.1", port}});
  auto report = source->poll();
  ASSERT_EQ(report.upses.size(), 1u);
  EXPECT_NE(report.upses.front().problem.find("127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << report.upses.front().problem;
  EXPECT_TRUE(report.upses.front().communicating);
}

}  // namespace
}  // namespace aibox::hwmon
