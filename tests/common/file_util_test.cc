// Output paths are adversarial: `-o /dev/null` must not replace the device.
#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace idflow {
namespace {

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/file-util-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

TEST(WriteFileAtomicTest, RegularFilesAreReplacedWhole) {
  std::string dir = TempDir();
  ASSERT_TRUE(WriteFileAtomic(dir + "/f", "one").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/f", "two").ok());
  auto text = ReadFile(dir + "/f");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "two");
  // Nothing but the file: no temporary left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries += !e.path().empty();
  EXPECT_EQ(entries, 1);
}

TEST(WriteFileAtomicTest, ASymlinkStaysAndItsTargetIsReplaced) {
  std::string dir = TempDir();
  ASSERT_TRUE(WriteFileAtomic(dir + "/target", "old").ok());
  ASSERT_EQ(::symlink((dir + "/target").c_str(), (dir + "/link").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(dir + "/link", "new").ok());
  struct stat st;
  ASSERT_EQ(::lstat((dir + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the link was replaced by a file";
  EXPECT_EQ(*ReadFile(dir + "/target"), "new");
}

TEST(WriteFileAtomicTest, ADanglingSymlinkIsAnErrorAndStays) {
  std::string dir = TempDir();
  ASSERT_EQ(::symlink((dir + "/nowhere/x").c_str(), (dir + "/dangling").c_str()), 0);
  EXPECT_EQ(WriteFileAtomic(dir + "/dangling", "x").code(), absl::StatusCode::kInvalidArgument);
  struct stat st;
  ASSERT_EQ(::lstat((dir + "/dangling").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST(WriteFileAtomicTest, DevNullStaysACharacterDevice) {
  // A private null device (as root) so that a regression cannot break the
  // machine's own /dev/null for the rest of the suite.
  std::string dir = TempDir();
  std::string null_dev = dir + "/null";
  if (::mknod(null_dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) null_dev = "/dev/null";
  ASSERT_TRUE(WriteFileAtomic(null_dev, "policy: yaml\n").ok());
  struct stat st;
  ASSERT_EQ(::stat(null_dev.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << null_dev << " was replaced";
  EXPECT_NE(::access((null_dev + ".tmp").c_str(), F_OK), 0);
}

TEST(WriteFileAtomicTest, FifosAreWrittenNotReplaced) {
  std::string dir = TempDir();
  std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Keep a reader open so the writer does not block.
  int r = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(r, 0);
  ASSERT_TRUE(WriteFileAtomic(fifo, "hello").ok());
  char buf[16] = {};
  EXPECT_EQ(::read(r, buf, sizeof(buf)), 5);
  ::close(r);
  struct stat st;
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(WriteFileAtomicTest, ADirectoryIsAnError) {
  std::string dir = TempDir();
  absl::Status st = WriteFileAtomic(dir, "x");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
}

}  // namespace
}  // namespace idflow
