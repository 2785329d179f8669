#include "crypto/aead.h"

#include <iostream>
#include <string>
#include <thread>
#include <vector>

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

constexpr AeadAlgorithm kAllAlgorithms[] = {
    AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kXChaCha20Poly1305, AeadAlgorithm::kChaCha20Poly1305};

std::unique_ptr<Aead> MakeAead(AeadAlgorithm algorithm, const SecretBytes& key) {
  absl::StatusOr<std::unique_ptr<Aead>> aead = Aead::New(algorithm, key.Clone());
  EXPECT_TRUE(aead.ok()) << aead.status();
  return aead.ok() ? std::move(*aead) : nullptr;
}

bool IsDecryptionFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         status.message() == "decryption failed";
}

std::string FlipBit(std::string s, size_t bit) {
  s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
  return s;
}

// ---------------------------------------------------------------------------
// Wycheproof

struct VectorCounts {
  int valid_ok = 0;
  int invalid_rejected = 0;
  int acceptable_ran = 0;
  int unsupported_rejected = 0;
  int total() const { return valid_ok + invalid_rejected + acceptable_ran + unsupported_rejected; }
};

// Runs every case of an AEAD Wycheproof file. Groups with the given key, IV
// and tag sizes (in bits) are run fully; every other group must be refused by
// the API with InvalidArgument (at New(), Seal or Open).
void RunAeadVectors(const std::string& file_name, AeadAlgorithm algorithm, int iv_bits) {
  absl::StatusOr<std::unique_ptr<WycheproofFile>> file = LoadWycheproof(file_name);
  ASSERT_TRUE(file.ok()) << file.status();
  VectorCounts counts;
  for (const WycheproofCase& c : (*file)->cases) {
    SCOPED_TRACE(absl::StrCat(file_name, " tcId ", c.tc_id, " (", c.comment, ")"));
    const std::string key = c.Hex("key");
    const std::string iv = c.Hex("iv");
    const std::string aad = c.Hex("aad");
    const std::string msg = c.Hex("msg");
    const std::string ct_and_tag = c.Hex("ct") + c.Hex("tag");
    const bool supported =
        c.Num("keySize") == 256 && c.Num("ivSize") == iv_bits && c.Num("tagSize") == 128;

    absl::StatusOr<std::unique_ptr<Aead>> aead = Aead::New(algorithm, SecretBytes::CopyOf(key));
    if (!supported) {
      if (!aead.ok()) {
        EXPECT_EQ(aead.status().code(), absl::StatusCode::kInvalidArgument) << aead.status();
        if (aead.status().code() == absl::StatusCode::kInvalidArgument) {
          ++counts.unsupported_rejected;
        }
        continue;
      }
      absl::StatusOr<std::string> opened = (*aead)->Open(iv, ct_and_tag, aad);
      absl::StatusOr<std::string> sealed = (*aead)->Seal(iv, msg, aad);
      EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument) << opened.status();
      // Only the sizes differ from a supported group: Seal must refuse too.
      EXPECT_EQ(sealed.status().code(), absl::StatusCode::kInvalidArgument) << sealed.status();
      if (opened.status().code() == absl::StatusCode::kInvalidArgument &&
          sealed.status().code() == absl::StatusCode::kInvalidArgument) {
        ++counts.unsupported_rejected;
      }
      continue;
    }

    ASSERT_TRUE(aead.ok()) << aead.status();
    if (c.result == "valid") {
      absl::StatusOr<std::string> sealed = (*aead)->Seal(iv, msg, aad);
      absl::StatusOr<std::string> opened = (*aead)->Open(iv, ct_and_tag, aad);
      absl::StatusOr<SecretBytes> opened_secret = (*aead)->OpenSecret(iv, ct_and_tag, aad);
      ASSERT_TRUE(sealed.ok()) << sealed.status();
      ASSERT_TRUE(opened.ok()) << opened.status();
      ASSERT_TRUE(opened_secret.ok()) << opened_secret.status();
      EXPECT_EQ(HexEncode(*sealed), HexEncode(ct_and_tag));
      EXPECT_EQ(HexEncode(*opened), HexEncode(msg));
      EXPECT_EQ(HexEncode(opened_secret->view()), HexEncode(msg));
      if (*sealed == ct_and_tag && *opened == msg && opened_secret->view() == msg) {
        ++counts.valid_ok;
      }
    } else if (c.result == "invalid") {
      absl::StatusOr<std::string> opened = (*aead)->Open(iv, ct_and_tag, aad);
      absl::StatusOr<SecretBytes> opened_secret = (*aead)->OpenSecret(iv, ct_and_tag, aad);
      EXPECT_TRUE(IsDecryptionFailure(opened.status())) << opened.status();
      EXPECT_TRUE(IsDecryptionFailure(opened_secret.status())) << opened_secret.status();
      if (IsDecryptionFailure(opened.status()) && IsDecryptionFailure(opened_secret.status())) {
        ++counts.invalid_rejected;
      }
    } else {
      // "acceptable": either outcome is allowed; it must simply not crash.
      (void)(*aead)->Seal(iv, msg, aad);
      (void)(*aead)->Open(iv, ct_and_tag, aad);
      ++counts.acceptable_ran;
    }
  }
  const int expected_total =
      static_cast<int>((*file)->root.fields().at("numberOfTests").number_value());
  const std::string summary = absl::StrCat(
      file_name, ": ", counts.total(), " vectors: ", counts.valid_ok, " valid ok, ",
      counts.invalid_rejected, " invalid rejected, ", counts.acceptable_ran, " acceptable ran, ",
      counts.unsupported_rejected, " unsupported parameters rejected");
  std::cout << summary << std::endl;
  ::testing::Test::RecordProperty("wycheproof", summary);
  EXPECT_EQ(counts.total(), static_cast<int>((*file)->cases.size()));
  EXPECT_EQ(counts.total(), expected_total);
}

TEST(AeadWycheproofTest, AesGcmMatchesAllVectors) {
  RunAeadVectors("aes_gcm_test.json", AeadAlgorithm::kAes256Gcm, 96);
}

TEST(AeadWycheproofTest, ChaCha20Poly1305MatchesAllVectors) {
  RunAeadVectors("chacha20_poly1305_test.json", AeadAlgorithm::kChaCha20Poly1305, 96);
}

TEST(AeadWycheproofTest, XChaCha20Poly1305MatchesAllVectors) {
  RunAeadVectors("xchacha20_poly1305_test.json", AeadAlgorithm::kXChaCha20Poly1305, 192);
}

// ---------------------------------------------------------------------------
// Algorithm-independent properties, run for every algorithm.

class AeadTest : public ::testing::TestWithParam<AeadAlgorithm> {
 protected:
  void SetUp() override {
    key_ = RandomSecret(Aead::kKeySize);
    aead_ = MakeAead(GetParam(), key_);
    ASSERT_NE(aead_, nullptr);
    nonce_ = RandomBytes(aead_->nonce_size());
  }

  SecretBytes key_;
  std::unique_ptr<Aead> aead_;
  std::string nonce_;
};

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, AeadTest, ::testing::ValuesIn(kAllAlgorithms),
                         [](const ::testing::TestParamInfo<AeadAlgorithm>& info) {
                           std::string name(AeadAlgorithmName(info.param));
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

TEST_P(AeadTest, ReportsAlgorithmAndNonceSize) {
  EXPECT_EQ(aead_->algorithm(), GetParam());
  const size_t expected = GetParam() == AeadAlgorithm::kXChaCha20Poly1305 ? 24 : 12;
  EXPECT_EQ(aead_->nonce_size(), expected);
}

TEST_P(AeadTest, NewRejectsWrongKeySize) {
  for (size_t size : {0, 1, 16, 24, 31, 33, 64}) {
    SCOPED_TRACE(size);
    absl::StatusOr<std::unique_ptr<Aead>> aead = Aead::New(GetParam(), RandomSecret(size));
    ASSERT_FALSE(aead.ok());
    EXPECT_EQ(aead.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(aead.status().message().find("32 bytes"), absl::string_view::npos) << aead.status();
  }
}

TEST_P(AeadTest, SealThenOpenRoundTripsForManySizes) {
  for (size_t size : {0, 1, 15, 16, 17, 63, 64, 65, 1000, 65536 + 3}) {
    SCOPED_TRACE(size);
    const std::string plaintext = RandomBytes(size);
    const std::string aad = RandomBytes(size % 37);
    absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, plaintext, aad);
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    EXPECT_EQ(sealed->size(), size + Aead::kTagSize);
    absl::StatusOr<std::string> opened = aead_->Open(nonce_, *sealed, aad);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);
    absl::StatusOr<SecretBytes> secret = aead_->OpenSecret(nonce_, *sealed, aad);
    ASSERT_TRUE(secret.ok()) << secret.status();
    EXPECT_EQ(secret->view(), plaintext);
  }
}

TEST_P(AeadTest, SealIsDeterministicForAFixedNonce) {
  absl::StatusOr<std::string> a = aead_->Seal(nonce_, "message", "aad");
  absl::StatusOr<std::string> b = aead_->Seal(nonce_, "message", "aad");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST_P(AeadTest, OpenSecretReturnsAKeyInSecureMemory) {
  SecretBytes data_key = RandomSecret(32);
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, data_key.view(), "key-id-7");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  absl::StatusOr<SecretBytes> opened = aead_->OpenSecret(nonce_, *sealed, "key-id-7");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->Equals(data_key));
}

TEST_P(AeadTest, SealRejectsWrongNonceSize) {
  const size_t n = aead_->nonce_size();
  for (size_t size : {size_t{0}, size_t{8}, n - 1, n + 1, size_t{32}}) {
    SCOPED_TRACE(size);
    absl::StatusOr<std::string> sealed = aead_->Seal(std::string(size, 'n'), "message", "");
    ASSERT_FALSE(sealed.ok());
    EXPECT_EQ(sealed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(sealed.status().message().find("nonce"), absl::string_view::npos) << sealed.status();
  }
}

TEST_P(AeadTest, OpenRejectsWrongNonceSize) {
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, "message", "");
  ASSERT_TRUE(sealed.ok());
  const size_t n = aead_->nonce_size();
  for (size_t size : {size_t{0}, n - 1, n + 1}) {
    SCOPED_TRACE(size);
    const std::string nonce(size, 'n');
    absl::StatusOr<std::string> opened = aead_->Open(nonce, *sealed, "");
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument) << opened.status();
    absl::StatusOr<SecretBytes> secret = aead_->OpenSecret(nonce, *sealed, "");
    EXPECT_EQ(secret.status().code(), absl::StatusCode::kInvalidArgument) << secret.status();
  }
}

TEST_P(AeadTest, OpenFailsOnFlippedCiphertextBit) {
  const std::string plaintext = "attack at dawn, bring 32 bytes!!";
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, plaintext, "aad");
  ASSERT_TRUE(sealed.ok());
  for (size_t bit = 0; bit < plaintext.size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, FlipBit(*sealed, bit), "aad").status()));
  }
}

TEST_P(AeadTest, OpenFailsOnFlippedTagBit) {
  const std::string plaintext = "short";
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, plaintext, "aad");
  ASSERT_TRUE(sealed.ok());
  for (size_t bit = plaintext.size() * 8; bit < sealed->size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, FlipBit(*sealed, bit), "aad").status()));
    EXPECT_TRUE(
        IsDecryptionFailure(aead_->OpenSecret(nonce_, FlipBit(*sealed, bit), "aad").status()));
  }
}

TEST_P(AeadTest, OpenFailsOnFlippedAssociatedDataBit) {
  const std::string aad = "tenant=42;key=7";
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, "message", aad);
  ASSERT_TRUE(sealed.ok());
  for (size_t bit = 0; bit < aad.size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, *sealed, FlipBit(aad, bit)).status()));
  }
}

TEST_P(AeadTest, OpenFailsOnMissingOrExtraAssociatedData) {
  absl::StatusOr<std::string> with_aad = aead_->Seal(nonce_, "message", "aad");
  absl::StatusOr<std::string> without_aad = aead_->Seal(nonce_, "message", "");
  ASSERT_TRUE(with_aad.ok() && without_aad.ok());
  EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, *with_aad, "").status()));
  EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, *with_aad, "aad0").status()));
  EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, *without_aad, "aad").status()));
}

TEST_P(AeadTest, OpenFailsOnFlippedNonceBit) {
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, "message", "");
  ASSERT_TRUE(sealed.ok());
  for (size_t bit = 0; bit < nonce_.size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsDecryptionFailure(aead_->Open(FlipBit(nonce_, bit), *sealed, "").status()));
  }
}

TEST_P(AeadTest, OpenFailsWithWrongKey) {
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, "message", "");
  ASSERT_TRUE(sealed.ok());
  std::unique_ptr<Aead> other = MakeAead(GetParam(), RandomSecret(Aead::kKeySize));
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(IsDecryptionFailure(other->Open(nonce_, *sealed, "").status()));
  EXPECT_TRUE(IsDecryptionFailure(other->OpenSecret(nonce_, *sealed, "").status()));
}

TEST_P(AeadTest, OpenFailsOnEmptyInput) {
  EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, "", "").status()));
  EXPECT_TRUE(IsDecryptionFailure(aead_->OpenSecret(nonce_, "", "").status()));
}

TEST_P(AeadTest, OpenFailsOnInputShorterThanTag) {
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, "", "");
  ASSERT_TRUE(sealed.ok());
  ASSERT_EQ(sealed->size(), Aead::kTagSize);
  for (size_t size = 0; size < Aead::kTagSize; ++size) {
    SCOPED_TRACE(size);
    EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, sealed->substr(0, size), "").status()));
    EXPECT_TRUE(
        IsDecryptionFailure(aead_->OpenSecret(nonce_, sealed->substr(0, size), "").status()));
  }
}

TEST_P(AeadTest, OpenFailsOnTruncatedOrExtendedCiphertext) {
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, "a message of some length", "");
  ASSERT_TRUE(sealed.ok());
  for (size_t size = 0; size < sealed->size(); ++size) {
    SCOPED_TRACE(size);
    EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, sealed->substr(0, size), "").status()));
  }
  EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, *sealed + '\0', "").status()));
  EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce_, sealed->substr(1), "").status()));
}

TEST_P(AeadTest, CiphertextOfAnotherAlgorithmDoesNotOpen) {
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, "message", "");
  ASSERT_TRUE(sealed.ok());
  for (AeadAlgorithm other : kAllAlgorithms) {
    if (other == GetParam()) continue;
    std::unique_ptr<Aead> aead = MakeAead(other, key_);
    ASSERT_NE(aead, nullptr);
    if (aead->nonce_size() != nonce_.size()) continue;
    EXPECT_TRUE(IsDecryptionFailure(aead->Open(nonce_, *sealed, "").status()));
  }
}

TEST_P(AeadTest, FailedOpenErrorDoesNotContainKey) {
  absl::StatusOr<std::string> sealed = aead_->Seal(nonce_, "message", "");
  ASSERT_TRUE(sealed.ok());
  const std::string key_hex = HexEncode(key_.view());
  const absl::Status failures[] = {
      aead_->Open(nonce_, FlipBit(*sealed, 0), "").status(),
      aead_->Open(nonce_, "short", "").status(),
      aead_->Open("bad nonce", *sealed, "").status(),
      aead_->OpenSecret(nonce_, FlipBit(*sealed, 0), "").status(),
      aead_->OpenWithPrefixedNonce("x", "").status(),
  };
  for (const absl::Status& status : failures) {
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.ToString().find(key_hex), std::string::npos) << status;
    EXPECT_EQ(status.ToString().find(std::string(key_.view())), std::string::npos);
  }
}

TEST_P(AeadTest, SealWithRandomNonceProducesDifferentOutputs) {
  absl::StatusOr<std::string> a = aead_->SealWithRandomNonce("message", "aad");
  absl::StatusOr<std::string> b = aead_->SealWithRandomNonce("message", "aad");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), aead_->nonce_size() + 7 + Aead::kTagSize);
  EXPECT_NE(*a, *b);
  EXPECT_NE(a->substr(0, aead_->nonce_size()), b->substr(0, aead_->nonce_size()));
}

TEST_P(AeadTest, OpenWithPrefixedNonceOpensSealWithRandomNonce) {
  absl::StatusOr<std::string> sealed = aead_->SealWithRandomNonce("message", "aad");
  ASSERT_TRUE(sealed.ok());
  absl::StatusOr<std::string> opened = aead_->OpenWithPrefixedNonce(*sealed, "aad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "message");
  // Equivalent to Open with the nonce split off.
  opened = aead_->Open(sealed->substr(0, aead_->nonce_size()), sealed->substr(aead_->nonce_size()),
                       "aad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "message");
  EXPECT_TRUE(IsDecryptionFailure(aead_->OpenWithPrefixedNonce(*sealed, "other").status()));
}

TEST_P(AeadTest, OpenWithPrefixedNonceRejectsInputShorterThanNonce) {
  absl::StatusOr<std::string> sealed = aead_->SealWithRandomNonce("", "");
  ASSERT_TRUE(sealed.ok());
  for (size_t size = 0; size < sealed->size(); ++size) {
    SCOPED_TRACE(size);
    EXPECT_TRUE(
        IsDecryptionFailure(aead_->OpenWithPrefixedNonce(sealed->substr(0, size), "").status()));
  }
}

TEST_P(AeadTest, IsSafeToShareBetweenThreads) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t, &failures] {
      for (int i = 0; i < 200; ++i) {
        const std::string plaintext = absl::StrCat("thread ", t, " message ", i);
        absl::StatusOr<std::string> sealed = aead_->SealWithRandomNonce(plaintext, "aad");
        absl::StatusOr<std::string> opened =
            sealed.ok() ? aead_->OpenWithPrefixedNonce(*sealed, "aad") : sealed.status();
        if (!opened.ok() || *opened != plaintext) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

// An Aead object is used for many messages (clavisd caches them per segment
// and master key; AES-256-GCM keeps keyed contexts between messages): a
// refused message in between must leave it fully usable, for Open and
// OpenSecret alike, and never leak the refused message's state into the next.
TEST_P(AeadTest, RefusedMessagesInBetweenLeaveTheKeyUsable) {
  const std::string nonce(aead_->nonce_size(), 'n');
  for (int i = 0; i < 50; ++i) {
    const std::string plaintext = absl::StrCat("message ", i, std::string(i, 'x'));
    absl::StatusOr<std::string> sealed = aead_->Seal(nonce, plaintext, absl::StrCat("ad", i));
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    std::string tampered = *sealed;
    tampered[static_cast<size_t>(i) % tampered.size()] ^= 0x40;
    EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce, tampered, absl::StrCat("ad", i)).status()));
    EXPECT_TRUE(IsDecryptionFailure(aead_->Open(nonce, *sealed, "other ad").status()));
    EXPECT_EQ(aead_->Open(nonce, *sealed, absl::StrCat("ad", i)).value_or(""), plaintext);
    absl::StatusOr<SecretBytes> secret = aead_->OpenSecret(nonce, *sealed, absl::StrCat("ad", i));
    ASSERT_TRUE(secret.ok()) << secret.status();
    EXPECT_EQ(secret->view(), plaintext);
  }
}

TEST(AeadNewTest, RejectsUnknownAlgorithm) {
  absl::StatusOr<std::unique_ptr<Aead>> aead =
      Aead::New(static_cast<AeadAlgorithm>(99), RandomSecret(Aead::kKeySize));
  ASSERT_FALSE(aead.ok());
  EXPECT_EQ(aead.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AeadAlgorithmNameTest, NamesEachAlgorithm) {
  EXPECT_EQ(AeadAlgorithmName(AeadAlgorithm::kAes256Gcm), "AES-256-GCM");
  EXPECT_EQ(AeadAlgorithmName(AeadAlgorithm::kXChaCha20Poly1305), "XCHACHA20-POLY1305");
  EXPECT_EQ(AeadAlgorithmName(AeadAlgorithm::kChaCha20Poly1305), "CHACHA20-POLY1305");
}

}  // namespace
}  // namespace clavis::crypto
