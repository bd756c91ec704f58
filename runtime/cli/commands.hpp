#pragma once
// The commands of aibox-runtime; each takes the arguments after its name and returns the exit
// code. Usage errors throw boost::program_options::error.

#include <string>
#include <vector>

namespace aibox::runtime {

inline constexpr int kOk = 0;
inline constexpr int kFailed = 1;
inline constexpr int kUsageError = 2;

int generateCommand(const std::vector<std::string>& args);
int makeTestModelCommand(const std::vector<std::string>& args);
int infoCommand(const std::vector<std::string>& args);

}  // namespace aibox::runtime
