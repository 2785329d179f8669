// Export from a real key domain, then recovery with nothing but the bundle
// and the customer's material.
#include "kms/escrow/offline_recovery.h"

#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/escrow/escrow_exporter.h"
#include "kms/keys/key_domain_testing.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;

// Copies of the customer's materials (SecretBytes does not copy implicitly).
std::vector<crypto::SecretBytes> Materials(
    std::initializer_list<std::reference_wrapper<const crypto::SecretBytes>> materials) {
  std::vector<crypto::SecretBytes> out;
  for (const crypto::SecretBytes& m : materials)
    out.push_back(crypto::SecretBytes::CopyOf(m.view()));
  return out;
}

class OfflineRecoveryTest : public testing::KeyDomainTest {
 protected:
  void SetUp() override {
    KeyDomainTest::SetUp();
    CreateKeyParams p;
    p.tenant = "acme";
    p.key_id = "byok";
    p.origin = clavis::v1::EXTERNAL;
    ASSERT_TRUE(lifecycle_->CreateKey(p).ok());
    ASSERT_TRUE(lifecycle_->ImportKeyMaterial(key_, v1_, {}).ok());
  }

  std::string Export(size_t chunk_bytes = 64 << 10) {
    EscrowExporter exporter(repository_.get(), &clock_);
    std::string out;
    int chunks = 0;
    absl::Status s = exporter.Export(
        key_,
        [&](std::string chunk) {
          EXPECT_EQ(chunk.back(), '\n');  // whole lines only
          out += chunk;
          ++chunks;
          return absl::OkStatus();
        },
        chunk_bytes);
    EXPECT_TRUE(s.ok()) << s;
    last_chunks_ = chunks;
    return out;
  }

  std::string Seal(const std::string& segment, const std::string& text,
                   const EncryptionContext& context = {{"customer", "42"}}) {
    auto sealed =
        envelope_->Encrypt(SegmentName{key_, segment}, crypto::SecretBytes::CopyOf(text), context);
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    return sealed->ciphertext_blob;
  }

  const KeyName key_{"acme", "byok"};
  const crypto::SecretBytes v1_ = crypto::RandomSecret(32);
  int last_chunks_ = 0;
};

TEST_F(OfflineRecoveryTest, EveryBlobDecryptsWithTheBundleAndTheMaterialAlone) {
  const std::string a = Seal("acme/contacts", "jane@example.com");
  const std::string b = Seal("acme/orders", "order 7");
  auto data_key = envelope_->GenerateDataKey(SegmentName{key_, "acme/records"}, {{"t", "1"}});
  ASSERT_TRUE(data_key.ok());
  // Rotation by a new import, and a segment rotated onto it.
  const crypto::SecretBytes v2 = crypto::RandomSecret(32);
  ImportTarget fresh;
  fresh.new_version = true;
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(key_, v2, fresh).ok());
  ASSERT_TRUE(lifecycle_->RotateSegment(SegmentName{key_, "acme/contacts"}).ok());
  const std::string c = Seal("acme/contacts", "after rotation");

  auto bundle = ParseEscrowBundle(Export());
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->segments.size(), 3u);
  // Nothing but the bundle and the material from here on.
  Rebuild();
  repository_.reset();
  auto recovery = OfflineRecovery::Create(*bundle, Materials({v2, v1_}));
  ASSERT_TRUE(recovery.ok()) << recovery.status();
  EXPECT_EQ((*recovery)->MatchedVersions(), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ((*recovery)->DecryptBlob(a, {{"customer", "42"}})->view(), "jane@example.com");
  EXPECT_EQ((*recovery)->DecryptBlob(b, {{"customer", "42"}})->view(), "order 7");
  EXPECT_EQ((*recovery)->DecryptBlob(c, {{"customer", "42"}})->view(), "after rotation");
  auto recovered_key = (*recovery)->DecryptBlob(data_key->ciphertext_blob, {{"t", "1"}});
  ASSERT_TRUE(recovered_key.ok()) << recovered_key.status();
  EXPECT_TRUE(*recovered_key == data_key->plaintext);
}

TEST_F(OfflineRecoveryTest, LargeKeysStreamInWholeLineChunks) {
  for (int i = 0; i < 2500; ++i) {
    ASSERT_TRUE(lifecycle_->CreateSegment(SegmentName{key_, absl::StrCat("s", i)}).ok());
  }
  auto bundle = ParseEscrowBundle(Export(/*chunk_bytes=*/4096));
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->segments.size(), 2500u);
  EXPECT_GT(last_chunks_, 10);
}

TEST_F(OfflineRecoveryTest, MissingOrWrongMaterialIsNamed) {
  const std::string a = Seal("acme/contacts", "x");
  auto bundle = ParseEscrowBundle(Export());
  ASSERT_TRUE(bundle.ok());
  const crypto::SecretBytes stranger = crypto::RandomSecret(32), half = crypto::RandomSecret(16);
  auto wrong = OfflineRecovery::Create(*bundle, Materials({stranger}));
  ASSERT_TRUE(absl::IsInvalidArgument(wrong.status()));
  EXPECT_THAT(wrong.status().message(), HasSubstr("is no version of tenants/acme/keys/byok"));
  auto short_material = OfflineRecovery::Create(*bundle, Materials({half}));
  ASSERT_TRUE(absl::IsInvalidArgument(short_material.status()));
  auto none = OfflineRecovery::Create(*bundle, {});
  ASSERT_TRUE(none.ok());
  auto missing = (*none)->DecryptBlob(a, {{"customer", "42"}});
  ASSERT_TRUE(absl::IsFailedPrecondition(missing.status()));
  EXPECT_THAT(missing.status().message(), HasSubstr("give its material too"));
}

TEST_F(OfflineRecoveryTest, TamperingAndMismatchesFailClosed) {
  const std::string a = Seal("acme/contacts", "x");
  std::string text = Export();
  auto recovery = OfflineRecovery::Create(*ParseEscrowBundle(text), Materials({v1_}));
  ASSERT_TRUE(recovery.ok());
  // Wrong context, flipped blob, a blob of another key.
  EXPECT_THAT((*recovery)->DecryptBlob(a, {{"customer", "43"}}).status().message(),
              HasSubstr("decryption failed"));
  std::string flipped = a;
  flipped[flipped.size() - 3] ^= 0x10;
  EXPECT_TRUE(
      absl::IsInvalidArgument((*recovery)->DecryptBlob(flipped, {{"customer", "42"}}).status()));
  ASSERT_TRUE(lifecycle_->CreateKey(CreateKeyParams{"acme", "other"}).ok());
  auto other = envelope_->Encrypt(SegmentName{KeyName{"acme", "other"}, "s"},
                                  crypto::SecretBytes::CopyOf("y"), {});
  ASSERT_TRUE(other.ok());
  EXPECT_THAT((*recovery)->DecryptBlob(other->ciphertext_blob, {}).status().message(),
              HasSubstr("made with key tenants/acme/keys/other"));
  // A wrapped segment key altered in the bundle does not unwrap.
  const size_t at = text.find("\"wrappedKey\":\"") + 20;
  text[at] = text[at] == 'A' ? 'B' : 'A';
  auto altered = OfflineRecovery::Create(*ParseEscrowBundle(text), Materials({v1_}));
  ASSERT_TRUE(altered.ok());
  auto refused = (*altered)->DecryptBlob(a, {{"customer", "42"}});
  ASSERT_TRUE(absl::IsDataLoss(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("bundle was altered"));
}

TEST_F(OfflineRecoveryTest, GeneratedKeysHaveNoEscrow) {
  ASSERT_TRUE(lifecycle_->CreateKey(CreateKeyParams{"acme", "generated"}).ok());
  EscrowExporter exporter(repository_.get(), &clock_);
  absl::Status s =
      exporter.Export(KeyName{"acme", "generated"}, [](std::string) { return absl::OkStatus(); });
  ASSERT_TRUE(absl::IsFailedPrecondition(s));
  EXPECT_THAT(s.message(), HasSubstr("never leaves clavisd"));
}

}  // namespace
}  // namespace clavis::kms
