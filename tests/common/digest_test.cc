#include "common/digest.h"

#include "gtest/gtest.h"

namespace idflow {
namespace {

TEST(DigestTest, KnownHashes) {
  EXPECT_EQ(Md5Hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(Sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, KeyedDigestDependsOnKeyAndIsTruncated) {
  // RFC 4231 test case 2, first 16 bytes.
  EXPECT_EQ(KeyedDigest("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c7");
  EXPECT_NE(KeyedDigest("k1", "v"), KeyedDigest("k2", "v"));
  EXPECT_EQ(KeyedDigest("k1", "v").size(), 32u);
}

TEST(DigestTest, RandomBytesAreRandom) {
  EXPECT_EQ(RandomBytes(32).size(), 32u);
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
}

}  // namespace
}  // namespace idflow
