// ReadElfImage (agent/uprobe/elf_image.h) on real files: this test binary
// (one of its functions and its PT_LOAD span), a file that is not ELF, a missing one.
#include "agent/uprobe/elf_image.h"

#include <unistd.h>

#include <climits>
#include <cstdint>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

// A function of this binary with a plain name in its symbol table.
extern "C" __attribute__((noinline, used)) int idflow_elf_image_probe(int x) { return x + 1; }

namespace idflow::agent {
namespace {

using ::idflow::testing::IsOk;
using ::idflow::testing::StatusIs;

std::string SelfPath() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(ElfImageTest, ReadsTheSpanAndFunctionSymbolsOfThisBinary) {
  absl::StatusOr<ElfImage> image =
      ReadElfImage(SelfPath(), {"idflow_elf_image_probe", "no_such_function_here"});
  ASSERT_THAT(image, IsOk());
  ASSERT_EQ(image->symbols.count("idflow_elf_image_probe"), 1u);
  EXPECT_EQ(image->symbols.count("no_such_function_here"), 0u);
  const uint64_t vaddr = image->symbols.at("idflow_elf_image_probe");
  EXPECT_GE(vaddr, image->lo_vaddr);
  EXPECT_LT(vaddr, image->hi_vaddr);
  // Where it runs: the load bias is page-aligned (what ProbedModule needs).
  const uint64_t bias = reinterpret_cast<uint64_t>(&idflow_elf_image_probe) - vaddr;
  EXPECT_EQ(bias & 0xfff, 0u);
  EXPECT_EQ(idflow_elf_image_probe(1), 2);
  EXPECT_TRUE(image->has_symtab);
}

TEST(ElfImageTest, NotElfAndMissingAreErrorsNamingTheFile) {
  const std::string path = ::testing::TempDir() + "/not-elf";
  std::ofstream(path) << "#!/bin/sh\necho hi\n";
  absl::StatusOr<ElfImage> bad = ReadElfImage(path, {"main"});
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(bad.status().message().find(path), std::string::npos);
  EXPECT_THAT(ReadElfImage(path + ".missing", {"main"}), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace idflow::agent
