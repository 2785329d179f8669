#include "kms/keys/names.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;

TEST(NamesTest, ParsesEveryResourceKind) {
  auto key = ParseKeyName("tenants/acme/keys/crm");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->tenant, "acme");
  EXPECT_EQ(key->key_id, "crm");
  auto version = ParseKeyVersionName("tenants/acme/keys/crm/versions/12");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->version, 12u);
  auto segment = ParseSegmentName("tenants/acme/keys/crm/segments/acme/orders/2026-11");
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(segment->segment, "acme/orders/2026-11");
  EXPECT_EQ(segment->ToString(), "tenants/acme/keys/crm/segments/acme/orders/2026-11");
  auto tenant = ParseTenantName("tenants/acme");
  ASSERT_TRUE(tenant.ok());
  EXPECT_EQ(*tenant, "acme");
}

TEST(NamesTest, RejectsMalformedNamesWithAMessageThatSaysWhy) {
  for (const char* bad :
       {"", "tenants", "tenants/acme", "tenants/acme/keys", "tenants/acme/keys/", "tenants//keys/k",
        "tenant/acme/keys/crm", "tenants/acme/key/crm", "tenants/ACME/keys/crm",
        "tenants/acme/keys/crm/", "tenants/acme/keys/crm/extra", "tenants/-a/keys/crm"}) {
    auto parsed = ParseKeyName(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(ParseKeyName("tenants/acme/keys/c r m").status().message(),
              HasSubstr("may contain only a-z, 0-9"));
}

TEST(NamesTest, RejectsBadVersions) {
  for (const char* bad : {"tenants/a/keys/k/versions/0", "tenants/a/keys/k/versions/-1",
                          "tenants/a/keys/k/versions/", "tenants/a/keys/k/versions/01",
                          "tenants/a/keys/k/versions/+1", "tenants/a/keys/k/versions/4294967296",
                          "tenants/a/keys/k/versions/2147483648", "tenants/a/keys/k/versions/1x",
                          "tenants/a/keys/k/segments/1", "tenants/a/keys/k/versions/ 1",
                          "tenants/a/keys/k/versions/1\n", "tenants/a/keys/k/versions/\t1"}) {
    EXPECT_EQ(ParseKeyVersionName(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NamesTest, SegmentRules) {
  EXPECT_TRUE(ValidateSegment("acme/orders/2026-11").ok());
  EXPECT_TRUE(ValidateSegment("customer=42").ok());
  EXPECT_TRUE(ValidateSegment(std::string(256, 'a')).ok());
  for (const std::string& bad :
       {std::string(), std::string(257, 'a'), std::string("/a"), std::string("a/"),
        std::string("a//b"), std::string("a/../b"), std::string("a/./b"), std::string("a b"),
        std::string("a\0b", 3), std::string("caf\xc3\xa9")}) {
    EXPECT_EQ(ValidateSegment(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NamesTest, ErrorQuotesAreBoundedAndEscaped) {
  const std::string quoted = QuoteForError(std::string(1000, '\x01'));
  EXPECT_LT(quoted.size(), 300u);
  EXPECT_THAT(quoted, HasSubstr("\\x01"));
  EXPECT_THAT(quoted, HasSubstr("..."));
}

}  // namespace
}  // namespace clavis::kms
