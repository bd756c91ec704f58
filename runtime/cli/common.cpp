#include <boost/program_options.hpp>
#include <iostream>

#include "runtime/cli/commands.hpp"

namespace aibox::runtime {

namespace po = boost::program_options;

std::optional<po::variables_map> parseArguments(const std::vector<std::string>& args,
                                                const po::options_description& options,
                                                const char* positional,
                                                std::string* positionalValue) {
  po::options_description all;
  all.add(options);
  po::options_description hidden;
  po::positional_options_description positions;
  if (positional != nullptr) {
    hidden.add_options()(positional, po::value(positionalValue)->required());
    all.add(hidden);
    positions.add(positional, 1);
  }
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(positions).run(), vm);
  if (vm.count("help") != 0) {
    std::cout << options << '\n';
    return std::nullopt;
  }
  po::notify(vm);
  return vm;
}

std::unique_ptr<engine::Model> loadModel(const std::string& path) {
  auto file = engine::GgufFile::open(path);
  if (auto* error = std::get_if<engine::Error>(&file)) {
    std::cerr << "aibox-runtime: " << path << ": " << error->message << '\n';
    return nullptr;
  }
  auto loaded = engine::Model::load(std::get<0>(file));
  if (auto* error = std::get_if<engine::Error>(&loaded)) {
    std::cerr << "aibox-runtime: " << path << ": " << error->message << '\n';
    return nullptr;
  }
  return std::move(std::get<0>(loaded));
}

}  // namespace aibox::runtime
