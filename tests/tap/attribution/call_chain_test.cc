// The tap's call chain builder (agent/tap/attribution/call_chain.h) with fake modules.
#include "agent/tap/attribution/call_chain.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::tap {
namespace {

using ::testing::ElementsAre;

// Fake address space: module i spans [0x1000 * (i + 1), 0x1000 * (i + 2)).
struct FakeModules {
  std::vector<std::string> names;
};

bool FakeLookup(void* ctx, uintptr_t pc, ChainModule* out) {
  auto* fake = static_cast<FakeModules*>(ctx);
  size_t index = pc / 0x1000;
  if (index == 0 || index > fake->names.size()) return false;
  out->base = index * 0x1000;
  out->name = fake->names[index - 1].c_str();
  return true;
}

constexpr uintptr_t kTap = 0x1000;  // module 1
uintptr_t Pc(int module, int offset = 0x10) { return module * 0x1000 + offset; }

std::vector<std::string> Chain(const std::vector<uintptr_t>& pcs, size_t max = 8,
                               std::vector<uintptr_t>* first_pcs = nullptr) {
  FakeModules fake{{"tap.so", "libstdc++.so.6", "libsdk.so", "app", "libc.so.6", "libz.so.1",
                    "a.so", "b.so", "c.so", "d.so", "e.so"}};
  std::vector<ChainModule> out(max);
  size_t n = BuildCallChain(pcs.data(), pcs.size(), FakeLookup, &fake, kTap, out.data(), max);
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) {
    names.push_back(out[i].name);
    if (first_pcs != nullptr) first_pcs->push_back(out[i].pc);
  }
  return names;
}

TEST(CallChainTest, InnermostFirstTapExcluded) {
  // hook (tap) <- libstdc++ <- libstdc++ <- SDK <- app <- libc
  EXPECT_THAT(Chain({Pc(1), Pc(1, 0x20), Pc(2), Pc(2, 0x30), Pc(3), Pc(4), Pc(5)}),
              ElementsAre("libstdc++.so.6", "libsdk.so", "app", "libc.so.6"));
}

TEST(CallChainTest, NonConsecutiveRepeatKeepsInnermostPosition) {
  // SDK -> libstdc++ (std::function) -> SDK callback -> libc write
  std::vector<uintptr_t> first;
  EXPECT_THAT(Chain({Pc(1), Pc(5), Pc(3, 0x40), Pc(2), Pc(3, 0x50), Pc(4)}, 8, &first),
              ElementsAre("libc.so.6", "libsdk.so", "libstdc++.so.6", "app"));
  EXPECT_EQ(first[1], Pc(3, 0x40));  // the innermost pc of the module is kept
}

TEST(CallChainTest, UnknownPcsAreSkipped) {
  EXPECT_THAT(Chain({0, Pc(1), 0x10 /* no module */, Pc(3), Pc(99), Pc(4)}),
              ElementsAre("libsdk.so", "app"));
  EXPECT_THAT(Chain({}), ElementsAre());
  EXPECT_THAT(Chain({Pc(1), Pc(1)}), ElementsAre());  // only the tap
}

TEST(CallChainTest, BoundedToMaxModules) {
  std::vector<uintptr_t> pcs;
  for (int m = 2; m <= 11; ++m) pcs.push_back(Pc(m));
  EXPECT_EQ(Chain(pcs).size(), 8u);
  EXPECT_THAT(Chain(pcs, 3), ElementsAre("libstdc++.so.6", "libsdk.so", "app"));
  EXPECT_THAT(Chain(pcs, 0), ElementsAre());
}

}  // namespace
}  // namespace idflow::tap
