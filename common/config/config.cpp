#include "common/config/config.hpp"

#include <boost/program_options/parsers.hpp>
#include <fstream>
#include <set>

namespace po = boost::program_options;

namespace aibox::config {
namespace {

std::string trim(std::string_view s) {
  auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) {
    return {};
  }
  auto end = s.find_last_not_of(" \t\r");
  return std::string(s.substr(begin, end - begin + 1));
}

bool validName(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

void parseCommandLine(int argc, const char* const* argv, const po::options_description& options,
                      po::variables_map& vm, Origins& origins) {
  try {
    auto parsed = po::command_line_parser(argc, argv).options(options).run();
    po::store(parsed, vm);
    for (const auto& option : parsed.options) {
      origins.emplace(option.string_key, "command line");
    }
  } catch (const po::error& e) {
    throw Error(std::string(e.what()) + " (see --help)");
  }
}

void parseFile(const std::filesystem::path& file, const po::options_description& settings,
               po::variables_map& vm, Origins& origins, OwnsSection owns) {
  std::ifstream in(file);
  if (!in) {
    throw Error(file.string() + ": cannot read the configuration file");
  }
  std::string section;
  std::string line;
  std::map<std::string, int, std::less<>> seenAt;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string where = file.string() + ":" + std::to_string(number);
    std::string text = trim(line);
    if (text.empty() || text.front() == '#' || text.front() == ';') {
      continue;
    }
    if (text.front() == '[') {
      if (text.back() != ']' || !validName(trim(text.substr(1, text.size() - 2)))) {
        throw Error(where + ": malformed section header '" + text + "': write it as [name]");
      }
      section = trim(text.substr(1, text.size() - 2));
      continue;
    }
    auto eq = text.find('=');
    if (eq == std::string::npos) {
      throw Error(where + ": expected 'key = value', got '" + text + "'");
    }
    std::string name = trim(text.substr(0, eq));
    std::string value = trim(text.substr(eq + 1));
    if (!validName(name)) {
      throw Error(where + ": malformed key '" + name + "'");
    }
    if (!section.empty() && owns != nullptr && !owns(section)) {
      continue;
    }
    std::string key = section.empty() ? name : section + "." + name;
    const auto* option = settings.find_nothrow(key, false);
    if (option == nullptr) {
      throw Error(where + ": unknown key '" + key +
                  "': check the spelling and the [section]; "
                  "the known keys are listed by --help");
    }
    bool repeatable = option->semantic()->is_composing();
    if (auto [it, inserted] = seenAt.emplace(key, number); !inserted && !repeatable) {
      throw Error(where + ": key '" + key + "' is already set on line " +
                  std::to_string(it->second) + ": keep one of them");
    }
    if (origins.contains(key) && origins.at(key).starts_with("command line")) {
      continue;  // set on the command line, which wins
    }
    po::parsed_options parsed(&settings);
    parsed.options.emplace_back(key, std::vector<std::string>{value});
    try {
      po::store(parsed, vm);
    } catch (const po::error&) {
      throw Error(where + ": key '" + key + "': invalid value '" + value + "'");
    }
    origins.insert_or_assign(key, where);
  }
}

void validate(po::variables_map& vm, const Origins& origins) {
  try {
    po::notify(vm);
  } catch (const InvalidValue& e) {
    auto it = origins.find(e.key);
    std::string where = it != origins.end() ? it->second : "default";
    throw Error(where + ": key '" + e.key + "': " + e.what());
  } catch (const po::error& e) {
    throw Error(e.what());
  }
}

}  // namespace aibox::config
