#include "kms/keys/key_import.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/key_wrap.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/doc_blocks.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kUnwrappable = "could not be unwrapped";

class KeyImportTest : public ::testing::TestWithParam<int> {
 protected:
  static void SetUpTestSuite() {
    for (int bits : {kImportWrappingKeyBits3072, kImportWrappingKeyBits4096}) {
      keys_[bits] = std::shared_ptr<crypto::RsaOaepPrivateKey>(
          std::move(*crypto::RsaOaepPrivateKey::Generate(bits)));
    }
  }
  const crypto::RsaOaepPrivateKey& key() { return *keys_[GetParam()]; }
  std::string PublicPem() { return *key().PublicKeyPem(); }

  std::string WrapOaep(const crypto::SecretBytes& material) {
    return *crypto::RsaOaepEncrypt(PublicPem(), material);
  }
  std::string WrapRsaAes(const crypto::SecretBytes& material) {
    crypto::SecretBytes aes = crypto::RandomSecret(32);
    return absl::StrCat(*crypto::RsaOaepEncrypt(PublicPem(), aes),
                        *crypto::AesKeyWrapPad(aes, material));
  }

  static inline std::map<int, std::shared_ptr<crypto::RsaOaepPrivateKey>> keys_;
};

INSTANTIATE_TEST_SUITE_P(WrappingKeySizes, KeyImportTest,
                         ::testing::Values(kImportWrappingKeyBits3072, kImportWrappingKeyBits4096));

TEST_P(KeyImportTest, BothAlgorithmsRoundTrip) {
  crypto::SecretBytes material = crypto::RandomSecret(32);
  for (auto [algorithm, wrapped] :
       {std::pair{ImportWrappingAlgorithm::kRsaesOaepSha256, WrapOaep(material)},
        std::pair{ImportWrappingAlgorithm::kRsaAesKeyWrapSha256, WrapRsaAes(material)}}) {
    absl::StatusOr<crypto::SecretBytes> out = UnwrapImportedKeyMaterial(key(), algorithm, wrapped);
    ASSERT_TRUE(out.ok()) << ImportWrappingAlgorithmName(algorithm) << ": " << out.status();
    EXPECT_TRUE(*out == material);
  }
}

// The customer's recipe of docs/BYOK.md (OpenSSL command line only), run
// verbatim from the document.
TEST_P(KeyImportTest, OpensslCommandLineRecipeWorks) {
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/clavis_import_", ::getpid(), "_", GetParam());
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/wrapping-key.pem") << PublicPem(); }
  std::string script = "set -euo pipefail\n";
  for (const char* block : {"byok-make-material", "byok-wrap-RSAES_OAEP_SHA_256"}) {
    auto text = clavis::testing::DocBlock(CLAVIS_BYOK_DOC, block);
    ASSERT_TRUE(text.ok()) << text.status();
    absl::StrAppend(&script, *text);
  }
  absl::StrAppend(&script, "mv wrapped.bin oaep.bin\n");
  auto rsa_aes = clavis::testing::DocBlock(CLAVIS_BYOK_DOC, "byok-wrap-RSA_AES_KEY_WRAP_SHA_256");
  ASSERT_TRUE(rsa_aes.ok()) << rsa_aes.status();
  absl::StrAppend(&script, *rsa_aes, "mv wrapped.bin rsa_aes.bin\n");
  { std::ofstream(dir + "/recipe.sh") << script; }
  ASSERT_EQ(std::system(absl::StrCat("cd '", dir, "' && bash recipe.sh").c_str()), 0);
  auto read = [&](const std::string& name) {
    std::ifstream in(dir + "/" + name, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const crypto::SecretBytes material = crypto::SecretBytes::CopyOf(read("material.bin"));
  ASSERT_EQ(material.size(), 32u);
  auto oaep_out =
      UnwrapImportedKeyMaterial(key(), ImportWrappingAlgorithm::kRsaesOaepSha256, read("oaep.bin"));
  ASSERT_TRUE(oaep_out.ok()) << oaep_out.status();
  EXPECT_TRUE(*oaep_out == material);
  auto rsa_aes_out = UnwrapImportedKeyMaterial(key(), ImportWrappingAlgorithm::kRsaAesKeyWrapSha256,
                                               read("rsa_aes.bin"));
  ASSERT_TRUE(rsa_aes_out.ok()) << rsa_aes_out.status();
  EXPECT_TRUE(*rsa_aes_out == material);
  std::filesystem::remove_all(dir);
}

TEST_P(KeyImportTest, SizesAreCheckedFirstAndNamed) {
  crypto::SecretBytes material = crypto::RandomSecret(32);
  const std::string oaep = WrapOaep(material);
  const std::string rsa_aes = WrapRsaAes(material);
  const std::string block = std::to_string(GetParam() / 8);
  for (const std::string& bad : {oaep.substr(1), oaep + "x", std::string()}) {
    absl::Status s =
        UnwrapImportedKeyMaterial(key(), ImportWrappingAlgorithm::kRsaesOaepSha256, bad).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("takes ", block)));
  }
  // The other algorithm's output has the other size.
  EXPECT_THAT(UnwrapImportedKeyMaterial(key(), ImportWrappingAlgorithm::kRsaAesKeyWrapSha256, oaep)
                  .status()
                  .message(),
              HasSubstr("RSA_AES_KEY_WRAP_SHA_256"));
  EXPECT_THAT(UnwrapImportedKeyMaterial(key(), ImportWrappingAlgorithm::kRsaesOaepSha256, rsa_aes)
                  .status()
                  .message(),
              HasSubstr("RSAES_OAEP_SHA_256"));
}

// Every corruption of a correctly sized input fails with one message: no
// padding oracle.
TEST_P(KeyImportTest, CorruptionAndWrongKeysGiveOneMessage) {
  crypto::SecretBytes material = crypto::RandomSecret(32);
  for (ImportWrappingAlgorithm algorithm :
       {ImportWrappingAlgorithm::kRsaesOaepSha256, ImportWrappingAlgorithm::kRsaAesKeyWrapSha256}) {
    const std::string wrapped = algorithm == ImportWrappingAlgorithm::kRsaesOaepSha256
                                    ? WrapOaep(material)
                                    : WrapRsaAes(material);
    for (size_t at : {size_t{0}, size_t{1}, wrapped.size() / 2, wrapped.size() - 41,
                      wrapped.size() - 20, wrapped.size() - 1}) {
      std::string flipped = wrapped;
      flipped[at] ^= 0x01;
      absl::Status s = UnwrapImportedKeyMaterial(key(), algorithm, flipped).status();
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(s.message(), HasSubstr(kUnwrappable))
          << ImportWrappingAlgorithmName(algorithm) << " byte " << at << ": " << s;
    }
    // Wrapped for another import's key of the same size.
    auto other = *crypto::RsaOaepPrivateKey::Generate(GetParam());
    EXPECT_THAT(UnwrapImportedKeyMaterial(*other, algorithm, wrapped).status().message(),
                HasSubstr(kUnwrappable));
  }
}

TEST_P(KeyImportTest, MaterialMustBe256Bits) {
  crypto::SecretBytes short_material = crypto::RandomSecret(16);
  EXPECT_THAT(UnwrapImportedKeyMaterial(key(), ImportWrappingAlgorithm::kRsaesOaepSha256,
                                        WrapOaep(short_material))
                  .status()
                  .message(),
              HasSubstr("must be 32 bytes (AES-256), not 16"));
  // 28 bytes wrap (RFC 5649) to the same 40 bytes as 32 do.
  crypto::SecretBytes odd_material = crypto::RandomSecret(28);
  EXPECT_THAT(UnwrapImportedKeyMaterial(key(), ImportWrappingAlgorithm::kRsaAesKeyWrapSha256,
                                        WrapRsaAes(odd_material))
                  .status()
                  .message(),
              HasSubstr("must be 32 bytes (AES-256), not 28"));
}

TEST(KeyImportNamesTest, AlgorithmNamesRoundTripAndUnknownOnesAreNamed) {
  for (ImportWrappingAlgorithm a :
       {ImportWrappingAlgorithm::kRsaesOaepSha256, ImportWrappingAlgorithm::kRsaAesKeyWrapSha256}) {
    EXPECT_EQ(*ParseImportWrappingAlgorithm(ImportWrappingAlgorithmName(a)), a);
  }
  absl::Status s = ParseImportWrappingAlgorithm("RSAES_PKCS1_V1_5").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256"));
}

}  // namespace
}  // namespace clavis::kms
