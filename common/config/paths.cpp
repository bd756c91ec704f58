#include <cstdlib>

#include "common/config/config.hpp"

namespace aibox::config {

Paths::Paths(std::filesystem::path root)
    : root_(std::filesystem::absolute(std::move(root)).lexically_normal()) {}

Paths Paths::resolve(const std::optional<std::string>& rootArgument) {
  if (rootArgument && !rootArgument->empty()) {
    return Paths(*rootArgument);
  }
  if (const char* env = std::getenv("AIBOX_ROOT");
      env != nullptr && *env != '\0') {  // NOLINT(concurrency-mt-unsafe)
    return Paths(env);
  }
  return Paths("/");
}

std::filesystem::path Paths::under(std::string_view absolute) const {
  // Normalised as an absolute path first, so ".." can never climb out of the root.
  auto inside = (std::filesystem::path("/") / absolute).lexically_normal();
  return (root_ / inside.relative_path()).lexically_normal();
}

}  // namespace aibox::config
