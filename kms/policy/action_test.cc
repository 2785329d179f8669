#include "kms/policy/action.h"

#include "gtest/gtest.h"

namespace clavis::kms::policy {
namespace {

TEST(ActionTest, NamesRoundTripAndAreUnique) {
  EXPECT_EQ(AllActions().size(), 31u);
  for (Action action : AllActions()) {
    EXPECT_EQ(ParseAction(ActionName(action)), action) << ActionName(action);
  }
  EXPECT_FALSE(ParseAction("decrypt").has_value());
  EXPECT_FALSE(ParseAction("*").has_value());
  EXPECT_FALSE(ParseAction("").has_value());
}

TEST(ActionTest, EveryActionHasOneClass) {
  ActionSet data = ActionsOfClass(ActionClass::kDataPlane);
  ActionSet read = ActionsOfClass(ActionClass::kReadOnly);
  ActionSet admin = ActionsOfClass(ActionClass::kAdministrative);
  EXPECT_EQ((data | read | admin).count(), kNumActions);
  EXPECT_TRUE((data & read).none() && (data & admin).none() && (read & admin).none());
  EXPECT_EQ(DescribeActions(data),
            "GenerateDataKey, Decrypt, ReEncrypt, Encrypt, DeriveBlindIndexKey");
  EXPECT_TRUE(Contains(admin, Action::kExportEscrow));
  EXPECT_TRUE(Contains(admin, Action::kSetPolicy));
  EXPECT_TRUE(Contains(read, Action::kReadAudit));
  EXPECT_EQ(ClassOf(Action::kDeriveBlindIndexKey), ActionClass::kDataPlane);
  EXPECT_EQ(ParseAction("DeriveBlindIndexKey"), Action::kDeriveBlindIndexKey);
}

TEST(ActionTest, SuggestsCloseNames) {
  EXPECT_EQ(ClosestAction("Decrpyt"), Action::kDecrypt);
  EXPECT_EQ(ClosestAction("GetKeys"), Action::kGetKey);
  EXPECT_EQ(ClosestAction("DeriveBlindIndexKeys"), Action::kDeriveBlindIndexKey);
  EXPECT_FALSE(ClosestAction("Frobnicate").has_value());
  EXPECT_FALSE(ClosestAction(std::string(1000, 'x')).has_value());
}

}  // namespace
}  // namespace clavis::kms::policy
