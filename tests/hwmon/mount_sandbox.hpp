#pragma once
// A private mount namespace for the test process, so that a fake sysfs tree can be bind-mounted
// over /sys/class without the host (or other tests) seeing it.

#include <filesystem>
#include <string>

namespace aibox::hwmon::test {

// Moves this process into its own mount namespace (once per process) with private propagation.
// As root that is unshare(CLONE_NEWNS); without CAP_SYS_ADMIN it falls back to a user namespace
// that maps the caller to root. Returns an empty string, or why it failed.
std::string enterPrivateMountNamespace();

// Bind-mounts `from` over `onto` for the lifetime of the object.
class BindMount {
 public:
  BindMount(const std::filesystem::path& from, const std::filesystem::path& onto);
  BindMount(const BindMount&) = delete;
  BindMount& operator=(const BindMount&) = delete;
  ~BindMount();
  const std::string& error() const { return error_; }  // empty once mounted

 private:
  std::filesystem::path onto_;
  std::string error_;
  bool mounted_ = false;
};

}  // namespace aibox::hwmon::test
