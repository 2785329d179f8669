// ApprovalBook: the counting rules of M-of-N approval, over a MemoryStore and
// a FakeClock.
#include "kms/access/approvals.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/storage/memory_store.h"

namespace clavis::kms::access {
namespace {

using ::testing::HasSubstr;

class ApprovalsTest : public ::testing::Test {
 protected:
  ApprovalName Create(uint32_t required = 2) {
    NewApproval request;
    request.key = KeyName{"acme", "crm"};
    request.action = "ScheduleDestruction";
    request.resource = "tenants/acme/keys/crm";
    request.requester = "tenants/acme/principals/alice";
    request.approvals_required = required;
    request.payload_type = "clavis.v1.ScheduleDestructionRequest";
    request.payload = "payload";
    auto created = book_.Create(request);
    EXPECT_TRUE(created.ok()) << created.status();
    return ApprovalName{created->tenant(), created->id()};
  }

  MemoryStore store_;
  FakeClock clock_;
  ApprovalBook book_{&store_, &clock_, absl::Hours(1)};
};

TEST_F(ApprovalsTest, RunsOnceAtTheQuorumOfDistinctApprovers) {
  const ApprovalName name = Create(2);
  auto first = book_.Approve(name, "tenants/acme/principals/bob");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->run_now);
  auto again = book_.Approve(name, "tenants/acme/principals/bob");
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status()));
  EXPECT_THAT(again.status().message(), HasSubstr("distinct"));
  auto second = book_.Approve(name, "tenants/acme/principals/carol");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->run_now);
  EXPECT_EQ(second->record.payload(), "payload");
  auto late = book_.Approve(name, "tenants/acme/principals/dave");
  EXPECT_TRUE(absl::IsFailedPrecondition(late.status())) << "no second run";
  ASSERT_TRUE(book_.Complete(name, absl::OkStatus()).ok());
  auto done = book_.Get(name);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), kApprovalExecuted);
  EXPECT_EQ(done->result_code(), 0);
  EXPECT_TRUE(done->payload().empty());
}

TEST_F(ApprovalsTest, TheRequesterCannotApproveTheirOwnRequest) {
  const ApprovalName name = Create(2);
  auto self = book_.Approve(name, "tenants/acme/principals/alice");
  EXPECT_TRUE(absl::IsFailedPrecondition(self.status()));
  EXPECT_THAT(self.status().message(), HasSubstr("requester cannot approve"));
}

TEST_F(ApprovalsTest, ExpiredRequestsCannotBeApproved) {
  const ApprovalName name = Create(2);
  ASSERT_TRUE(book_.Approve(name, "tenants/acme/principals/bob").ok());
  clock_.Advance(absl::Hours(1));
  auto late = book_.Approve(name, "tenants/acme/principals/carol");
  EXPECT_TRUE(absl::IsFailedPrecondition(late.status()));
  EXPECT_THAT(late.status().message(), HasSubstr("expired"));
  auto record = book_.Get(name);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state(), kApprovalExpired);
  auto listed = book_.List(KeyName{"acme", "crm"}, /*include_finished=*/false);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
}

TEST_F(ApprovalsTest, ConcurrentApprovalsRunTheActionExactlyOnce) {
  const ApprovalName name = Create(3);
  std::atomic<int> runs{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = book_.Approve(name, absl::StrCat("tenants/acme/principals/p", i));
      if (r.ok() && r->run_now) ++runs;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), 1);
  auto record = book_.Get(name);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->approvers_size(), 3);
}

TEST_F(ApprovalsTest, BadNamesAndUnknownIds) {
  EXPECT_TRUE(absl::IsInvalidArgument(ParseApprovalName("tenants/acme/approvals/x").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseApprovalName("tenants/acme/keys/crm").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseApprovalName("").status()));
  auto name = ParseApprovalName("tenants/acme/approvals/ar-0123456789abcdef01234567");
  ASSERT_TRUE(name.ok());
  EXPECT_TRUE(absl::IsNotFound(book_.Get(*name).status()));
  EXPECT_TRUE(absl::IsNotFound(book_.Approve(*name, "tenants/acme/principals/bob").status()));
}

TEST_F(ApprovalsTest, DamagedRecordsAreReportedNotTrusted) {
  const ApprovalName name = Create(2);
  const std::string key = std::string("a\0acme\0", 7) + name.id;
  ASSERT_TRUE(store_.Put(key, "\xff\xff garbage").ok());
  EXPECT_TRUE(absl::IsDataLoss(book_.Approve(name, "tenants/acme/principals/bob").status()));
}

}  // namespace
}  // namespace clavis::kms::access
