#include "kms/audit/audit_log.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "crypto/ed25519.h"
#include "crypto/kdf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_query.h"
#include "kms/audit/audit_testing.h"
#include "kms/audit/audit_verifier.h"

namespace clavis::kms {
namespace {

using audit_testing::Call;
using audit_testing::FirstFile;
using audit_testing::Frames;
using audit_testing::NewTempDir;
using audit_testing::ReadFile;
using audit_testing::TestOptions;
using audit_testing::WriteFile;
using ::testing::HasSubstr;

std::vector<AuditRecord> AllRecords(const std::string& dir) {
  std::vector<AuditRecord> out;
  AuditFilter all;
  all.include_checkpoints = true;
  absl::Status s = ForEachAuditRecord(dir, all, [&](const AuditRecord& r) {
    out.push_back(r);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

AuditVerifyReport Verify(const std::string& dir, const crypto::Ed25519KeyPair& pair) {
  auto report = VerifyAuditLog(dir, pair.public_key);
  EXPECT_TRUE(report.ok()) << report.status();
  return report.ok() ? *report : AuditVerifyReport{};
}

class AuditLogTest : public ::testing::Test {
 protected:
  crypto::Ed25519KeyPair pair_ = crypto::Ed25519KeyPair::Generate();
  std::string dir_ = NewTempDir("log");
};

TEST_F(AuditLogTest, RoundTripKeepsEveryField) {
  AuditLogOptions options = TestOptions(dir_, pair_);
  options.checkpoint_every_records = 0;
  std::atomic<int64_t> now_us{1800000000000000};
  options.now = [&] { return absl::FromUnixMicros(now_us.fetch_add(1)); };
  auto log = AuditLog::Open(std::move(options));
  ASSERT_TRUE(log.ok()) << log.status();
  AuditRecord call = Call(7);
  call.result_code = absl::StatusCode::kPermissionDenied;
  call.message = "denied by policy";
  call.context_hash = *(*log)->HashContext("ctx");
  AuditRecord alert;
  alert.kind = AuditRecordKind::kAlert;
  alert.principal = "bob";
  alert.message = "500 Decrypt failures in 60 s";
  EXPECT_EQ(*(*log)->Append(call), 1u);
  EXPECT_EQ(*(*log)->Append(alert), 2u);
  ASSERT_TRUE((*log)->Close().ok());
  EXPECT_EQ((*log)->last_sequence(), 3u);

  std::vector<AuditRecord> records = AllRecords(dir_);
  ASSERT_EQ(records.size(), 3u);
  const AuditRecord& r = records[0];
  EXPECT_EQ(r.kind, AuditRecordKind::kCall);
  EXPECT_EQ(r.sequence, 1u);
  EXPECT_EQ(r.time_us, 1800000000000000 + 1);  // Open read the clock once
  EXPECT_EQ(r.request_id, call.request_id);
  EXPECT_EQ(r.principal, call.principal);
  EXPECT_EQ(r.peer, call.peer);
  EXPECT_EQ(r.action, call.action);
  EXPECT_EQ(r.resource, call.resource);
  EXPECT_EQ(r.segment, call.segment);
  EXPECT_EQ(r.result_code, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.message, "denied by policy");
  EXPECT_EQ(r.context_hash, call.context_hash);
  EXPECT_EQ(records[1].kind, AuditRecordKind::kAlert);
  EXPECT_EQ(records[1].message, alert.message);
  EXPECT_EQ(records[2].kind, AuditRecordKind::kCheckpoint);
  EXPECT_TRUE(records[2].closing);
  EXPECT_EQ(records[2].public_key, pair_.public_key);
  EXPECT_TRUE(Verify(dir_, pair_).ok());
}

TEST_F(AuditLogTest, ContextIsNeverStoredInClear) {
  AuditLogOptions options = TestOptions(dir_, pair_);
  crypto::SecretBytes context_key = options.context_key.Clone();
  auto log = AuditLog::Open(std::move(options));
  ASSERT_TRUE(log.ok());
  const std::string context = "patient=Zaphod-Beeblebrox-4242";
  auto hash = (*log)->HashContext(context);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(*hash, *crypto::HmacSha256(context_key, context));
  AuditRecord r = Call(1);
  r.context_hash = *hash;
  ASSERT_TRUE((*log)->Append(r).ok());
  ASSERT_TRUE((*log)->Close().ok());
  const std::string file = ReadFile(FirstFile(dir_));
  EXPECT_FALSE(absl::StrContains(file, "Zaphod"));
  EXPECT_TRUE(absl::StrContains(file, *hash));
}

TEST_F(AuditLogTest, RejectsBadRecordsAndAppendsAfterClose) {
  auto log = AuditLog::Open(TestOptions(dir_, pair_));
  ASSERT_TRUE(log.ok());
  AuditRecord cp;
  cp.kind = AuditRecordKind::kCheckpoint;
  EXPECT_EQ((*log)->Append(cp).status().code(), absl::StatusCode::kInvalidArgument);
  AuditRecord long_field = Call(1);
  long_field.message = std::string(kMaxAuditFieldBytes + 1, 'x');
  EXPECT_EQ((*log)->Append(long_field).status().code(), absl::StatusCode::kInvalidArgument);
  AuditRecord clear_context = Call(1);
  clear_context.context_hash = "customer=42";
  EXPECT_EQ((*log)->Append(clear_context).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*log)->Close().ok());
  EXPECT_EQ((*log)->Append(Call(1)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*log)->Close().ok());  // idempotent
  // Nothing but the closing checkpoint was written.
  EXPECT_EQ(Verify(dir_, pair_).records, 1u);
}

TEST_F(AuditLogTest, RejectsBadOptionsAndASecondWriter) {
  AuditLogOptions bad_seed = TestOptions(dir_, pair_);
  bad_seed.signing_seed = crypto::RandomSecret(16);
  EXPECT_EQ(AuditLog::Open(std::move(bad_seed)).status().code(),
            absl::StatusCode::kInvalidArgument);
  AuditLogOptions bad_key = TestOptions(dir_, pair_);
  bad_key.context_key = crypto::RandomSecret(8);
  EXPECT_EQ(AuditLog::Open(std::move(bad_key)).status().code(), absl::StatusCode::kInvalidArgument);

  auto first = AuditLog::Open(TestOptions(dir_, pair_));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(AuditLog::Open(TestOptions(dir_, pair_)).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE((*first)->Close().ok());
  auto again = AuditLog::Open(TestOptions(dir_, pair_));
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(AuditLogTest, ConcurrentAppendsFormOneChainWithoutGaps) {
  AuditLogOptions options = TestOptions(dir_, pair_);
  options.checkpoint_every_records = 64;
  options.max_file_bytes = 64 * 1024;
  auto log = AuditLog::Open(std::move(options));
  ASSERT_TRUE(log.ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  std::vector<std::vector<uint64_t>> sequences(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto seq = (*log)->Append(Call(t * 1000 + i));
        ASSERT_TRUE(seq.ok()) << seq.status();
        sequences[t].push_back(*seq);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE((*log)->Close().ok());

  std::set<uint64_t> seen;
  for (const auto& s : sequences) seen.insert(s.begin(), s.end());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));
  AuditVerifyReport r = Verify(dir_, pair_);
  EXPECT_TRUE(r.ok()) << r.ToString();
  const uint64_t calls = kThreads * kPerThread;
  EXPECT_EQ(r.records, calls + calls / 64 + 1);
  EXPECT_EQ(r.last_sequence, r.records);
  EXPECT_GT(r.files, 1u);
}

// Appends from several threads while the flusher group-commits every
// millisecond and writes timed checkpoints, another thread asks for
// checkpoints and syncs, and the files rotate: one gapless chain, every
// call record once, and Close() still ends it cleanly.
TEST_F(AuditLogTest, ConcurrentAppendsWithFlusherCheckpointsAndSyncs) {
  AuditLogOptions options = TestOptions(dir_, pair_);
  options.checkpoint_every_records = 50;
  options.checkpoint_interval = absl::Milliseconds(2);
  options.flush_interval = absl::Milliseconds(1);
  options.max_file_bytes = 32 * 1024;
  auto log = AuditLog::Open(std::move(options));
  ASSERT_TRUE(log.ok()) << log.status();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::vector<std::vector<uint64_t>> sequences(kThreads);
  std::atomic<int> appending{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto seq = (*log)->Append(Call(t * 1000 + i));
        ASSERT_TRUE(seq.ok()) << seq.status();
        sequences[t].push_back(*seq);
      }
      --appending;
    });
  }
  threads.emplace_back([&] {
    uint64_t last = 0;
    for (int i = 0; appending > 0; ++i) {
      EXPECT_TRUE(i % 2 == 0 ? (*log)->Checkpoint().ok() : (*log)->Sync().ok());
      const uint64_t now = (*log)->last_sequence();
      EXPECT_GE(now, last);
      last = now;
      absl::SleepFor(absl::Microseconds(300));
    }
  });
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE((*log)->Close().ok());

  std::set<uint64_t> seen;
  for (const auto& s : sequences) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    seen.insert(s.begin(), s.end());
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));
  AuditVerifyReport r = Verify(dir_, pair_);
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_EQ(r.records - r.checkpoints, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(r.last_sequence, r.records);
  EXPECT_GT(r.files, 1u);
}

TEST_F(AuditLogTest, CrashedLogIsRecoveredAndContinued) {
  AuditLogOptions options = TestOptions(dir_, pair_);
  options.checkpoint_every_records = 100;
  auto log = AuditLog::Open(std::move(options));
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*log)->Append(Call(i)).ok());
  (*log)->AbandonForTesting();  // as if killed: no closing checkpoint

  AuditVerifyReport crashed = Verify(dir_, pair_);
  EXPECT_EQ(crashed.problem, AuditProblem::kUnverifiedTail) << crashed.ToString();
  EXPECT_EQ(crashed.unverified_tail_records, 5u);

  auto reopened = AuditLog::Open(TestOptions(dir_, pair_));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  // Recovery appended an alert (6) and a checkpoint (7).
  EXPECT_EQ(*(*reopened)->Append(Call(5)), 8u);
  ASSERT_TRUE((*reopened)->Close().ok());
  AuditVerifyReport r = Verify(dir_, pair_);
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_EQ(r.last_sequence, 9u);
  std::vector<AuditRecord> records = AllRecords(dir_);
  ASSERT_EQ(records.size(), 9u);
  EXPECT_EQ(records[5].kind, AuditRecordKind::kAlert);
  EXPECT_EQ(records[5].action, "AuditLogRecovered");
  EXPECT_THAT(records[5].message, HasSubstr("5 records after the last checkpoint"));
  EXPECT_EQ(records[6].kind, AuditRecordKind::kCheckpoint);
}

TEST_F(AuditLogTest, TornFinalRecordIsTruncatedOnReopen) {
  auto log = AuditLog::Open(TestOptions(dir_, pair_));
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*log)->Append(Call(i)).ok());
  (*log)->AbandonForTesting();
  std::string file = ReadFile(FirstFile(dir_));
  const size_t intact = file.size();
  const auto frames = Frames(file);
  // A crash in the middle of write(2): the first 40 bytes of a record.
  file += file.substr(frames[1].offset, 40);
  WriteFile(FirstFile(dir_), file);
  AuditVerifyReport torn = Verify(dir_, pair_);
  EXPECT_EQ(torn.problem, AuditProblem::kTornRecord) << torn.ToString();
  EXPECT_EQ(torn.offset, intact);
  EXPECT_EQ(torn.sequence, 4u);

  auto reopened = AuditLog::Open(TestOptions(dir_, pair_));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->last_sequence(), 5u);  // 3 calls, alert, checkpoint
  ASSERT_TRUE((*reopened)->Append(Call(9)).ok());
  ASSERT_TRUE((*reopened)->Close().ok());
  AuditVerifyReport r = Verify(dir_, pair_);
  EXPECT_TRUE(r.ok()) << r.ToString();
  std::vector<AuditRecord> records = AllRecords(dir_);
  EXPECT_THAT(records[3].message, HasSubstr("40 torn bytes truncated"));
}

TEST_F(AuditLogTest, ZeroFilledTailIsTornAndCorruptMiddleRefusesToOpen) {
  {
    auto log = AuditLog::Open(TestOptions(dir_, pair_));
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*log)->Append(Call(i)).ok());
    (*log)->AbandonForTesting();
  }
  std::string file = ReadFile(FirstFile(dir_));
  WriteFile(FirstFile(dir_), file + std::string(300, '\0'));
  {
    auto reopened = AuditLog::Open(TestOptions(dir_, pair_));
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    ASSERT_TRUE((*reopened)->Close().ok());
  }
  EXPECT_TRUE(Verify(dir_, pair_).ok());

  file = ReadFile(FirstFile(dir_));
  const auto frames = Frames(file);
  file[frames[1].offset + 20] ^= 1;
  WriteFile(FirstFile(dir_), file);
  auto refused = AuditLog::Open(TestOptions(dir_, pair_));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(), HasSubstr("run VerifyAuditLog"));
}

TEST_F(AuditLogTest, CleanReopenContinuesTheChain) {
  for (int round = 0; round < 3; ++round) {
    auto log = AuditLog::Open(TestOptions(dir_, pair_));
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 2; ++i) ASSERT_TRUE((*log)->Append(Call(i)).ok());
    ASSERT_TRUE((*log)->Close().ok());
  }
  AuditVerifyReport r = Verify(dir_, pair_);
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_EQ(r.records, 9u);  // 3 x (2 calls + closing checkpoint), no recovery alerts
  EXPECT_EQ(r.checkpoints, 3u);
}

TEST_F(AuditLogTest, TimedCheckpointsAndSyncEveryRecord) {
  AuditLogOptions options = TestOptions(dir_, pair_);
  options.checkpoint_every_records = 0;
  options.checkpoint_interval = absl::Seconds(30);
  options.sync_every_record = true;
  std::atomic<int64_t> now_s{1800000000};
  options.now = [&] { return absl::FromUnixSeconds(now_s.load()); };
  auto log = AuditLog::Open(std::move(options));
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(Call(1)).ok());
  now_s += 31;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while ((*log)->last_sequence() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ((*log)->last_sequence(), 2u);  // the flusher wrote a checkpoint
  ASSERT_TRUE((*log)->Sync().ok());
  ASSERT_TRUE((*log)->Checkpoint().ok());  // nothing new: no checkpoint
  EXPECT_EQ((*log)->last_sequence(), 2u);
  ASSERT_TRUE((*log)->Close().ok());
  AuditVerifyReport r = Verify(dir_, pair_);
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_EQ(r.checkpoints, 2u);
}

}  // namespace
}  // namespace clavis::kms
