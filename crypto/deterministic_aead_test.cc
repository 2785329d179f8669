#include "crypto/deterministic_aead.h"

#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "crypto/testing/wycheproof.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

using ::clavis::crypto::testing::LoadWycheproof;
using ::clavis::crypto::testing::WycheproofCase;
using ::clavis::crypto::testing::WycheproofFile;

constexpr size_t kSivSize = 16;

bool IsDecryptionFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         status.message() == "decryption failed";
}

std::string FlipBit(std::string s, size_t bit) {
  s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
  return s;
}

std::unique_ptr<DeterministicAead> MakeDaead(const SecretBytes& key) {
  absl::StatusOr<std::unique_ptr<DeterministicAead>> daead = DeterministicAead::New(key.Clone());
  EXPECT_TRUE(daead.ok()) << daead.status();
  return daead.ok() ? std::move(*daead) : nullptr;
}

// Wycheproof AES-SIV-CMAC: one associated-data component, all three key sizes.
// The valid vectors with an empty message cannot be run: OpenSSL 3.0's AES-SIV
// does not support empty plaintexts, so DeterministicAead rejects them
// (Seal: InvalidArgument; Open: "decryption failed"), which is checked and
// counted separately.
TEST(DeterministicAeadWycheproofTest, AesSivMatchesAllVectors) {
  absl::StatusOr<std::unique_ptr<WycheproofFile>> file = LoadWycheproof("aes_siv_cmac_test.json");
  ASSERT_TRUE(file.ok()) << file.status();
  int valid_ok = 0, invalid_rejected = 0, acceptable_ran = 0, empty_plaintext_rejected = 0;
  for (const WycheproofCase& c : (*file)->cases) {
    SCOPED_TRACE(absl::StrCat("tcId ", c.tc_id, " (", c.comment, ")"));
    const std::string key = c.Hex("key");
    const std::string aad = c.Hex("aad");
    const std::string msg = c.Hex("msg");
    const std::string ct = c.Hex("ct");
    ASSERT_EQ(key.size() * 8, c.Num("keySize"));
    absl::StatusOr<std::unique_ptr<DeterministicAead>> daead =
        DeterministicAead::New(SecretBytes::CopyOf(key));
    ASSERT_TRUE(daead.ok()) << daead.status();

    if (c.result == "valid" && msg.empty()) {
      absl::StatusOr<std::string> sealed = (*daead)->Seal(msg, aad);
      absl::StatusOr<std::string> opened = (*daead)->Open(ct, aad);
      EXPECT_EQ(sealed.status().code(), absl::StatusCode::kInvalidArgument) << sealed.status();
      EXPECT_TRUE(IsDecryptionFailure(opened.status())) << opened.status();
      if (sealed.status().code() == absl::StatusCode::kInvalidArgument &&
          IsDecryptionFailure(opened.status())) {
        ++empty_plaintext_rejected;
      }
    } else if (c.result == "valid") {
      absl::StatusOr<std::string> sealed = (*daead)->Seal(msg, aad);
      absl::StatusOr<std::string> opened = (*daead)->Open(ct, aad);
      ASSERT_TRUE(sealed.ok()) << sealed.status();
      ASSERT_TRUE(opened.ok()) << opened.status();
      EXPECT_EQ(HexEncode(*sealed), HexEncode(ct));
      EXPECT_EQ(HexEncode(*opened), HexEncode(msg));
      if (*sealed == ct && *opened == msg) ++valid_ok;
    } else if (c.result == "invalid") {
      absl::StatusOr<std::string> opened = (*daead)->Open(ct, aad);
      EXPECT_TRUE(IsDecryptionFailure(opened.status())) << opened.status();
      if (IsDecryptionFailure(opened.status())) ++invalid_rejected;
    } else {
      (void)(*daead)->Seal(msg, aad);
      (void)(*daead)->Open(ct, aad);
      ++acceptable_ran;
    }
  }
  const int total = valid_ok + invalid_rejected + acceptable_ran + empty_plaintext_rejected;
  const std::string summary = absl::StrCat(
      "aes_siv_cmac_test.json: ", total, " vectors: ", valid_ok, " valid ok, ", invalid_rejected,
      " invalid rejected, ", acceptable_ran, " acceptable ran, ", empty_plaintext_rejected,
      " valid with empty plaintext rejected (unsupported by OpenSSL 3.0 AES-SIV)");
  std::cout << summary << std::endl;
  RecordProperty("wycheproof", summary);
  EXPECT_EQ(total, static_cast<int>((*file)->cases.size()));
  EXPECT_EQ(total, static_cast<int>((*file)->root.fields().at("numberOfTests").number_value()));
}

class DeterministicAeadTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    key_ = RandomSecret(GetParam());
    daead_ = MakeDaead(key_);
    ASSERT_NE(daead_, nullptr);
  }

  SecretBytes key_;
  std::unique_ptr<DeterministicAead> daead_;
};

INSTANTIATE_TEST_SUITE_P(AllKeySizes, DeterministicAeadTest, ::testing::Values(32, 48, 64),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return absl::StrCat("Key", info.param, "Bytes");
                         });

TEST_P(DeterministicAeadTest, SealThenOpenRoundTripsForManySizes) {
  for (size_t size : {1, 15, 16, 17, 32, 1000, 65536 + 5}) {
    SCOPED_TRACE(size);
    const std::string plaintext = RandomBytes(size);
    const std::string aad = RandomBytes(size % 29);
    absl::StatusOr<std::string> sealed = daead_->Seal(plaintext, aad);
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    EXPECT_EQ(sealed->size(), kSivSize + size);
    absl::StatusOr<std::string> opened = daead_->Open(*sealed, aad);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST_P(DeterministicAeadTest, SameInputsGiveSameOutput) {
  absl::StatusOr<std::string> a = daead_->Seal("alice@example.com", "users.email");
  absl::StatusOr<std::string> b = daead_->Seal("alice@example.com", "users.email");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST_P(DeterministicAeadTest, DifferentPlaintextOrAssociatedDataGiveDifferentOutput) {
  absl::StatusOr<std::string> base = daead_->Seal("alice@example.com", "users.email");
  absl::StatusOr<std::string> other_plaintext = daead_->Seal("alice@example.org", "users.email");
  absl::StatusOr<std::string> other_aad = daead_->Seal("alice@example.com", "users.login");
  absl::StatusOr<std::string> empty_aad = daead_->Seal("alice@example.com", "");
  ASSERT_TRUE(base.ok() && other_plaintext.ok() && other_aad.ok() && empty_aad.ok());
  EXPECT_NE(*base, *other_plaintext);
  EXPECT_NE(*base, *other_aad);
  EXPECT_NE(*base, *empty_aad);
}

TEST_P(DeterministicAeadTest, EmptyAssociatedDataRoundTrips) {
  absl::StatusOr<std::string> sealed = daead_->Seal("value", "");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  absl::StatusOr<std::string> opened = daead_->Open(*sealed, "");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "value");
  EXPECT_TRUE(IsDecryptionFailure(daead_->Open(*sealed, std::string(1, '\0')).status()));
}

TEST_P(DeterministicAeadTest, SealRejectsEmptyPlaintext) {
  absl::StatusOr<std::string> sealed = daead_->Seal("", "aad");
  ASSERT_FALSE(sealed.ok());
  EXPECT_EQ(sealed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(DeterministicAeadTest, OpenFailsOnFlippedSivBit) {
  absl::StatusOr<std::string> sealed = daead_->Seal("plaintext", "aad");
  ASSERT_TRUE(sealed.ok());
  for (size_t bit = 0; bit < kSivSize * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsDecryptionFailure(daead_->Open(FlipBit(*sealed, bit), "aad").status()));
  }
}

TEST_P(DeterministicAeadTest, OpenFailsOnFlippedCiphertextBit) {
  absl::StatusOr<std::string> sealed = daead_->Seal("plaintext", "aad");
  ASSERT_TRUE(sealed.ok());
  for (size_t bit = kSivSize * 8; bit < sealed->size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsDecryptionFailure(daead_->Open(FlipBit(*sealed, bit), "aad").status()));
  }
}

TEST_P(DeterministicAeadTest, OpenFailsOnFlippedAssociatedDataBit) {
  const std::string aad = "table=users;column=email";
  absl::StatusOr<std::string> sealed = daead_->Seal("plaintext", aad);
  ASSERT_TRUE(sealed.ok());
  for (size_t bit = 0; bit < aad.size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsDecryptionFailure(daead_->Open(*sealed, FlipBit(aad, bit)).status()));
  }
}

TEST_P(DeterministicAeadTest, OpenFailsWithWrongKey) {
  absl::StatusOr<std::string> sealed = daead_->Seal("plaintext", "aad");
  ASSERT_TRUE(sealed.ok());
  std::unique_ptr<DeterministicAead> other = MakeDaead(RandomSecret(GetParam()));
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(IsDecryptionFailure(other->Open(*sealed, "aad").status()));
}

TEST_P(DeterministicAeadTest, OpenFailsOnTruncatedInput) {
  absl::StatusOr<std::string> sealed = daead_->Seal("plaintext", "aad");
  ASSERT_TRUE(sealed.ok());
  for (size_t size = 0; size < sealed->size(); ++size) {
    SCOPED_TRACE(size);
    EXPECT_TRUE(IsDecryptionFailure(daead_->Open(sealed->substr(0, size), "aad").status()));
  }
  EXPECT_TRUE(IsDecryptionFailure(daead_->Open(*sealed + 'x', "aad").status()));
}

TEST_P(DeterministicAeadTest, FailedOpenErrorDoesNotContainKey) {
  absl::StatusOr<std::string> sealed = daead_->Seal("plaintext", "aad");
  ASSERT_TRUE(sealed.ok());
  const absl::Status status = daead_->Open(FlipBit(*sealed, 3), "aad").status();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.ToString().find(HexEncode(key_.view())), std::string::npos) << status;
  EXPECT_EQ(status.ToString().find(std::string(key_.view())), std::string::npos);
}

TEST(DeterministicAeadNewTest, RejectsWrongKeySize) {
  for (size_t size : {0, 16, 24, 31, 33, 47, 49, 63, 65, 128}) {
    SCOPED_TRACE(size);
    absl::StatusOr<std::unique_ptr<DeterministicAead>> daead =
        DeterministicAead::New(RandomSecret(size));
    ASSERT_FALSE(daead.ok());
    EXPECT_EQ(daead.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(daead.status().message().find("32, 48 or 64"), absl::string_view::npos)
        << daead.status();
  }
}

TEST(DeterministicAeadNewTest, KeysOfDifferentSizesAreDifferentCiphers) {
  SecretBytes key = RandomSecret(64);
  std::unique_ptr<DeterministicAead> siv256 = MakeDaead(key);
  std::unique_ptr<DeterministicAead> siv128 =
      MakeDaead(SecretBytes::CopyOf(key.view().substr(0, 32)));
  ASSERT_NE(siv256, nullptr);
  ASSERT_NE(siv128, nullptr);
  absl::StatusOr<std::string> sealed = siv256->Seal("plaintext", "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_TRUE(IsDecryptionFailure(siv128->Open(*sealed, "").status()));
}

}  // namespace
}  // namespace clavis::crypto
