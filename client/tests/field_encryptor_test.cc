// FieldEncryptor over an in-memory DataKeySource: chosen fields encrypted,
// the rest untouched, binding to field and record, hostile documents.
#include "clavis/field_encryptor.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/tests/fake_data_key_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace clavis {
namespace {

using ::clavis::testing::FakeDataKeySource;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

constexpr char kKey[] = "tenants/acme/keys/crm";
constexpr char kSegment[] = "acme/customers";
const EncryptionContext kContext = {{"table", "customers"}};
constexpr char kDoc[] =
    R"({"id":42,"name":"Ada","email":"ada@example.com","phone":"+44 20 7946 0000",)"
    R"("card":{"number":"4111111111111111","expiry":"12/29"},"tags":["vip"],"score":9.5})";

class FieldEncryptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = *DataKeyCache::New(source_);
    records_ = std::shared_ptr<RecordEncryptor>(*RecordEncryptor::New(cache_, kKey));
    fields_ =
        *FieldEncryptor::New(records_, {"/email", "/phone", "/card/number", "/score", "/missing"});
  }
  std::shared_ptr<FakeDataKeySource> source_ = std::make_shared<FakeDataKeySource>();
  std::shared_ptr<DataKeyCache> cache_;
  std::shared_ptr<RecordEncryptor> records_;
  std::unique_ptr<FieldEncryptor> fields_;
};

TEST_F(FieldEncryptorTest, EncryptsChosenFieldsAndLeavesTheRest) {
  absl::StatusOr<std::string> stored = fields_->EncryptFields(kSegment, kDoc, kContext, "42");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_FALSE(absl::StrContains(*stored, "ada@example.com"));
  EXPECT_FALSE(absl::StrContains(*stored, "4111111111111111"));
  EXPECT_FALSE(absl::StrContains(*stored, "7946"));
  const Json doc = Json::parse(*stored);
  EXPECT_EQ(doc["id"], 42);
  EXPECT_EQ(doc["name"], "Ada");
  EXPECT_EQ(doc["card"]["expiry"], "12/29");
  EXPECT_EQ(doc["tags"][0], "vip");
  EXPECT_TRUE(absl::StartsWith(doc["email"].get<std::string>(), "clavis:v1:"));
  EXPECT_TRUE(absl::StartsWith(doc["score"].get<std::string>(), "clavis:v1:"));
  EXPECT_FALSE(doc.contains("missing"));

  absl::StatusOr<std::string> plain = fields_->DecryptFields(*stored, kContext, "42");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(Json::parse(*plain), Json::parse(kDoc));
  EXPECT_EQ(source_->generate_calls(), 1) << "one data key for the document's fields";
}

TEST_F(FieldEncryptorTest, CiphertextMovedToAnotherFieldOrRecordFails) {
  Json doc = Json::parse(*fields_->EncryptFields(kSegment, kDoc, kContext, "42"));
  Json swapped = doc;
  std::swap(swapped["email"], swapped["phone"]);
  EXPECT_THAT(fields_->DecryptFields(swapped.dump(), kContext, "42").status().message(),
              HasSubstr("decryption failed"));
  EXPECT_THAT(fields_->DecryptFields(doc.dump(), kContext, "43").status().message(),
              HasSubstr("field /email: decryption failed"));
  EXPECT_FALSE(fields_->DecryptFields(doc.dump(), {{"table", "orders"}}, "42").ok());
}

TEST_F(FieldEncryptorTest, RefusesPlainValuesWhereCiphertextBelongs) {
  absl::StatusOr<std::string> s = fields_->DecryptFields(kDoc, kContext, "42");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("field /email is not encrypted"));
  const std::string stored = *fields_->EncryptFields(kSegment, kDoc, kContext, "42");
  EXPECT_THAT(fields_->EncryptFields(kSegment, stored, kContext, "42").status().message(),
              HasSubstr("already encrypted"));
}

TEST_F(FieldEncryptorTest, HostileDocumentsGiveClearErrorsWithoutContent) {
  for (const std::string& bad : {std::string(R"({"email": "ada@example.com")"),
                                 std::string("not json at all: ada@example.com"), std::string(""),
                                 std::string("\x80\x81")}) {
    absl::StatusOr<std::string> s = fields_->EncryptFields(kSegment, bad, kContext);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.status().message(), HasSubstr("not valid JSON"));
    EXPECT_FALSE(absl::StrContains(s.status().message(), "ada@"));
  }
  Json doc = Json::parse(*fields_->EncryptFields(kSegment, kDoc, kContext));
  std::string email = doc["email"];
  doc["email"] = email.substr(0, email.size() - 8);  // truncated ciphertext
  EXPECT_EQ(fields_->DecryptFields(doc.dump(), kContext).status().code(),
            absl::StatusCode::kInvalidArgument);
  doc["email"] = "clavis:v1:%%%not base64";
  EXPECT_THAT(fields_->DecryptFields(doc.dump(), kContext).status().message(),
              HasSubstr("not valid base64"));
  // A flipped bit anywhere in the sealed bytes fails.
  Json fresh = Json::parse(*fields_->EncryptFields(kSegment, kDoc, kContext));
  std::string value = fresh["phone"];
  value[value.size() / 2] = value[value.size() / 2] == 'A' ? 'B' : 'A';
  fresh["phone"] = value;
  EXPECT_FALSE(fields_->DecryptFields(fresh.dump(), kContext).ok());
  // A document too large is refused before parsing.
  EXPECT_THAT(fields_
                  ->EncryptFields(kSegment, std::string(FieldEncryptor::kMaxDocumentSize + 1, ' '),
                                  kContext)
                  .status()
                  .message(),
              HasSubstr("larger than"));
}

TEST_F(FieldEncryptorTest, BadPointersAreRefused) {
  EXPECT_THAT(FieldEncryptor::New(records_, {"email"}).status().message(),
              HasSubstr("not a JSON Pointer"));
  EXPECT_THAT(FieldEncryptor::New(records_, {""}).status().message(), HasSubstr("whole document"));
  EXPECT_THAT(FieldEncryptor::New(records_, {"/a", "/a"}).status().message(),
              HasSubstr("listed twice"));
  EXPECT_FALSE(FieldEncryptor::New(records_, {}).ok());
  EXPECT_FALSE(FieldEncryptor::New(nullptr, {"/a"}).ok());
}

TEST_F(FieldEncryptorTest, DocumentsThatAreNotObjectsOnlyLackTheFields) {
  absl::StatusOr<std::string> s = fields_->EncryptFields(kSegment, "[1,2,3]", kContext);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "[1,2,3]");
  EXPECT_EQ(*fields_->EncryptFields(kSegment, R"({"card":"not an object"})", kContext),
            R"({"card":"not an object"})");
}

}  // namespace
}  // namespace clavis
