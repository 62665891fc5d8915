// The usage context an event is judged under: what its process declared,
// the device's changes, then the process's own, each from its moment on.
#include "agent/context.h"

#include <string>

#include "absl/strings/str_cat.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace idflow::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

ActiveContext Declared() {
  ActiveContext c;
  c.scenarios = {"device_discovery"};
  c.consents = {{"user_experience_program", true}};
  c.run_id = "run-1";
  return c;
}

ContextPatch Scenario(const std::string& s) {
  ContextPatch p;
  p.scenarios = std::vector<std::string>{s};
  return p;
}

ContextPatch Consent(const std::string& k, bool v) {
  ContextPatch p;
  p.consents[k] = v;
  return p;
}

TEST(ContextBoardTest, WithoutChangesTheDeclarationHolds) {
  ContextBoard board;
  EXPECT_EQ(board.Resolve(Declared(), 42, 1000), Declared());
}

TEST(ContextBoardTest, ADeviceChangeHoldsFromItsMomentOnForEveryProcess) {
  ContextBoard board;
  ASSERT_TRUE(board.Set(0, 1000, Consent("user_experience_program", false)));
  // Before the change: as declared.
  EXPECT_EQ(board.Resolve(Declared(), 42, 999), Declared());
  // At and after it, for any process; the other fields stay as declared.
  for (uint32_t pid : {42u, 43u}) {
    ActiveContext c = board.Resolve(Declared(), pid, 1000);
    EXPECT_THAT(c.consents, ElementsAre(Pair("user_experience_program", false)));
    EXPECT_THAT(c.scenarios, ElementsAre("device_discovery"));
    EXPECT_EQ(c.run_id, "run-1");
  }
}

TEST(ContextBoardTest, ScenariosReplaceConsentsMergeRunIdClears) {
  ContextBoard board;
  ContextPatch p = Scenario("casting");
  p.consents["location"] = true;
  p.run_id = "";
  board.Set(0, 10, p);
  ActiveContext c = board.Resolve(Declared(), 1, 10);
  EXPECT_THAT(c.scenarios, ElementsAre("casting"));
  EXPECT_THAT(c.consents,
              UnorderedElementsAre(Pair("user_experience_program", true), Pair("location", true)));
  EXPECT_EQ(c.run_id, "");
  // An empty list is "no scenario active", not "unchanged".
  ContextPatch none;
  none.scenarios = std::vector<std::string>{};
  board.Set(0, 20, none);
  EXPECT_THAT(board.Resolve(Declared(), 1, 20).scenarios, IsEmpty());
}

TEST(ContextBoardTest, AProcessChangeWinsOverTheDeviceForThatProcessOnly) {
  ContextBoard board;
  board.Set(42, 100, Scenario("car_connection"));
  board.Set(0, 200, Scenario("casting"));  // later, but the wider scope
  EXPECT_THAT(board.Resolve(Declared(), 42, 250).scenarios, ElementsAre("car_connection"));
  EXPECT_THAT(board.Resolve(Declared(), 7, 250).scenarios, ElementsAre("casting"));
  EXPECT_THAT(board.Resolve(Declared(), 42, 150).scenarios, ElementsAre("car_connection"));
  EXPECT_THAT(board.Resolve(Declared(), 42, 99).scenarios, ElementsAre("device_discovery"));
}

TEST(ContextBoardTest, ChangesAreOrderedByTimeNotByArrival) {
  ContextBoard board;
  board.Set(0, 300, Scenario("c"));
  board.Set(0, 100, Scenario("a"));
  board.Set(0, 200, Scenario("b"));
  board.Set(0, 200, Scenario("b2"));  // same millisecond: the later call wins
  EXPECT_THAT(board.Resolve(Declared(), 1, 150).scenarios, ElementsAre("a"));
  EXPECT_THAT(board.Resolve(Declared(), 1, 250).scenarios, ElementsAre("b2"));
  EXPECT_THAT(board.Resolve(Declared(), 1, 300).scenarios, ElementsAre("c"));
}

TEST(ContextBoardTest, AnExitedProcessIsForgotten) {
  ContextBoard board;
  board.Set(42, 100, Scenario("casting"));
  EXPECT_EQ(board.process_scopes(), 1u);
  board.ForgetProcess(42);
  EXPECT_EQ(board.process_scopes(), 0u);
  // A new process with the reused pid starts from its own declaration.
  EXPECT_EQ(board.Resolve(Declared(), 42, 200), Declared());
}

TEST(ContextBoardTest, HistoryIsBoundedAndOldChangesAreFoldedNotLost) {
  ContextBoard board;
  board.Set(0, 1, Consent("early", false));
  for (int i = 0; i < static_cast<int>(ContextBoard::kMaxChangesPerScope) + 10; ++i) {
    board.Set(0, 100 + i, Scenario("s" + std::to_string(i)));
  }
  // The first change was folded into the floor: still in force.
  ActiveContext c = board.Resolve(Declared(), 1, 1'000'000);
  EXPECT_THAT(c.consents,
              UnorderedElementsAre(Pair("user_experience_program", true), Pair("early", false)));
  EXPECT_THAT(c.scenarios, ElementsAre(absl::StrCat("s", ContextBoard::kMaxChangesPerScope + 9)));
}

TEST(ContextBoardTest, TheProcessTableIsBounded) {
  ContextBoard board;
  for (uint32_t pid = 1; pid <= ContextBoard::kMaxProcessScopes; ++pid) {
    ASSERT_TRUE(board.Set(pid, 1, Scenario("x")));
  }
  EXPECT_FALSE(board.Set(ContextBoard::kMaxProcessScopes + 1, 1, Scenario("x")));
  EXPECT_TRUE(board.Set(1, 2, Scenario("y")));  // an existing process: fine
  EXPECT_TRUE(board.Set(0, 2, Scenario("y")));  // the device: always
}

}  // namespace
}  // namespace idflow::agent
