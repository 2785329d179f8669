// BlindIndex over an in-memory DataKeySource.
#include "clavis/blind_index.h"

#include <memory>
#include <string>

#include "client/tests/fake_data_key_source.h"
#include "crypto/kdf.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis {
namespace {

using ::clavis::testing::FakeDataKeySource;
using ::testing::HasSubstr;

constexpr char kKey[] = "tenants/acme/keys/crm";

class BlindIndexTest : public ::testing::Test {
 protected:
  std::shared_ptr<FakeDataKeySource> source_ = std::make_shared<FakeDataKeySource>();
  std::shared_ptr<DataKeyCache> cache_ = *DataKeyCache::New(source_);
};

TEST_F(BlindIndexTest, TagIsHmacOfTheValueUnderTheIndexKey) {
  auto index = *BlindIndex::New(cache_, kKey, "email");
  absl::StatusOr<std::string> tag = index->Compute("acme/customers", "ada@example.com");
  ASSERT_TRUE(tag.ok()) << tag.status();
  SecretBytes index_key = *source_->DeriveBlindIndexKey(kKey, "acme/customers", "email");
  EXPECT_EQ(*tag, *crypto::HmacSha256(index_key, "ada@example.com"));
  EXPECT_EQ(index->ComputeHex("acme/customers", "ada@example.com")->size(), 64u);
}

TEST_F(BlindIndexTest, EqualValuesMatchOnlyWithinOneSegmentAndIndex) {
  auto email = *BlindIndex::New(cache_, kKey, "email");
  auto other = *BlindIndex::New(cache_, kKey, "backup-email");
  const std::string a = *email->Compute("acme/customers", "ada@example.com");
  EXPECT_EQ(a, *email->Compute("acme/customers", "ada@example.com"));
  EXPECT_NE(a, *email->Compute("acme/customers", "bob@example.com"));
  EXPECT_NE(a, *email->Compute("acme/other", "ada@example.com"));
  EXPECT_NE(a, *other->Compute("acme/customers", "ada@example.com"));
}

TEST_F(BlindIndexTest, IndexKeyIsFetchedOncePerSegment) {
  auto email = *BlindIndex::New(cache_, kKey, "email");
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(email->Compute("acme/customers", "x").ok());
  EXPECT_EQ(source_->index_calls(), 1);
  cache_->EvictSegment(kKey, "acme/customers");
  ASSERT_TRUE(email->Compute("acme/customers", "x").ok());
  EXPECT_EQ(source_->index_calls(), 2);
}

TEST_F(BlindIndexTest, ErrorsAreClear) {
  EXPECT_THAT(BlindIndex::New(cache_, kKey, "Email").status().message(), HasSubstr("a-z"));
  EXPECT_THAT(BlindIndex::New(cache_, kKey, "").status().message(), HasSubstr("1..64"));
  EXPECT_THAT(BlindIndex::New(cache_, kKey, std::string(65, 'a')).status().message(),
              HasSubstr("1..64"));
  EXPECT_FALSE(BlindIndex::New(nullptr, kKey, "email").ok());
  auto email = *BlindIndex::New(cache_, kKey, "email");
  EXPECT_EQ(email->Compute("", "x").status().code(), absl::StatusCode::kInvalidArgument);
  source_->set_disabled(true);
  EXPECT_EQ(email->Compute("acme/customers", "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace clavis
