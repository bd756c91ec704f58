#pragma once
// A private mount namespace for the test process, so that a fake sysfs tree can be bind-mounted
// over /sys/class, or a small tmpfs over a directory, without the host (or other tests) seeing
// it. Child processes (the agent) inherit the namespace.

#include <cstdint>
#include <filesystem>
#include <string>

namespace aibox::test {

// Moves this process into its own mount namespace (once per process) with private propagation.
// As root that is unshare(CLONE_NEWNS); without CAP_SYS_ADMIN it falls back to a user namespace
// that maps the caller to root. Returns an empty string, or why it failed.
std::string enterPrivateMountNamespace();

// A mount for the lifetime of the object.
class Mount {
 public:
  // Bind-mounts `from` over `onto`.
  Mount(const std::filesystem::path& from, const std::filesystem::path& onto);
  // A tmpfs of `bytes` over `onto` (a disk that fills up).
  Mount(std::uint64_t tmpfsBytes, const std::filesystem::path& onto);
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;
  ~Mount();
  const std::string& error() const { return error_; }  // empty once mounted

 private:
  std::filesystem::path onto_;
  std::string error_;
  bool mounted_ = false;
};

}  // namespace aibox::test
