// aiboxctl: the technicians' CLI. Talks to aibox-agent over its unix socket. See docs/cli.md.
#include <curl/curl.h>

#include <boost/program_options.hpp>
#include <iostream>

#include "agent/ctl/ctl.hpp"
#include "aibox_build_info.hpp"
#include "common/config/config.hpp"

namespace po = boost::program_options;

namespace {

constexpr const char* kCommands =
    "Commands:\n"
    "  status     whether the agent runs; version, uptime, identity\n"
    "  users      user accounts: ls, add, rm, passwd, role, enable, disable, bootstrap-info\n"
    "  sessions   login sessions: ls, revoke\n"
    "  tokens     admin API tokens: ls, add, revoke\n"
    "  keys       inference API keys for applications: ls, add, rm\n"
    "  usage      what applications used through the gateway: show, export\n"
    "  audit      the audit log: ls, verify, export\n"
    "  hw         hardware health: sensors, gpus, power, events, history (--direct: no agent)\n"
    "  models     the model store: ls, show, import, verify, rm, jobs, cancel\n"
    "  license    the box's license: show, install, fingerprint\n"
    "  runtimes   model instances: ls, show, create, start, stop, restart, logs, events, rm\n"
    "  engines    the engine profiles and whether their binaries are installed\n"
    "\n"
    "Run 'aiboxctl COMMAND --help' for a command's options.\n"
    "Exit codes: 0 ok, 1 failed, 2 usage error, 3 agent unreachable.\n";

}  // namespace

int main(int argc, char** argv) {
  po::options_description global("Usage: aiboxctl [OPTIONS] COMMAND [ARGS]\n\nOptions");
  // clang-format off
  global.add_options()
    ("help,h", "show this help")
    ("version", "show the version")
    ("root", po::value<std::string>(), "the box's root directory (tests, the demo); also $AIBOX_ROOT")
    ("socket", po::value<std::string>(), "the agent's socket (default <root>/run/aibox/agent.sock)")
    ("json", "stable machine-readable output");
  po::options_description hidden;
  hidden.add_options()
    ("command", po::value<std::string>())
    ("args", po::value<std::vector<std::string>>());
  // clang-format on
  po::options_description all;
  all.add(global).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1).add("args", -1);

  po::variables_map vm;
  try {
    auto parsed = po::command_line_parser(argc, argv)
                      .options(all)
                      .positional(positional)
                      .allow_unregistered()
                      .run();
    po::store(parsed, vm);
    // Options after the command belong to it (e.g. "status --help").
    auto rest = po::collect_unrecognized(parsed.options, po::include_positional);
    if (vm.count("command") != 0 && !rest.empty() &&
        rest.front() == vm["command"].as<std::string>()) {
      rest.erase(rest.begin());
    }
    vm.erase("args");
    if (vm.count("command") == 0) {
      if (vm.count("version") != 0) {
        std::cout << "aiboxctl " << aibox::build::kVersion << " (build " << aibox::build::kBuildId
                  << ")\n";
        return aibox::ctl::kOk;
      }
      std::cout << global << '\n' << kCommands;
      return vm.count("help") != 0 ? aibox::ctl::kOk : aibox::ctl::kUsage;
    }
    if (vm.count("help") != 0) {
      rest.insert(rest.begin(), "--help");
    }
    aibox::ctl::Options options;
    options.json = vm.count("json") != 0;
    if (vm.count("socket") != 0) {
      if (vm.count("root") != 0) {
        std::cerr << "aiboxctl: give --root or --socket, not both\n";
        return aibox::ctl::kUsage;
      }
      options.socket = vm["socket"].as<std::string>();
    }
    auto root = vm.count("root") != 0 ? std::optional(vm["root"].as<std::string>()) : std::nullopt;
    auto paths = aibox::config::Paths::resolve(root);
    options.root = paths.root();
    if (options.socket.empty()) {
      options.socket = paths.agentSocket();
    }
    std::string command = vm["command"].as<std::string>();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (command == "status") {
      return aibox::ctl::statusCommand(options, rest);
    }
    if (command == "users") {
      return aibox::ctl::usersCommand(options, rest);
    }
    if (command == "sessions") {
      return aibox::ctl::sessionsCommand(options, rest);
    }
    if (command == "tokens") {
      return aibox::ctl::tokensCommand(options, rest);
    }
    if (command == "keys") {
      return aibox::ctl::keysCommand(options, rest);
    }
    if (command == "usage") {
      return aibox::ctl::usageCommand(options, rest);
    }
    if (command == "audit") {
      return aibox::ctl::auditCommand(options, rest);
    }
    if (command == "models") {
      return aibox::ctl::modelsCommand(options, rest);
    }
    if (command == "license") {
      return aibox::ctl::licenseCommand(options, rest);
    }
    if (command == "runtimes") {
      return aibox::ctl::runtimesCommand(options, rest);
    }
    if (command == "engines") {
      return aibox::ctl::enginesCommand(options, rest);
    }
    if (command == "hw" || command == "hardware") {
      return aibox::ctl::hardwareCommand(options, rest);
    }
    std::cerr << "aiboxctl: unknown command '" << command << "'\n\n" << kCommands;
    return aibox::ctl::kUsage;
  } catch (const po::error& e) {
    std::cerr << "aiboxctl: " << e.what() << " (see aiboxctl --help)\n";
    return aibox::ctl::kUsage;
  }
}
