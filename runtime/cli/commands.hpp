#pragma once
// The commands of aibox-runtime; each takes the arguments after its name and returns the exit
// code. Usage errors throw boost::program_options::error.

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/engine/model.hpp"

namespace aibox::runtime {

inline constexpr int kOk = 0;
inline constexpr int kFailed = 1;
inline constexpr int kUsageError = 2;

// Parses a command's arguments: `options` are shown by --help, `positional` (when given) names
// the one argument without a dash. Returns nullopt after printing the help.
std::optional<boost::program_options::variables_map> parseArguments(
    const std::vector<std::string>& args,
    const boost::program_options::options_description& options, const char* positional = nullptr,
    std::string* positionalValue = nullptr);

// Opens and loads a GGUF model; null after printing why it cannot be used.
std::unique_ptr<engine::Model> loadModel(const std::string& path);

int generateCommand(const std::vector<std::string>& args);
int serveCommand(const std::vector<std::string>& args);
int makeTestModelCommand(const std::vector<std::string>& args);
int infoCommand(const std::vector<std::string>& args);

}  // namespace aibox::runtime
