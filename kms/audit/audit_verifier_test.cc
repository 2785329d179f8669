#include "kms/audit/audit_verifier.h"

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "crypto/ed25519.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_log.h"
#include "kms/audit/audit_testing.h"

namespace clavis::kms {
namespace {

using audit_testing::Call;
using audit_testing::FirstFile;
using audit_testing::FixDigest;
using audit_testing::FrameInfo;
using audit_testing::Frames;
using audit_testing::NewTempDir;
using audit_testing::ReadFile;
using audit_testing::TestOptions;
using audit_testing::WriteFile;
using ::testing::HasSubstr;

// A closed log of 10 calls with a checkpoint every 4 records:
// 1-4 calls, 5 checkpoint, 6-9 calls, 10 checkpoint, 11-12 calls, 13 closing.
class VerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTempDir("verify");
    auto log = AuditLog::Open(TestOptions(dir_, pair_));
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*log)->Append(Call(i)).ok());
    ASSERT_TRUE((*log)->Close().ok());
    file_ = ReadFile(FirstFile(dir_));
    frames_ = Frames(file_);
    ASSERT_EQ(frames_.size(), 13u);
  }

  AuditVerifyReport Verify(absl::string_view file) {
    WriteFile(FirstFile(dir_), file);
    return VerifyWith(pair_.public_key);
  }
  AuditVerifyReport VerifyWith(absl::string_view public_key) {
    auto report = VerifyAuditLog(dir_, public_key);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : AuditVerifyReport{};
  }
  std::string Bytes(const FrameInfo& f) const { return file_.substr(f.offset, f.size); }

  crypto::Ed25519KeyPair pair_ = crypto::Ed25519KeyPair::Generate();
  std::string dir_;
  std::string file_;
  std::vector<FrameInfo> frames_;
};

TEST_F(VerifierTest, CleanLogVerifies) {
  AuditVerifyReport r = VerifyWith(pair_.public_key);
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_TRUE(r.cleanly_closed);
  EXPECT_EQ(r.records, 13u);
  EXPECT_EQ(r.checkpoints, 3u);
  EXPECT_EQ(r.last_sequence, 13u);
  EXPECT_EQ(r.unverified_tail_records, 0u);
  EXPECT_THAT(r.ToString(), HasSubstr("OK: 13 records (3 checkpoints)"));
}

TEST_F(VerifierTest, FlippedByteAnywhereIsLocatedAtItsRecord) {
  // Every byte of a call, a periodic and the closing checkpoint, the last
  // call and the header; every 7th byte elsewhere (keeps the test fast).
  auto interesting = [&](size_t p) {
    for (size_t i : {0, 4, 11, 12}) {
      if (p >= frames_[i].offset && p < frames_[i].offset + frames_[i].size) return true;
    }
    return p < frames_[0].offset || p % 7 == 0;
  };
  for (size_t p = 0; p < file_.size(); ++p) {
    if (!interesting(p)) continue;
    std::string bad = file_;
    bad[p] ^= 0x01;
    AuditVerifyReport r = Verify(bad);
    ASSERT_FALSE(r.ok()) << "flip at " << p << " went unnoticed";
    if (p < audit_internal::kFileHeaderSize) {
      EXPECT_EQ(r.problem, AuditProblem::kBadFileHeader) << r.ToString();
      continue;
    }
    const FrameInfo* hit = nullptr;
    for (const FrameInfo& f : frames_) {
      if (p >= f.offset && p < f.offset + f.size) hit = &f;
    }
    ASSERT_NE(hit, nullptr);
    EXPECT_EQ(r.offset, hit->offset) << "flip at " << p << ": " << r.ToString();
    EXPECT_EQ(r.sequence, hit->sequence) << "flip at " << p << ": " << r.ToString();
    EXPECT_TRUE(r.problem == AuditProblem::kCorruptRecord || r.problem == AuditProblem::kTornRecord)
        << r.ToString();
  }
}

TEST_F(VerifierTest, DeletedRecordIsASequenceGap) {
  std::string bad = file_;
  bad.erase(frames_[2].offset, frames_[2].size);
  AuditVerifyReport r = Verify(bad);
  EXPECT_EQ(r.problem, AuditProblem::kDeletedRecord) << r.ToString();
  EXPECT_TRUE(r.tampered());
  EXPECT_EQ(r.offset, frames_[2].offset);
  EXPECT_EQ(r.sequence, 3u);
  EXPECT_EQ(r.file, "audit-000001.log");
  EXPECT_THAT(r.detail, HasSubstr("records 3..3 are missing"));
}

TEST_F(VerifierTest, InsertedCopyIsDetected) {
  std::string bad = file_;
  bad.insert(frames_[3].offset, Bytes(frames_[2]));
  AuditVerifyReport r = Verify(bad);
  EXPECT_EQ(r.problem, AuditProblem::kInsertedRecord) << r.ToString();
  EXPECT_EQ(r.offset, frames_[3].offset);
  EXPECT_EQ(r.sequence, 4u);
  EXPECT_THAT(r.detail, HasSubstr("copy of record 3"));
}

TEST_F(VerifierTest, OldRecordReplayedLaterIsDetected) {
  std::string bad = file_;
  bad.insert(frames_[7].offset, Bytes(frames_[1]));
  AuditVerifyReport r = Verify(bad);
  EXPECT_EQ(r.problem, AuditProblem::kInsertedRecord) << r.ToString();
  EXPECT_EQ(r.offset, frames_[7].offset);
  EXPECT_EQ(r.sequence, 8u);
}

TEST_F(VerifierTest, SwappedRecordsAreReordered) {
  std::string bad = file_.substr(0, frames_[1].offset) + Bytes(frames_[2]) + Bytes(frames_[1]) +
                    file_.substr(frames_[3].offset);
  AuditVerifyReport r = Verify(bad);
  EXPECT_EQ(r.problem, AuditProblem::kReorderedRecord) << r.ToString();
  EXPECT_EQ(r.offset, frames_[1].offset);
  EXPECT_EQ(r.sequence, 2u);
}

TEST_F(VerifierTest, RewrittenRecordWithRecomputedDigestBreaksTheChain) {
  std::string bad = file_;
  const size_t at = bad.find("bob", frames_[1].offset);
  ASSERT_LT(at, frames_[2].offset);  // record 2's principal
  bad.replace(at, 3, "eve");
  FixDigest(&bad, frames_[1]);
  AuditVerifyReport r = Verify(bad);
  EXPECT_EQ(r.problem, AuditProblem::kChainBreak) << r.ToString();
  EXPECT_EQ(r.offset, frames_[2].offset);
  EXPECT_EQ(r.sequence, 3u);
}

TEST_F(VerifierTest, MissingClosingCheckpointIsAnUnverifiedTail) {
  AuditVerifyReport r = Verify(file_.substr(0, frames_[12].offset));
  EXPECT_EQ(r.problem, AuditProblem::kUnverifiedTail) << r.ToString();
  EXPECT_FALSE(r.tampered());
  EXPECT_FALSE(r.cleanly_closed);
  EXPECT_EQ(r.unverified_tail_records, 2u);
  EXPECT_EQ(r.last_sequence, 12u);
  EXPECT_THAT(r.detail, HasSubstr("unverified tail: 2 records after the last checkpoint"));
  EXPECT_THAT(r.detail, HasSubstr("the log was cut or the process crashed"));
}

TEST_F(VerifierTest, TailCutAtARecordBoundaryBeforeMoreRecordsIsReported) {
  AuditVerifyReport r = Verify(file_.substr(0, frames_[7].offset));
  EXPECT_EQ(r.problem, AuditProblem::kUnverifiedTail) << r.ToString();
  EXPECT_EQ(r.unverified_tail_records, 2u);
}

TEST_F(VerifierTest, LogCutRightAfterAPeriodicCheckpointIsNotClean) {
  AuditVerifyReport r = Verify(file_.substr(0, frames_[10].offset));  // ends at checkpoint 10
  EXPECT_EQ(r.problem, AuditProblem::kUnverifiedTail) << r.ToString();
  EXPECT_EQ(r.unverified_tail_records, 0u);
  EXPECT_EQ(r.last_sequence, 10u);
}

TEST_F(VerifierTest, CutInsideARecordIsATornRecord) {
  AuditVerifyReport r = Verify(file_.substr(0, frames_[11].offset + 10));
  EXPECT_EQ(r.problem, AuditProblem::kTornRecord) << r.ToString();
  EXPECT_FALSE(r.tampered());
  EXPECT_EQ(r.offset, frames_[11].offset);
  EXPECT_EQ(r.sequence, 12u);
  EXPECT_THAT(r.detail, HasSubstr("1 records after the last checkpoint are unverified"));
}

TEST_F(VerifierTest, BadCheckpointSignatureIsDetected) {
  std::string bad = file_;
  const FrameInfo& closing = frames_[12];
  bad[closing.offset + closing.size - 32 - 10] ^= 0x40;  // inside the signature
  FixDigest(&bad, closing);
  AuditVerifyReport r = Verify(bad);
  EXPECT_EQ(r.problem, AuditProblem::kBadSignature) << r.ToString();
  EXPECT_EQ(r.offset, closing.offset);
  EXPECT_EQ(r.sequence, 13u);
}

TEST_F(VerifierTest, WrongPublicKeyIsReportedAtTheFirstCheckpoint) {
  AuditVerifyReport r = VerifyWith(crypto::Ed25519KeyPair::Generate().public_key);
  EXPECT_EQ(r.problem, AuditProblem::kWrongSigningKey) << r.ToString();
  EXPECT_EQ(r.offset, frames_[4].offset);
  EXPECT_EQ(r.sequence, 5u);
}

TEST_F(VerifierTest, CheckpointClaimingTheExpectedKeyButSignedByAnotherFails) {
  std::string bad = file_;
  const FrameInfo& cp = frames_[4];
  // Overwrite the signature with another key's signature of the same bytes.
  crypto::Ed25519KeyPair other = crypto::Ed25519KeyPair::Generate();
  const size_t sig_at = cp.offset + cp.size - 32 - 64;
  std::string message = std::string(audit_internal::kCheckpointSignatureContext) + '\0' +
                        bad.substr(cp.offset, sig_at - cp.offset);
  auto sig = crypto::Ed25519Sign(other.seed, message);
  ASSERT_TRUE(sig.ok());
  bad.replace(sig_at, 64, *sig);
  FixDigest(&bad, cp);
  AuditVerifyReport r = Verify(bad);
  EXPECT_EQ(r.problem, AuditProblem::kBadSignature) << r.ToString();
  EXPECT_EQ(r.sequence, 5u);
}

TEST(VerifierFilesTest, RotatedLogVerifiesAndAMissingFileIsNamed) {
  const std::string dir = NewTempDir("rotate");
  auto pair = crypto::Ed25519KeyPair::Generate();
  AuditLogOptions options = TestOptions(dir, pair);
  options.max_file_bytes = 4096;
  auto log = AuditLog::Open(std::move(options));
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 200; ++i) ASSERT_TRUE((*log)->Append(Call(i)).ok());
  ASSERT_TRUE((*log)->Close().ok());
  auto report = VerifyAuditLog(dir, pair.public_key);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->ToString();
  EXPECT_GT(report->files, 3u);
  EXPECT_EQ(report->records, 200u + 50u + 1u);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename() != "LOCK") {
      EXPECT_LE(std::filesystem::file_size(entry.path()), 4096u);
    }
  }

  std::filesystem::remove(dir + "/audit-000002.log");
  report = VerifyAuditLog(dir, pair.public_key);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problem, AuditProblem::kMissingFile) << report->ToString();
  EXPECT_EQ(report->file, "audit-000002.log");
}

TEST(VerifierFilesTest, ArgumentsAndEmptyDirectories) {
  const std::string pk = crypto::Ed25519KeyPair::Generate().public_key;
  EXPECT_EQ(VerifyAuditLog("/nonexistent/audit", pk).status().code(), absl::StatusCode::kNotFound);
  const std::string dir = NewTempDir("empty");
  std::filesystem::create_directories(dir);
  EXPECT_EQ(VerifyAuditLog(dir, "short").status().code(), absl::StatusCode::kInvalidArgument);
  auto report = VerifyAuditLog(dir, pk);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problem, AuditProblem::kNoLogFiles);
}

TEST(VerifierHostileTest, RandomBytesAndHugeLengthsGiveClearErrors) {
  const std::string dir = NewTempDir("hostile");
  std::filesystem::create_directories(dir);
  const std::string pk = crypto::Ed25519KeyPair::Generate().public_key;

  WriteFile(FirstFile(dir), crypto::RandomBytes(5000));
  auto report = VerifyAuditLog(dir, pk);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problem, AuditProblem::kBadFileHeader) << report->ToString();
  EXPECT_THAT(report->detail, HasSubstr("not a Clavis audit log file"));

  std::string huge = audit_internal::EncodeFileHeader(1) + std::string("\xff\xff\xff\xff", 4) +
                     crypto::RandomBytes(300);
  WriteFile(FirstFile(dir), huge);
  report = VerifyAuditLog(dir, pk);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problem, AuditProblem::kCorruptRecord) << report->ToString();
  EXPECT_EQ(report->offset, audit_internal::kFileHeaderSize);
  EXPECT_THAT(report->detail, HasSubstr("record length 4294967295 is outside"));

  // A claimed length within bounds that runs far past the end of a file
  // that is not the newest: corruption, not a torn record.
  std::string runs_past = audit_internal::EncodeFileHeader(1) + std::string("\x00\x00\x80\x00", 4) +
                          crypto::RandomBytes(100);
  WriteFile(FirstFile(dir), runs_past);
  WriteFile(dir + "/audit-000002.log", audit_internal::EncodeFileHeader(2));
  report = VerifyAuditLog(dir, pk);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problem, AuditProblem::kCorruptRecord) << report->ToString();
  EXPECT_THAT(report->detail, HasSubstr("runs past the end"));
}

TEST(VerifierHostileTest, RandomMutationsNeverCrashOrPass) {
  const std::string dir = NewTempDir("fuzz");
  auto pair = crypto::Ed25519KeyPair::Generate();
  {
    auto log = AuditLog::Open(TestOptions(dir, pair));
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 12; ++i) ASSERT_TRUE((*log)->Append(Call(i)).ok());
    ASSERT_TRUE((*log)->Close().ok());
  }
  const std::string original = ReadFile(FirstFile(dir));
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::string bad = original;
    const size_t p = rng() % bad.size();
    switch (rng() % 4) {
      case 0:
        bad[p] = static_cast<char>(rng());
        break;
      case 1:
        bad.resize(p);
        break;
      case 2:
        bad.insert(p, crypto::RandomBytes(1 + rng() % 64));
        break;
      case 3:
        bad.replace(p, std::min<size_t>(4, bad.size() - p), "\x7f\xff\xff\xff");
        break;
    }
    if (bad == original) continue;
    WriteFile(FirstFile(dir), bad);
    auto report = VerifyAuditLog(dir, pair.public_key);
    ASSERT_TRUE(report.ok());
    EXPECT_FALSE(report->ok()) << "round " << round;
    EXPECT_FALSE(report->ToString().empty());
  }
}

}  // namespace
}  // namespace clavis::kms
