// The shortest end-to-end path: a real clavisd, a key, a data key, a
// restart, and the data key still decrypts.
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"

namespace clavis::testing {
namespace {

TEST(SmokeTest, DataKeySurvivesARestart) {
  TempDir dir;
  ClavisdProcess clavisd(ClavisdOptions(dir.path() + "/data"));
  ASSERT_TRUE(clavisd.Start().ok());

  clavis::v1::CreateKeyRequest create;
  create.set_parent("tenants/acme");
  create.set_key_id("crm");
  create.set_policy(TestKeyPolicy("tenants/acme/keys/crm"));
  clavis::v1::Key key;
  ASSERT_TRUE(clavisd.Admin()->CreateKey(ContextWithDeadline().get(), create, &key).ok());
  EXPECT_EQ(key.name(), "tenants/acme/keys/crm");

  clavis::v1::GenerateDataKeyRequest gen;
  gen.set_key(key.name());
  gen.set_segment("acme/orders/2026-11");
  (*gen.mutable_encryption_context())["customer"] = "42";
  clavis::v1::GenerateDataKeyResponse dk;
  auto status = clavisd.Data()->GenerateDataKey(ContextWithDeadline().get(), gen, &dk);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(dk.plaintext().size(), 32u);

  ASSERT_TRUE(clavisd.Stop().ok());
  ASSERT_TRUE(clavisd.Start().ok());

  clavis::v1::DecryptRequest dec;
  dec.set_ciphertext_blob(dk.ciphertext_blob());
  (*dec.mutable_encryption_context())["customer"] = "42";
  clavis::v1::DecryptResponse plain;
  status = clavisd.Data()->Decrypt(ContextWithDeadline().get(), dec, &plain);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(plain.plaintext(), dk.plaintext());
  EXPECT_EQ(plain.segment(), "acme/orders/2026-11");
}

}  // namespace
}  // namespace clavis::testing
