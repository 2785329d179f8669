// `clavisctl audit ...` through Run(), on a real audit log written with
// kms::AuditLog in a temp dir: verify (clean, a flipped byte, an unclosed
// log, usage errors), query filters, export and tail.
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_log.h"
#include "kms/audit/audit_testing.h"
#include "tools/clavisctl/cli_testing.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/run.h"

namespace clavis::clavisctl {
namespace {

using kms::audit_testing::FirstFile;
using kms::audit_testing::FrameInfo;
using kms::audit_testing::Frames;
using kms::audit_testing::NewTempDir;
using kms::audit_testing::ReadFile;
using kms::audit_testing::TestOptions;
using kms::audit_testing::WriteFile;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kApp[] = "tenants/acme/principals/app";
constexpr char kOps[] = "tenants/acme/principals/ops";
constexpr int kCalls = 6;

// Call i: by app when i is even, else ops; Decrypt on keys/crm for i < 4,
// then Rotate on keys/hr; request id "req-i".
kms::AuditRecord Record(int i) {
  kms::AuditRecord r;
  r.request_id = absl::StrCat("req-", i);
  r.principal = i % 2 == 0 ? kApp : kOps;
  r.peer = "ipv4:10.0.0.7:51234";
  r.action = i < 4 ? "Decrypt" : "Rotate";
  r.resource = i < 4 ? "tenants/acme/keys/crm" : "tenants/acme/keys/hr";
  if (i < 4) r.segment = "acme/billing";
  if (i == 3) {
    r.result_code = absl::StatusCode::kPermissionDenied;
    r.message = "denied";
  }
  return r;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class AuditCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTempDir("clavisctl");
    auto log = kms::AuditLog::Open(TestOptions(dir_, pair_));
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < kCalls; ++i) ASSERT_TRUE((*log)->Append(Record(i)).ok());
    ASSERT_TRUE((*log)->Close().ok());
    key_file_ = dir_ + "-signing.pub";
    WriteFile(key_file_, crypto::Base64Encode(pair_.public_key) + "\n");
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::remove(key_file_);
  }

  using Result = clavisctl::cli_testing::CliResult;
  Result Cli(std::vector<std::string> args) {
    // No server: the audit commands are local.
    return clavisctl::cli_testing::RunCliInProcess(std::move(args), "127.0.0.1:1");
  }
  Result Verify() {
    return Cli({"audit", "verify", "--dir", dir_, "--public-key-file", key_file_});
  }

  crypto::Ed25519KeyPair pair_ = crypto::Ed25519KeyPair::Generate();
  std::string dir_;
  std::string key_file_;
};

TEST_F(AuditCommandsTest, VerifyACleanLogExitsZero) {
  Result r = Verify();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("OK: "));
  EXPECT_THAT(r.out, HasSubstr("closed cleanly"));
  EXPECT_THAT(r.err, IsEmpty());

  r = Cli({"audit", "verify", "--dir", dir_, "--public-key", crypto::Base64Encode(pair_.public_key),
           "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("{"));
  EXPECT_THAT(r.out, HasSubstr("\"ok\": true"));
  EXPECT_THAT(r.out, HasSubstr("\"problem\": \"ok\""));
}

TEST_F(AuditCommandsTest, VerifyNamesTheFileOffsetAndSequenceOfAFlippedByte) {
  std::string file = ReadFile(FirstFile(dir_));
  const std::vector<FrameInfo> frames = Frames(file);
  ASSERT_GT(frames.size(), 3u);
  const FrameInfo& third = frames[2];
  file[third.offset + third.size / 2] ^= 0x01;
  WriteFile(FirstFile(dir_), file);

  const Result r = Verify();
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.code, kExitGeneric) << "DATA_LOSS";
  for (const std::string& text : {r.out, r.err}) {
    EXPECT_THAT(text, HasSubstr("audit-000001.log"));
    EXPECT_THAT(text, HasSubstr(absl::StrCat("offset ", third.offset)));
    EXPECT_THAT(text, HasSubstr(absl::StrCat("(sequence ", third.sequence, ")")));
  }
  EXPECT_THAT(r.err, HasSubstr("the audit log was changed or damaged"));
}

// One chain per replica: several --dir, each verified on its own, the
// worst result decides the exit code, each log is named.
TEST_F(AuditCommandsTest, VerifySeveralReplicasLogsGivesTheWorstResultAndNamesEach) {
  const std::string unclosed = NewTempDir("clavisctl_replica_b");
  {
    auto log = kms::AuditLog::Open(TestOptions(unclosed, pair_));
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE((*log)->Append(Record(0)).ok());
    (*log)->AbandonForTesting();
  }
  Result r = Cli({"audit", "verify", "--dir", dir_, "--dir", dir_, "--public-key-file", key_file_});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Lines(r.out),
              ::testing::ElementsAre(StartsWith(dir_ + ": OK: "), StartsWith(dir_ + ": OK: ")));
  r = Cli({"audit", "verify", "--dir", dir_, "--dir", unclosed, "--public-key-file", key_file_,
           "--json"});
  EXPECT_EQ(r.code, kExitFailedPrecondition) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"logs\""));
  EXPECT_THAT(r.out, HasSubstr("\"ok\": false"));
  EXPECT_THAT(r.out, HasSubstr(unclosed));
  EXPECT_THAT(r.err, HasSubstr(unclosed + ": the audit log does not end"));

  // Tampering in one log wins over an open tail in another.
  std::string file = ReadFile(FirstFile(dir_));
  const std::vector<FrameInfo> frames = Frames(file);
  ASSERT_GT(frames.size(), 2u);
  file[frames[1].offset + frames[1].size / 2] ^= 0x01;
  WriteFile(FirstFile(dir_), file);
  r = Cli({"audit", "verify", "--dir", unclosed, "--dir", dir_, "--public-key-file", key_file_});
  EXPECT_EQ(r.code, kExitGeneric) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr(dir_ + ": the audit log was changed or damaged"));
  std::filesystem::remove_all(unclosed);
}

TEST_F(AuditCommandsTest, VerifyWithAnotherKeyFails) {
  const crypto::Ed25519KeyPair other = crypto::Ed25519KeyPair::Generate();
  const Result r = Cli(
      {"audit", "verify", "--dir", dir_, "--public-key", crypto::Base64Encode(other.public_key)});
  EXPECT_EQ(r.code, kExitGeneric);
  EXPECT_THAT(r.err, HasSubstr("changed or damaged"));
}

TEST_F(AuditCommandsTest, VerifyAnUnclosedLogExitsFour) {
  const std::string dir = NewTempDir("clavisctl_unclosed");
  auto log = kms::AuditLog::Open(TestOptions(dir, pair_));
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Append(Record(0)).ok());
  (*log)->AbandonForTesting();
  const Result r = Cli({"audit", "verify", "--dir", dir, "--public-key-file", key_file_});
  EXPECT_EQ(r.code, kExitFailedPrecondition) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("does not end with a closing checkpoint"));
  log->reset();
  std::filesystem::remove_all(dir);
}

TEST_F(AuditCommandsTest, VerifyUsageErrors) {
  const std::string key = crypto::Base64Encode(pair_.public_key);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"audit", "verify", "--dir", dir_},  // no key
           {"audit", "verify", "--dir", dir_, "--public-key", key, "--public-key-file", key_file_},
           {"audit", "verify", "--dir", dir_, "--public-key", "bm90IDMyIGJ5dGVz"},
           {"audit", "verify", "--dir", dir_, "--public-key-file", "/nonexistent/key.pub"},
           {"audit", "verify", "--dir", "/nonexistent/audit", "--public-key", key},
           {"audit", "verify", "--public-key", key},  // no --dir
       }) {
    const Result r = Cli(args);
    EXPECT_EQ(r.code, kExitUsage) << args.back() << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("clavisctl: "));
  }
}

TEST_F(AuditCommandsTest, QueryFiltersByPrincipal) {
  const Result r = Cli({"audit", "query", "--dir", dir_, "--principal", kOps});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_THAT(lines, SizeIs(kCalls / 2));
  EXPECT_THAT(lines, Each(HasSubstr(absl::StrCat(" ", kOps, " "))));
  EXPECT_THAT(r.out, Not(HasSubstr(kApp)));
  EXPECT_THAT(lines[0], HasSubstr("#"));
  EXPECT_THAT(lines[0], HasSubstr("call tenants/acme/principals/ops Decrypt tenants/acme/keys/crm "
                                  "segment=acme/billing OK"));
  EXPECT_THAT(lines[1], HasSubstr("PERMISSION_DENIED: denied"));
}

TEST_F(AuditCommandsTest, QueryCombinesFilters) {
  Result r = Cli({"audit", "query", "--dir", dir_, "--key", "tenants/acme/keys/hr"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), SizeIs(2));
  EXPECT_THAT(r.out, Not(HasSubstr("keys/crm")));

  r = Cli({"audit", "query", "--dir", dir_, "--principal", kApp, "--action", "Decrypt", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_THAT(lines, SizeIs(2));  // calls 0 and 2
  EXPECT_THAT(lines, Each(AllOf(StartsWith("{"), EndsWith("}"))));
  EXPECT_THAT(lines[0], HasSubstr("\"request_id\":\"req-0\""));
  EXPECT_THAT(lines[1], HasSubstr("\"request_id\":\"req-2\""));

  r = Cli({"audit", "query", "--dir", dir_, "--principal", "tenants/acme/principals/nobody"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("no matching records"));

  r = Cli({"audit", "query", "--dir", dir_, "--since", "last week"});
  EXPECT_EQ(r.code, kExitUsage);
}

TEST_F(AuditCommandsTest, ExportPrintsJsonLines) {
  const Result r = Cli({"audit", "export", "--dir", dir_});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_THAT(lines, SizeIs(kCalls)) << "calls only; checkpoints are the log's own";
  EXPECT_THAT(lines, Each(AllOf(StartsWith("{"), EndsWith("}"))));
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_THAT(lines[i], HasSubstr(absl::StrCat("\"request_id\":\"req-", i, "\"")));
  }
  EXPECT_THAT(lines[0], HasSubstr(absl::StrCat("\"principal\":\"", kApp, "\"")));
}

TEST_F(AuditCommandsTest, TailPrintsTheLastRecords) {
  const Result r = Cli({"audit", "tail", "--dir", dir_, "-n", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_THAT(lines[0], HasSubstr("request=req-4"));
  EXPECT_THAT(lines[1], HasSubstr("request=req-5"));

  const Result missing = Cli({"audit", "tail", "--dir", "/nonexistent/audit"});
  EXPECT_EQ(missing.code, kExitUsage);
}

}  // namespace
}  // namespace clavis::clavisctl
