#include "common/fs/fs.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/support.hpp"

namespace aibox::fs {
namespace {

TEST(WriteFileAtomic, ReplacesContentWithExactModeAndNoTempLeft) {
  test::TempDir dir;
  auto path = dir.path() / "secret";
  writeFileAtomic(path, "one", 0600);
  writeFileAtomic(path, "two", 0640);
  EXPECT_EQ(test::readFile(path), "two");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(WriteFileAtomic, MissingDirectoryIsAnErrorNamingThePath) {
  test::TempDir dir;
  try {
    writeFileAtomic(dir.path() / "no/such/file", "x", 0600);
    FAIL();
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/file"), std::string::npos);
  }
}

}  // namespace
}  // namespace aibox::fs
