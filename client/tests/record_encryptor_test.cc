// RecordEncryptor over an in-memory DataKeySource: round trips, binding to
// context, key and segment, and hostile records.
#include "clavis/record_encryptor.h"

#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/tests/fake_data_key_source.h"
#include "client/tests/sealed_record_spec.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis {
namespace {

using ::clavis::testing::FakeDataKeySource;
using ::clavis::testing::SpecRecord;
using ::clavis::testing::SpecSeal;
using ::testing::HasSubstr;

constexpr char kKey[] = "tenants/acme/keys/crm";
constexpr char kSegment[] = "acme/orders/2026-11";
const EncryptionContext kContext = {{"customer", "42"}, {"table", "orders"}};

class RecordEncryptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto encryptor = RecordEncryptor::New(source_, kKey);
    ASSERT_TRUE(encryptor.ok()) << encryptor.status();
    encryptor_ = std::move(*encryptor);
  }

  std::string Seal(absl::string_view plaintext, absl::string_view segment = kSegment,
                   const EncryptionContext& context = kContext) {
    absl::StatusOr<std::string> sealed = encryptor_->Encrypt(segment, plaintext, context);
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    return sealed.value_or("");
  }

  // True if `message` shows any issued data key, raw, hex or base64.
  bool LeaksAKey(absl::string_view message) {
    for (const SecretBytes& key : source_->IssuedKeys()) {
      for (const std::string& form : {std::string(key.view()), absl::BytesToHexString(key.view()),
                                      absl::Base64Escape(key.view())}) {
        if (absl::StrContains(message, form.substr(0, 8))) return true;
      }
    }
    return false;
  }

  std::shared_ptr<FakeDataKeySource> source_ = std::make_shared<FakeDataKeySource>();
  std::unique_ptr<RecordEncryptor> encryptor_;
};

TEST_F(RecordEncryptorTest, RoundTripsAtEverySize) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{1024}, size_t{64 * 1024}, size_t{1024 * 1024}}) {
    const std::string plaintext = crypto::RandomBytes(size);
    const std::string sealed = Seal(plaintext);
    absl::StatusOr<std::string> opened = encryptor_->Decrypt(sealed, kContext);
    ASSERT_TRUE(opened.ok()) << size << ": " << opened.status();
    EXPECT_EQ(*opened, plaintext) << size;
  }
}

TEST_F(RecordEncryptorTest, EmptyContextRoundTrips) {
  const std::string sealed = Seal("row", kSegment, {});
  EXPECT_EQ(encryptor_->Decrypt(sealed, {}).value_or("?"), "row");
}

TEST_F(RecordEncryptorTest, EachRecordHasItsOwnDataKeyAndNonce) {
  EXPECT_NE(Seal("same"), Seal("same"));
  EXPECT_EQ(source_->IssuedKeys().size(), 2u);
}

TEST_F(RecordEncryptorTest, WrongContextFails) {
  const std::string sealed = Seal("row");
  for (const EncryptionContext& other :
       {EncryptionContext{}, EncryptionContext{{"customer", "43"}, {"table", "orders"}},
        EncryptionContext{{"customer", "42"}}}) {
    absl::StatusOr<std::string> opened = encryptor_->Decrypt(sealed, other);
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(opened.status().message(), HasSubstr("decryption failed"));
  }
}

TEST_F(RecordEncryptorTest, RecordRelabelledToAnotherSegmentFails) {
  const std::string sealed = Seal("row", "acme/orders/2026-11");
  std::string moved = sealed;
  const size_t at = moved.find("2026-11");
  ASSERT_NE(at, std::string::npos);
  moved.replace(at, 7, "2026-12");  // same length: framing stays valid
  absl::StatusOr<std::string> opened = encryptor_->Decrypt(moved, kContext);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RecordEncryptorTest, DataKeyOfAnotherSegmentIsRefused) {
  // The data key blob of segment B pasted into a record of segment A.
  const std::string a = Seal("row", "seg/a");
  const std::string b = Seal("row", "seg/b");
  const size_t blob_at = 4 + 1 + 1 + 2 + strlen(kKey) + 2 + 5;
  const size_t blob_size = static_cast<uint8_t>(a[blob_at + 3]);  // fake blobs are short
  ASSERT_EQ(b.substr(blob_at, 4), a.substr(blob_at, 4));
  std::string swapped = a;
  swapped.replace(blob_at + 4, blob_size, b.substr(blob_at + 4, blob_size));
  EXPECT_FALSE(encryptor_->Decrypt(swapped, kContext).ok());
}

TEST_F(RecordEncryptorTest, RecordOfAnotherKeyIsNamed) {
  auto other = *RecordEncryptor::New(source_, "tenants/acme/keys/billing");
  const std::string sealed = *other->Encrypt(kSegment, "row", kContext);
  absl::StatusOr<std::string> opened = encryptor_->Decrypt(sealed, kContext);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      opened.status().message(),
      HasSubstr("belongs to key \"tenants/acme/keys/billing\", not \"tenants/acme/keys/crm\""));
}

TEST_F(RecordEncryptorTest, EveryTruncationFailsClearly) {
  const std::string sealed = Seal("a small row of customer data");
  for (size_t n = 0; n < sealed.size(); ++n) {
    absl::StatusOr<std::string> opened = encryptor_->Decrypt(sealed.substr(0, n), kContext);
    ASSERT_FALSE(opened.ok()) << n;
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_FALSE(LeaksAKey(opened.status().message())) << n;
  }
}

TEST_F(RecordEncryptorTest, FlippedBitsFailClearlyAndLeakNothing) {
  const std::string sealed = Seal(crypto::RandomBytes(300));
  std::set<std::string> messages;
  for (size_t byte = 0; byte < sealed.size(); ++byte) {
    for (int bit = 0; bit < 8; bit += (byte < 160 ? 1 : 3)) {
      std::string damaged = sealed;
      damaged[byte] = static_cast<char>(damaged[byte] ^ (1 << bit));
      absl::StatusOr<std::string> opened = encryptor_->Decrypt(damaged, kContext);
      ASSERT_FALSE(opened.ok()) << byte << "." << bit;
      EXPECT_FALSE(LeaksAKey(opened.status().message())) << opened.status();
      messages.insert(std::string(opened.status().message()));
    }
  }
  // The distinct failures, for the reader of a failing run.
  EXPECT_TRUE(messages.count("decryption failed")) << ::testing::PrintToString(messages);
  EXPECT_TRUE(messages.count("not a Clavis sealed record (wrong magic)"));
}

TEST_F(RecordEncryptorTest, UnknownFormatVersionIsNamed) {
  std::string sealed = Seal("row");
  sealed[4] = 9;
  EXPECT_THAT(encryptor_->Decrypt(sealed, kContext).status().message(),
              HasSubstr("unsupported sealed record format version 9"));
}

TEST_F(RecordEncryptorTest, CraftedRecordWithWrongCommitmentIsRefused) {
  // Obtain a genuine data key and blob from the source, then build a record
  // by hand whose GCM tag is valid but whose commitment is not its key's.
  absl::StatusOr<DataKey> dk = source_->GenerateDataKey(kKey, kSegment, kContext);
  ASSERT_TRUE(dk.ok());
  SpecRecord spec;
  spec.key = kKey;
  spec.segment = kSegment;
  spec.data_key_blob = dk->ciphertext_blob;
  const std::string honest = SpecSeal(dk->plaintext, spec, "row", kContext);
  ASSERT_EQ(encryptor_->Decrypt(honest, kContext).value_or("?"), "row");

  spec.commitment_override = crypto::RandomBytes(32);
  const std::string crafted = SpecSeal(dk->plaintext, spec, "row", kContext);
  absl::StatusOr<std::string> opened = encryptor_->Decrypt(crafted, kContext);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(opened.status().message(), "sealed record does not match its data key");
}

TEST_F(RecordEncryptorTest, SourceFailuresPassThrough) {
  const std::string sealed = Seal("row");
  source_->set_disabled(true);
  EXPECT_EQ(encryptor_->Decrypt(sealed, kContext).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(encryptor_->Encrypt(kSegment, "row", kContext).status().code(),
            absl::StatusCode::kFailedPrecondition);
  source_->set_disabled(false);
  EXPECT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
}

TEST_F(RecordEncryptorTest, BadArgumentsAreRefusedBeforeAnyDataKey) {
  EXPECT_THAT(encryptor_->Encrypt("", "row", kContext).status().message(),
              HasSubstr("segment must be 1..256 bytes"));
  EXPECT_THAT(encryptor_->Encrypt(std::string(257, 's'), "row", kContext).status().message(),
              HasSubstr("segment must be 1..256 bytes"));
  EXPECT_THAT(encryptor_->Encrypt(kSegment, "row", {{"", "v"}}).status().message(),
              HasSubstr("empty key"));
  EXPECT_THAT(
      encryptor_->Encrypt(kSegment, "row", {{"k", std::string(1025, 'v')}}).status().message(),
      HasSubstr("value is longer than 1024 bytes"));
  EXPECT_TRUE(source_->IssuedKeys().empty());
  EXPECT_EQ(RecordEncryptor::New(std::shared_ptr<DataKeySource>(), kKey).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RecordEncryptor::New(source_, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RecordEncryptorTest, SafeToShareAcrossThreads) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string row = absl::StrCat("thread ", t, " row ", i);
        const std::string segment = absl::StrCat("seg/", t);
        absl::StatusOr<std::string> sealed = encryptor_->Encrypt(segment, row, kContext);
        ASSERT_TRUE(sealed.ok());
        EXPECT_EQ(encryptor_->Decrypt(*sealed, kContext).value_or("?"), row);
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace
}  // namespace clavis
