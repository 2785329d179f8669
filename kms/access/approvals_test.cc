// ApprovalBook: the counting rules of M-of-N approval, over a MemoryStore and
// a FakeClock.
#include "kms/access/approvals.h"

#include <atomic>
#include <thread>

#include "absl/strings/escaping.h"
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

TEST_F(ApprovalsTest, ADeniedRequestIsFinalAndDropsItsCall) {
  const ApprovalName name = Create(2);
  ASSERT_TRUE(book_.Approve(name, "tenants/acme/principals/bob").ok());
  clock_.Advance(absl::Minutes(5));
  auto denied = book_.Deny(name, "tenants/acme/principals/carol", "not during the audit");
  ASSERT_TRUE(denied.ok()) << denied.status();
  EXPECT_EQ(denied->state(), kApprovalDenied);
  EXPECT_EQ(denied->denied_by(), "tenants/acme/principals/carol");
  EXPECT_EQ(denied->deny_reason(), "not during the audit");
  EXPECT_EQ(denied->deny_time_us(), absl::ToUnixMicros(clock_.Now()));
  auto stored = book_.Get(name);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state(), kApprovalDenied);
  EXPECT_TRUE(stored->payload().empty()) << "a denied call is not kept";
  EXPECT_EQ(stored->approvers_size(), 1) << "the approvals given stay on record";

  // Nothing revives it: no approval reaches a quorum, no grant is redeemed.
  auto approve = book_.Approve(name, "tenants/acme/principals/dave");
  EXPECT_TRUE(absl::IsFailedPrecondition(approve.status()));
  EXPECT_THAT(approve.status().message(), HasSubstr("was denied by tenants/acme/principals/carol"));
  auto redeem = book_.Redeem(name, "tenants/acme/principals/alice", "ScheduleDestruction",
                             "tenants/acme/keys/crm");
  EXPECT_TRUE(absl::IsFailedPrecondition(redeem.status()));
  EXPECT_THAT(redeem.status().message(), HasSubstr("was denied"));
  auto twice = book_.Deny(name, "tenants/acme/principals/bob", "");
  EXPECT_TRUE(absl::IsFailedPrecondition(twice.status()));
  EXPECT_THAT(twice.status().message(), HasSubstr("is DENIED already"));
  EXPECT_EQ(book_.Get(name)->denied_by(), "tenants/acme/principals/carol") << "the first stays";

  // Out of the pending list, still in the full one.
  auto pending = book_.List(KeyName{"acme", "crm"}, /*include_finished=*/false);
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
  auto all = book_.List(KeyName{"acme", "crm"}, /*include_finished=*/true);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].state(), kApprovalDenied);
}

TEST_F(ApprovalsTest, OnlyPendingRequestsCanBeDeniedAndTheMessageSaysTheState) {
  const ApprovalName executed = Create(2);
  ASSERT_TRUE(book_.Approve(executed, "tenants/acme/principals/bob").ok());
  auto quorum = book_.Approve(executed, "tenants/acme/principals/carol");
  ASSERT_TRUE(quorum.ok() && quorum->run_now);
  // Between the quorum and Complete the action is running: too late.
  auto running = book_.Deny(executed, "tenants/acme/principals/dave", "");
  EXPECT_TRUE(absl::IsFailedPrecondition(running.status()));
  EXPECT_THAT(running.status().message(), HasSubstr("EXECUTING"));
  ASSERT_TRUE(book_.Complete(executed, absl::OkStatus()).ok());
  auto done = book_.Deny(executed, "tenants/acme/principals/dave", "");
  EXPECT_TRUE(absl::IsFailedPrecondition(done.status()));
  EXPECT_THAT(done.status().message(), HasSubstr("is EXECUTED"));
  EXPECT_EQ(book_.Get(executed)->state(), kApprovalExecuted);

  const ApprovalName expired = Create(2);
  clock_.Advance(absl::Hours(1));
  auto late = book_.Deny(expired, "tenants/acme/principals/dave", "");
  EXPECT_TRUE(absl::IsFailedPrecondition(late.status()));
  EXPECT_THAT(late.status().message(), HasSubstr("is EXPIRED"));
  EXPECT_EQ(book_.Get(expired)->state(), kApprovalExpired);

  auto unknown = ParseApprovalName("tenants/acme/approvals/ar-0123456789abcdef01234567");
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(absl::IsNotFound(book_.Deny(*unknown, "tenants/acme/principals/bob", "").status()));
}

TEST_F(ApprovalsTest, TheRequesterMayWithdrawTheirOwnRequest) {
  const ApprovalName name = Create(2);
  auto withdrawn = book_.Deny(name, "tenants/acme/principals/alice", "asked by mistake");
  ASSERT_TRUE(withdrawn.ok()) << withdrawn.status();
  EXPECT_EQ(withdrawn->state(), kApprovalDenied);
  EXPECT_EQ(withdrawn->denied_by(), withdrawn->requester());
}

TEST_F(ApprovalsTest, DenyReasonsAreBoundedAndPrintable) {
  const ApprovalName name = Create(2);
  for (const std::string& bad :
       {std::string(kMaxDenyReasonBytes + 1, 'x'), std::string("two\nlines"), std::string("bell\a"),
        std::string("esc\x1b[2J"), std::string("del\x7f"), std::string("c1 \xc2\x9b"),
        std::string("rlo \xe2\x80\xae gnirts"), std::string("isolate \xe2\x81\xa6x"),
        std::string("line sep \xe2\x80\xa8")}) {
    auto denied = book_.Deny(name, "tenants/acme/principals/bob", bad);
    EXPECT_TRUE(absl::IsInvalidArgument(denied.status())) << absl::CHexEscape(bad);
  }
  EXPECT_EQ(book_.Get(name)->state(), kApprovalPending) << "a refused deny changes nothing";
  auto denied = book_.Deny(name, "tenants/acme/principals/bob",
                           std::string(kMaxDenyReasonBytes - 8, 'x') + "r\xc3\xa9sum\xc3\xa9");
  EXPECT_TRUE(denied.ok()) << denied.status() << " (UTF-8 text up to the bound is kept)";
}

TEST_F(ApprovalsTest, ConcurrentDenyAndApprovalsNeverBoth) {
  for (int round = 0; round < 20; ++round) {
    const ApprovalName name = Create(2);
    ASSERT_TRUE(book_.Approve(name, "tenants/acme/principals/bob").ok());
    std::atomic<bool> ran{false};
    std::atomic<bool> denied{false};
    std::thread approver([&] {
      auto r = book_.Approve(name, "tenants/acme/principals/carol");
      if (r.ok() && r->run_now) ran = true;
    });
    std::thread denier([&] { denied = book_.Deny(name, "tenants/acme/principals/dave", "").ok(); });
    approver.join();
    denier.join();
    EXPECT_NE(ran.load(), denied.load()) << "exactly one of them wins, round " << round;
  }
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
