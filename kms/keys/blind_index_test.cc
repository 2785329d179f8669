#include "kms/keys/blind_index.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/key_domain_testing.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;
using testing::KeyDomainTest;

// ---- The spec, computed without Clavis code ----

std::string U16(size_t n) {
  return std::string{static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
}

// info of docs/FORMAT.md "Blind index key (v1)", built by hand.
std::string SpecInfo(const std::string& key_name, const std::string& segment,
                     const std::string& index) {
  return absl::StrCat("clavis blind index v1", U16(key_name.size()), key_name, U16(segment.size()),
                      segment, U16(index.size()), index);
}

// HKDF-SHA256 with no salt, straight from OpenSSL's EVP_KDF.
std::string OpenSslHkdf(absl::string_view ikm, absl::string_view info) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EXPECT_NE(kdf, nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  EXPECT_NE(ctx, nullptr);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(ikm.data()),
                                        ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end(),
  };
  std::string out(32, '\0');
  EXPECT_EQ(EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), out.size(), params),
            1);
  EVP_KDF_CTX_free(ctx);
  return out;
}

crypto::SecretBytes CountingKey() {
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(i));
  return crypto::SecretBytes::CopyOf(bytes);
}

TEST(BlindIndexKeyTest, DerivationIsHkdfSha256OfTheDocumentedInfo) {
  const crypto::SecretBytes segment_key = CountingKey();
  auto derived = DeriveBlindIndexKeyFromSegmentKey(segment_key, KeyName{"acme", "crm"},
                                                   "acme/customers", "email");
  ASSERT_TRUE(derived.ok()) << derived.status();
  ASSERT_EQ(derived->size(), kBlindIndexKeySize);
  const std::string info = SpecInfo("tenants/acme/keys/crm", "acme/customers", "email");
  EXPECT_EQ(info.size(), 21u + 2 + 21 + 2 + 14 + 2 + 5);
  EXPECT_EQ(crypto::HexEncode(derived->view()),
            crypto::HexEncode(OpenSslHkdf(segment_key.view(), info)));
  // The test vector printed in docs/FORMAT.md.
  EXPECT_EQ(crypto::HexEncode(derived->view()),
            "97524eac6b882dd4f352e1bcb8577020eb38fbbc1d5f6d71b0c1c18d6f03e5a5");
}

TEST(BlindIndexKeyTest, LengthsAreBigEndianU16EvenAbove255) {
  const crypto::SecretBytes segment_key = CountingKey();
  const std::string tenant(63, 't'), key_id(63, 'k');
  const std::string segment = std::string(255, 's') + "x";  // 256 bytes: 0x01 0x00
  const std::string index(64, 'i');
  auto derived =
      DeriveBlindIndexKeyFromSegmentKey(segment_key, KeyName{tenant, key_id}, segment, index);
  ASSERT_TRUE(derived.ok()) << derived.status();
  const std::string key_name = absl::StrCat("tenants/", tenant, "/keys/", key_id);
  EXPECT_EQ(derived->view(), OpenSslHkdf(segment_key.view(), SpecInfo(key_name, segment, index)));
}

TEST(BlindIndexKeyTest, EveryInputChangesTheKey) {
  const crypto::SecretBytes segment_key = CountingKey();
  auto derive = [&](const KeyName& key, const std::string& segment, const std::string& index) {
    auto k = DeriveBlindIndexKeyFromSegmentKey(segment_key, key, segment, index);
    EXPECT_TRUE(k.ok()) << k.status();
    return crypto::HexEncode(k->view());
  };
  const std::string base = derive({"acme", "crm"}, "s", "email");
  EXPECT_NE(derive({"acme", "crm"}, "s", "phone"), base);
  EXPECT_NE(derive({"acme", "crm"}, "t", "email"), base);
  EXPECT_NE(derive({"acme", "crm2"}, "s", "email"), base);
  EXPECT_NE(derive({"globex", "crm"}, "s", "email"), base);
  // Length prefixes keep shifted boundaries apart ("s" + "email" vs "se" + "mail").
  EXPECT_NE(derive({"acme", "crm"}, "se", "mail"), base);
}

TEST(BlindIndexKeyTest, IndexNamesAreOneToSixtyFourOfTheAllowedBytes) {
  EXPECT_TRUE(ValidateBlindIndexName("email").ok());
  EXPECT_TRUE(ValidateBlindIndexName("a").ok());
  EXPECT_TRUE(ValidateBlindIndexName("v2.email_lower-case").ok());
  EXPECT_TRUE(ValidateBlindIndexName(std::string(64, 'x')).ok());

  auto empty = ValidateBlindIndexName("");
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.message(), HasSubstr("index name is empty"));

  auto long_name = ValidateBlindIndexName(std::string(65, 'x'));
  EXPECT_EQ(long_name.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(long_name.message(), HasSubstr("65 bytes is longer than 64"));

  const std::vector<std::string> bad_names = {
      "Email", "e mail", "e/mail", "e@mail", std::string("e\0m", 3), "\xc3\xa9", "secret*value"};
  for (const std::string& bad : bad_names) {
    auto s = ValidateBlindIndexName(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("may contain only a-z, 0-9, '_', '.' and '-'"));
    // The name is never echoed, only its length.
    EXPECT_FALSE(absl::StrContains(s.message(), bad)) << s.message();
  }
}

TEST(BlindIndexKeyTest, RefusesASegmentKeyOfAnotherSize) {
  auto derived = DeriveBlindIndexKeyFromSegmentKey(crypto::SecretBytes(16), KeyName{"acme", "crm"},
                                                   "s", "email");
  EXPECT_EQ(derived.status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- Envelope::DeriveBlindIndexKey: the key domain around it ----

class DeriveBlindIndexKeyTest : public KeyDomainTest {
 protected:
  SegmentName Seg(const std::string& segment, const KeyName& key = {"acme", "crm"}) {
    return SegmentName{key, segment};
  }

  std::string Derive(const SegmentName& segment, const std::string& index = "email") {
    auto k = envelope_->DeriveBlindIndexKey(segment, index);
    EXPECT_TRUE(k.ok()) << k.status();
    if (!k.ok()) return "";
    EXPECT_EQ(k->size(), kBlindIndexKeySize);
    return std::string(k->view());
  }

  // The plaintext of segment-key version `version`, unwrapped from storage.
  crypto::SecretBytes SegmentKey(const SegmentName& name, uint32_t version) {
    auto key = repository_->GetKey(name.key);
    EXPECT_TRUE(key.ok());
    auto segment = repository_->GetSegment(name);
    EXPECT_TRUE(segment.ok());
    const internal::SegmentVersionRecord* v = (*segment)->FindVersion(version);
    EXPECT_NE(v, nullptr);
    auto plain = repository_->UnwrapSegmentKey(**key, name.segment, *v);
    EXPECT_TRUE(plain.ok()) << plain.status();
    return *std::move(plain);
  }

  absl::StatusCode Code(const SegmentName& segment, const std::string& index = "email") {
    return envelope_->DeriveBlindIndexKey(segment, index).status().code();
  }
};

TEST_F(DeriveBlindIndexKeyTest, IsDerivedFromSegmentKeyVersionOne) {
  MakeKey();
  const std::string first = Derive(Seg("acme/customers"));
  const crypto::SecretBytes v1 = SegmentKey(Seg("acme/customers"), 1);
  EXPECT_EQ(first,
            OpenSslHkdf(v1.view(), SpecInfo("tenants/acme/keys/crm", "acme/customers", "email")));
}

TEST_F(DeriveBlindIndexKeyTest, StaysTheSameAcrossRotationsRewrapAndRestart) {
  const KeyName key = MakeKey();
  const std::string first = Derive(Seg("acme/customers"));
  EXPECT_EQ(Derive(Seg("acme/customers")), first);

  ASSERT_TRUE(lifecycle_->RotateSegment(Seg("acme/customers")).ok());
  ASSERT_TRUE(lifecycle_->RotateSegment(Seg("acme/customers")).ok());
  EXPECT_EQ(Derive(Seg("acme/customers")), first);

  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  auto progress = lifecycle_->RewrapSegments(key, "", 100);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rewrapped, 1u);
  // Master version 1 no longer holds the segment: it may go.
  ASSERT_TRUE(lifecycle_->DisableKeyVersion(KeyVersionName{key, 1}).ok());
  EXPECT_EQ(Derive(Seg("acme/customers")), first);

  Rebuild();
  EXPECT_EQ(Derive(Seg("acme/customers")), first);
}

TEST_F(DeriveBlindIndexKeyTest, IndexSegmentKeyAndTenantEachGiveAnotherKey) {
  MakeKey();
  MakeKey("acme", "hr");
  MakeKey("globex", "crm");
  const std::string base = Derive(Seg("s"));
  EXPECT_NE(Derive(Seg("s"), "phone"), base);
  EXPECT_NE(Derive(Seg("t")), base);
  EXPECT_NE(Derive(Seg("s", {"acme", "hr"})), base);
  EXPECT_NE(Derive(Seg("s", {"globex", "crm"})), base);
}

TEST_F(DeriveBlindIndexKeyTest, CreatesTheSegmentOnFirstUseUnlessSegmentsAreExplicit) {
  MakeKey();
  Derive(Seg("new/segment"));
  auto created = lifecycle_->GetSegment(Seg("new/segment"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->primary_version(), 1u);

  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "strict";
  p.require_explicit_segments = true;
  ASSERT_TRUE(lifecycle_->CreateKey(p).ok());
  const KeyName strict{"acme", "strict"};
  auto refused = envelope_->DeriveBlindIndexKey(Seg("a", strict), "email");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("clavisctl segment create"));
  EXPECT_TRUE(absl::IsNotFound(lifecycle_->GetSegment(Seg("a", strict)).status()));
  ASSERT_TRUE(lifecycle_->CreateSegment(Seg("a", strict)).ok());
  Derive(Seg("a", strict));
}

TEST_F(DeriveBlindIndexKeyTest, DisabledOrPendingKeyIsRefusedAndEnablingRestores) {
  const KeyName key = MakeKey();
  const std::string before = Derive(Seg("s"));
  ASSERT_TRUE(lifecycle_->DisableKey(key).ok());
  auto refused = envelope_->DeriveBlindIndexKey(Seg("s"), "email");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("is DISABLED"));
  ASSERT_TRUE(lifecycle_->EnableKey(key).ok());
  EXPECT_EQ(Derive(Seg("s")), before);

  ASSERT_TRUE(lifecycle_->ScheduleKeyDestruction(key, absl::Hours(24 * 7)).ok());
  auto pending = envelope_->DeriveBlindIndexKey(Seg("s"), "email");
  EXPECT_EQ(pending.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(pending.status().message(), HasSubstr("PENDING_DESTRUCTION"));
}

TEST_F(DeriveBlindIndexKeyTest, RevokedSegmentIsRefusedAndOthersWork) {
  MakeKey();
  const std::string before = Derive(Seg("a"));
  Derive(Seg("b"));
  ASSERT_TRUE(lifecycle_->RevokeSegment(Seg("a")).ok());
  auto refused = envelope_->DeriveBlindIndexKey(Seg("a"), "email");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("revoked"));
  Derive(Seg("b"));
  ASSERT_TRUE(lifecycle_->EnableSegment(Seg("a")).ok());
  EXPECT_EQ(Derive(Seg("a")), before);
}

TEST_F(DeriveBlindIndexKeyTest, DisabledMasterVersionHoldingVersionOneIsRefused) {
  const KeyName key = MakeKey();
  Derive(Seg("s"));
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  ASSERT_TRUE(lifecycle_->DisableKeyVersion(KeyVersionName{key, 1}).ok());
  auto refused = envelope_->DeriveBlindIndexKey(Seg("s"), "email");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("versions/1 is DISABLED"));
}

TEST_F(DeriveBlindIndexKeyTest, DestroyedSegmentGivesNoKeyEverAgain) {
  MakeKey();
  Derive(Seg("a"));
  const std::string b = Derive(Seg("b"));
  ASSERT_TRUE(lifecycle_->ScheduleSegmentDestruction(Seg("a"), absl::Hours(24 * 7)).ok());
  EXPECT_EQ(Code(Seg("a")), absl::StatusCode::kFailedPrecondition);
  clock_.Advance(absl::Hours(24 * 7) + absl::Seconds(1));
  ASSERT_TRUE(lifecycle_->DestroySegment(Seg("a")).ok());
  Rebuild();
  auto gone = envelope_->DeriveBlindIndexKey(Seg("a"), "email");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gone.status().message(), HasSubstr("DESTROYED"));
  EXPECT_EQ(Derive(Seg("b")), b);
}

TEST_F(DeriveBlindIndexKeyTest, BadIndexNameIsRefusedBeforeAnythingIsCreated) {
  MakeKey();
  EXPECT_EQ(Code(Seg("s"), ""), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(Seg("s"), std::string(65, 'x')), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(Seg("s"), "E-mail"), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::IsNotFound(lifecycle_->GetSegment(Seg("s")).status()));
}

TEST_F(DeriveBlindIndexKeyTest, UnknownKeyIsNotFound) {
  EXPECT_EQ(Code(Seg("s", {"acme", "nope"})), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace clavis::kms
