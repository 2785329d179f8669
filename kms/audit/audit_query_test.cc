#include "kms/audit/audit_query.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "crypto/ed25519.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_log.h"
#include "kms/audit/audit_testing.h"

namespace clavis::kms {
namespace {

using audit_testing::Call;
using audit_testing::NewTempDir;
using audit_testing::TestOptions;
using ::testing::HasSubstr;

class QueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditLogOptions options = TestOptions(dir_, pair_);
    options.now = [this] { return absl::FromUnixMicros(now_us_++); };
    auto log = AuditLog::Open(std::move(options));
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 12; ++i) ASSERT_TRUE((*log)->Append(Call(i)).ok());
    ASSERT_TRUE((*log)->Close().ok());
  }
  std::vector<AuditRecord> Query(const AuditFilter& filter) {
    std::vector<AuditRecord> out;
    EXPECT_TRUE(ForEachAuditRecord(dir_, filter, [&](const AuditRecord& r) {
                  out.push_back(r);
                  return true;
                }).ok());
    return out;
  }

  crypto::Ed25519KeyPair pair_ = crypto::Ed25519KeyPair::Generate();
  std::string dir_ = NewTempDir("query");
  int64_t now_us_ = 1000;
};

TEST_F(QueryTest, Filters) {
  EXPECT_EQ(Query({}).size(), 12u);  // checkpoints left out by default
  AuditFilter with_checkpoints;
  with_checkpoints.include_checkpoints = true;
  EXPECT_EQ(Query(with_checkpoints).size(), 12u + 3u + 1u);

  AuditFilter alice;
  alice.principal = "alice";
  for (const AuditRecord& r : Query(alice)) EXPECT_EQ(r.principal, "alice");
  EXPECT_EQ(Query(alice).size(), 6u);

  AuditFilter key;
  key.resource = "tenants/t/keys/k1";
  key.action = "GenerateDataKey";
  EXPECT_EQ(Query(key).size(), 2u);  // i = 1, 5 (9 is a Decrypt)
  key.segment = "us";
  EXPECT_TRUE(Query(key).empty());

  std::vector<AuditRecord> all = Query({});
  AuditFilter window;
  window.from_time_us = all[2].time_us;
  window.to_time_us = all[5].time_us;
  std::vector<AuditRecord> in_window = Query(window);
  ASSERT_EQ(in_window.size(), 3u);
  EXPECT_EQ(in_window[0].request_id, "req-2");

  int visited = 0;
  EXPECT_TRUE(ForEachAuditRecord(dir_, {}, [&](const AuditRecord&) { return ++visited < 2; }).ok());
  EXPECT_EQ(visited, 2);
}

TEST_F(QueryTest, ExportsJsonLines) {
  std::ostringstream out;
  AuditFilter bob;
  bob.principal = "bob";
  ASSERT_TRUE(ExportAuditJsonLines(dir_, bob, &out).ok());
  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_THAT(lines[0], HasSubstr("\"principal\":\"bob\""));
  EXPECT_THAT(lines[0], HasSubstr("\"kind\":\"call\""));
  EXPECT_THAT(lines[0], HasSubstr("\"result\":{\"code\":\"OK\""));
  EXPECT_THAT(lines[0], HasSubstr("\"time\":\"1970-01-01T00:00:00.00"));
}

TEST(JsonTest, EscapesEverythingThatNeedsIt) {
  AuditRecord r;
  r.sequence = 3;
  r.principal = "a\"b\\c\nd\x01";
  r.resource = "caf\xc3\xa9";
  r.segment = "bad\xff\xc3";
  r.message = "tab\there";
  r.context_hash = std::string(32, '\xab');
  r.result_code = absl::StatusCode::kNotFound;
  const std::string json = AuditRecordToJson(r);
  EXPECT_THAT(json, HasSubstr(R"("principal":"a\"b\\c\nd\u0001")"));
  EXPECT_THAT(json, HasSubstr("\"resource\":\"caf\xc3\xa9\""));
  EXPECT_THAT(json, HasSubstr(R"("segment":"bad\ufffd\ufffd")"));
  EXPECT_THAT(json, HasSubstr(R"("message":"tab\there")"));
  EXPECT_THAT(json, HasSubstr("\"code\":\"NOT_FOUND\""));
  EXPECT_THAT(json, HasSubstr("\"context_hash\":\"abababab"));
  EXPECT_EQ(json.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace clavis::kms
