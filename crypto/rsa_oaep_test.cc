#include "crypto/rsa_oaep.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/types/span.h"
#include "crypto/internal/ssl_unique_ptr.h"
#include "crypto/secret_bytes.h"
#include "crypto/testing/wycheproof.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

using ::clavis::crypto::internal::BioPtr;
using ::clavis::crypto::internal::EvpPkeyCtxPtr;
using ::clavis::crypto::internal::EvpPkeyPtr;
using ::clavis::crypto::testing::LoadWycheproof;
using ::clavis::crypto::testing::WycheproofCase;

// The one error every Decrypt failure must give, byte for byte.
const absl::Status& DecryptError() {
  static const absl::Status* const kError =
      new absl::Status(absl::InvalidArgumentError("RSA-OAEP decryption failed"));
  return *kError;
}

SecretBytes Secret(absl::string_view s) { return SecretBytes::CopyOf(s); }

// ------------------------------------------------------------ OpenSSL helpers

EvpPkeyPtr OpenSslKeygen(const char* type, size_t bits = 0) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  const bool ok =
      ctx != nullptr && EVP_PKEY_keygen_init(ctx.get()) == 1 &&
      (bits == 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), static_cast<int>(bits)) == 1) &&
      EVP_PKEY_generate(ctx.get(), &key) == 1;
  EXPECT_TRUE(ok) << "OpenSSL could not generate a " << type << " key";
  ERR_clear_error();
  return EvpPkeyPtr(key);
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

// PKCS#8 PEM ("BEGIN PRIVATE KEY"), unencrypted unless a passphrase is given.
std::string PrivateKeyPem(EVP_PKEY* key, const char* passphrase = nullptr) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  const int ok =
      passphrase == nullptr
          ? PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
          : PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), passphrase,
                                          static_cast<int>(strlen(passphrase)), nullptr, nullptr);
  EXPECT_EQ(ok, 1);
  return BioContents(bio.get());
}

// PKCS#8 PrivateKeyInfo DER (EncryptedPrivateKeyInfo if a passphrase is given).
std::string PrivateKeyPkcs8Der(EVP_PKEY* key, const char* passphrase = nullptr) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  const int ok =
      passphrase == nullptr
          ? i2d_PKCS8PrivateKey_bio(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
          : i2d_PKCS8PrivateKey_bio(bio.get(), key, EVP_aes_256_cbc(),
                                    const_cast<char*>(passphrase),
                                    static_cast<int>(strlen(passphrase)), nullptr, nullptr);
  EXPECT_EQ(ok, 1);
  return BioContents(bio.get());
}

std::string PublicKeyDerOf(EVP_PKEY* key) {
  unsigned char* buf = nullptr;
  const int len = i2d_PUBKEY(key, &buf);
  EXPECT_GT(len, 0);
  std::string out(reinterpret_cast<char*>(buf), len > 0 ? static_cast<size_t>(len) : 0);
  OPENSSL_free(buf);
  return out;
}

EvpPkeyPtr ParsePublicDer(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  return EvpPkeyPtr(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
}

EvpPkeyPtr ParsePublicPem(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return EvpPkeyPtr(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
}

// The modulus n as a big-endian k-byte string.
std::string ModulusOf(EVP_PKEY* key) {
  BIGNUM* n = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
  std::string out(static_cast<size_t>(EVP_PKEY_get_size(key)), '\0');
  EXPECT_EQ(
      BN_bn2binpad(n, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size())),
      static_cast<int>(out.size()));
  BN_free(n);
  return out;
}

// OAEP-SHA256 encryption or decryption straight through OpenSSL, to check
// interoperability of our parameter choices.
std::string OpenSslOaep(EVP_PKEY* key, bool encrypt, absl::string_view in,
                        absl::string_view label) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  EXPECT_EQ(encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), "SHA256", nullptr), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), "SHA256", nullptr), 1);
  if (!label.empty()) {
    EXPECT_EQ(
        EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), OPENSSL_memdup(label.data(), label.size()),
                                         static_cast<int>(label.size())),
        1);
  }
  std::string out(static_cast<size_t>(EVP_PKEY_get_size(key)), '\0');
  size_t out_len = out.size();
  const auto* in_bytes = reinterpret_cast<const unsigned char*>(in.data());
  auto* out_bytes = reinterpret_cast<unsigned char*>(out.data());
  const int ok = encrypt ? EVP_PKEY_encrypt(ctx.get(), out_bytes, &out_len, in_bytes, in.size())
                         : EVP_PKEY_decrypt(ctx.get(), out_bytes, &out_len, in_bytes, in.size());
  EXPECT_EQ(ok, 1);
  out.resize(ok == 1 ? out_len : 0);
  return out;
}

// Error text that could carry key material: long hex runs or raw bytes.
bool LooksLikeItLeaksBytes(const std::string& text) {
  int hex_run = 0;
  for (unsigned char ch : text) {
    if (!std::isprint(ch)) return true;
    hex_run = std::isxdigit(ch) ? hex_run + 1 : 0;
    if (hex_run >= 16) return true;
  }
  return false;
}

// ------------------------------------------------------------ fixture

// Keys are generated once per test binary and shared by the suite: 4096-bit
// generation takes seconds. Generation is lazy because ctest runs every test
// in its own process, and most tests need only the 2048-bit key.
class RsaOaepTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
    EVP_PKEY_free(openssl_key_);
    openssl_key_ = nullptr;
  }

  // Aborts if key generation fails: nothing in the suite could run.
  static const RsaOaepPrivateKey& Key(int bits) {
    if (keys_ == nullptr) keys_ = new std::map<int, std::unique_ptr<RsaOaepPrivateKey>>();
    std::unique_ptr<RsaOaepPrivateKey>& slot = (*keys_)[bits];
    if (slot == nullptr) {
      auto key = RsaOaepPrivateKey::Generate(bits);
      if (!key.ok()) {
        std::cerr << "RSA-" << bits << " generation failed: " << key.status() << std::endl;
        std::abort();
      }
      slot = *std::move(key);
    }
    return *slot;
  }

  // A 2048-bit key made by OpenSSL directly, exported the way a customer
  // would.
  static EVP_PKEY* OpenSslKey() {
    if (openssl_key_ == nullptr) openssl_key_ = OpenSslKeygen("RSA", 2048).release();
    if (openssl_key_ == nullptr) std::abort();
    return openssl_key_;
  }

  static std::string PublicDer(int bits) {
    auto der = Key(bits).PublicKeyDer();
    EXPECT_TRUE(der.ok()) << der.status();
    return der.ok() ? *der : std::string();
  }

  static std::map<int, std::unique_ptr<RsaOaepPrivateKey>>* keys_;
  static EVP_PKEY* openssl_key_;
};

std::map<int, std::unique_ptr<RsaOaepPrivateKey>>* RsaOaepTest::keys_ = nullptr;
EVP_PKEY* RsaOaepTest::openssl_key_ = nullptr;

// ------------------------------------------------------------ Wycheproof

// Runs one RSA-OAEP-SHA256 vector file. Valid cases must decrypt to exactly
// `msg`; invalid cases must all fail with the one DecryptError(), leaving no
// OpenSSL error behind. A key our API refuses by design (not RSA-OAEP with
// SHA-256/MGF1-SHA-256, or under 2048 bits) has its cases counted as refused
// and reported; nothing is skipped silently.
void RunRsaOaepVectors(const std::string& name) {
  auto file = LoadWycheproof(name);
  ASSERT_TRUE(file.ok()) << file.status();
  int valid_ok = 0, invalid_rejected = 0, acceptable = 0, refused = 0;
  std::optional<std::string> first_invalid_error;
  std::map<const google::protobuf::Struct*, absl::StatusOr<std::unique_ptr<RsaOaepPrivateKey>>>
      keys;
  for (const WycheproofCase& c : (*file)->cases) {
    SCOPED_TRACE(::testing::Message() << name << " tcId " << c.tc_id << " " << c.comment);
    const bool our_parameters =
        c.Str("sha") == "SHA-256" && c.Str("mgf") == "MGF1" && c.Str("mgfSha") == "SHA-256";
    auto it = keys.find(c.group);
    if (it == keys.end()) {
      it = keys.emplace(c.group, RsaOaepPrivateKey::FromPkcs8Der(Secret(c.Hex("privateKeyPkcs8"))))
               .first;
    }
    if (!our_parameters || !it->second.ok()) {
      // Refused by design: the only acceptable reasons are other hashes or a
      // key under 2048 bits, and the refusal must be a clean InvalidArgument.
      if (our_parameters) {
        EXPECT_LT(c.Num("keySize"), 2048) << it->second.status();
        EXPECT_EQ(it->second.status().code(), absl::StatusCode::kInvalidArgument);
      }
      ++refused;
      continue;
    }
    const RsaOaepPrivateKey& key = **it->second;
    ASSERT_EQ(key.modulus_bits(), static_cast<int>(c.Num("keySize")));

    const std::string label = c.Hex("label");
    auto plaintext = key.Decrypt(c.Hex("ct"), label);
    EXPECT_EQ(ERR_peek_error(), 0u) << "Decrypt left an OpenSSL error queued";
    if (c.result == "valid") {
      ASSERT_TRUE(plaintext.ok()) << plaintext.status();
      EXPECT_EQ(absl::BytesToHexString(plaintext->view()), c.Str("msg"));
      // The same ciphertext under another label fails with the one error.
      EXPECT_EQ(key.Decrypt(c.Hex("ct"), label + "x").status(), DecryptError());
      ++valid_ok;
    } else if (c.result == "invalid") {
      ASSERT_FALSE(plaintext.ok()) << "accepted an invalid ciphertext";
      EXPECT_EQ(plaintext.status(), DecryptError());
      // Byte-identical (code, message, payloads) to every other invalid case.
      const std::string text =
          plaintext.status().ToString(absl::StatusToStringMode::kWithEverything);
      if (!first_invalid_error) first_invalid_error = text;
      EXPECT_EQ(text, *first_invalid_error);
      ++invalid_rejected;
    } else {
      ASSERT_EQ(c.result, "acceptable");
      if (!plaintext.ok()) {
        EXPECT_EQ(plaintext.status(), DecryptError());
      }
      ++acceptable;
    }
  }
  const int total = static_cast<int>((*file)->cases.size());
  std::cout << name << ": " << total << " vectors: " << valid_ok << " valid ok, "
            << invalid_rejected << " invalid rejected with one identical error, " << acceptable
            << " acceptable, " << refused << " refused by design" << std::endl;
  EXPECT_EQ(valid_ok + invalid_rejected + acceptable + refused, total);
  auto count = (*file)->root.fields().find("numberOfTests");
  ASSERT_NE(count, (*file)->root.fields().end());
  EXPECT_EQ(static_cast<double>(total), count->second.number_value());
  EXPECT_GT(valid_ok, 0);
  EXPECT_GT(invalid_rejected, 0);
}

TEST(RsaOaepWycheproofTest, Decrypts2048BitVectors) {
  RunRsaOaepVectors("rsa_oaep_2048_sha256_mgf1sha256_test.json");
}
TEST(RsaOaepWycheproofTest, Decrypts3072BitVectors) {
  RunRsaOaepVectors("rsa_oaep_3072_sha256_mgf1sha256_test.json");
}
TEST(RsaOaepWycheproofTest, Decrypts4096BitVectors) {
  RunRsaOaepVectors("rsa_oaep_4096_sha256_mgf1sha256_test.json");
}

// The group's PEM and PKCS#8 forms of the same key both load.
TEST(RsaOaepWycheproofTest, FromPemAndFromPkcs8DerLoadTheSameWycheproofKey) {
  auto file = LoadWycheproof("rsa_oaep_2048_sha256_mgf1sha256_test.json");
  ASSERT_TRUE(file.ok()) << file.status();
  const WycheproofCase& c = (*file)->cases.at(0);
  ASSERT_EQ(c.result, "valid");
  auto from_pem = RsaOaepPrivateKey::FromPem(Secret(c.Str("privateKeyPem")));
  auto from_der = RsaOaepPrivateKey::FromPkcs8Der(Secret(c.Hex("privateKeyPkcs8")));
  ASSERT_TRUE(from_pem.ok()) << from_pem.status();
  ASSERT_TRUE(from_der.ok()) << from_der.status();
  EXPECT_EQ(*(*from_pem)->PublicKeyDer(), *(*from_der)->PublicKeyDer());
  auto plaintext = (*from_pem)->Decrypt(c.Hex("ct"), c.Hex("label"));
  ASSERT_TRUE(plaintext.ok()) << plaintext.status();
  EXPECT_EQ(absl::BytesToHexString(plaintext->view()), c.Str("msg"));
}

// ------------------------------------------------------------ generation

TEST_F(RsaOaepTest, GenerateGivesKeysOfTheRequestedSize) {
  for (int bits : {2048, 3072, 4096}) EXPECT_EQ(Key(bits).modulus_bits(), bits);
}

TEST_F(RsaOaepTest, GenerateRejectsUnsupportedModulusSizes) {
  for (int bits : {-2048, 0, 512, 1024, 2047, 2049, 2560, 8192, 16384}) {
    auto key = RsaOaepPrivateKey::Generate(bits);
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << bits;
  }
}

TEST_F(RsaOaepTest, PublicKeyDerAndPemParseBackToTheSameRsaKey) {
  for (int bits : {2048, 3072, 4096}) {
    auto der = Key(bits).PublicKeyDer();
    auto pem = Key(bits).PublicKeyPem();
    ASSERT_TRUE(der.ok()) << der.status();
    ASSERT_TRUE(pem.ok()) << pem.status();
    EXPECT_TRUE(absl::StartsWith(*pem, "-----BEGIN PUBLIC KEY-----\n")) << *pem;
    EXPECT_TRUE(absl::EndsWith(*pem, "-----END PUBLIC KEY-----\n")) << *pem;
    EvpPkeyPtr from_der = ParsePublicDer(*der);
    EvpPkeyPtr from_pem = ParsePublicPem(*pem);
    ASSERT_NE(from_der, nullptr);
    ASSERT_NE(from_pem, nullptr);
    EXPECT_EQ(EVP_PKEY_is_a(from_pem.get(), "RSA"), 1);
    EXPECT_EQ(EVP_PKEY_get_bits(from_pem.get()), bits);
    EXPECT_EQ(EVP_PKEY_eq(from_der.get(), from_pem.get()), 1);
    EXPECT_EQ(PublicKeyDerOf(from_pem.get()), *der);
  }
}

TEST_F(RsaOaepTest, GeneratedKeysAreDistinct) {
  EXPECT_NE(PublicDer(2048), std::string());
  auto another = RsaOaepPrivateKey::Generate(2048);
  ASSERT_TRUE(another.ok()) << another.status();
  EXPECT_NE(*(*another)->PublicKeyDer(), PublicDer(2048));
}

// ------------------------------------------------------------ round trips

TEST_F(RsaOaepTest, EncryptThenDecryptRoundTripsWithDerAndPemPublicKeys) {
  for (int bits : {2048, 3072, 4096}) {
    const size_t max_plaintext = static_cast<size_t>(bits / 8) - 2 * 32 - 2;
    auto pem = Key(bits).PublicKeyPem();
    ASSERT_TRUE(pem.ok());
    for (const std::string& public_key : {PublicDer(bits), *pem}) {
      for (const std::string& label : {std::string(), std::string("clavis import v1")}) {
        for (const std::string& message :
             {std::string(), std::string(32, 'k'), std::string(max_plaintext, 'm')}) {
          SCOPED_TRACE(::testing::Message() << bits << " bits, label '" << label << "', "
                                            << message.size() << "-byte message");
          auto ct = RsaOaepEncrypt(public_key, Secret(message), label);
          ASSERT_TRUE(ct.ok()) << ct.status();
          EXPECT_EQ(ct->size(), static_cast<size_t>(bits / 8));
          auto pt = Key(bits).Decrypt(*ct, label);
          ASSERT_TRUE(pt.ok()) << pt.status();
          EXPECT_EQ(pt->view(), message);
        }
      }
    }
  }
}

TEST_F(RsaOaepTest, EncryptIsRandomized) {
  auto a = RsaOaepEncrypt(PublicDer(2048), Secret("same key material"));
  auto b = RsaOaepEncrypt(PublicDer(2048), Secret("same key material"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST_F(RsaOaepTest, EncryptRejectsPlaintextLongerThanTheOaepLimit) {
  auto ct = RsaOaepEncrypt(PublicDer(2048), Secret(std::string(2048 / 8 - 65, 'm')));
  EXPECT_EQ(ct.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RsaOaepTest, EncryptRejectsMalformedPublicKeys) {
  const std::string der = PublicDer(2048);
  for (const std::string& bad :
       {std::string(), std::string("garbage"), der.substr(0, der.size() - 1), der + "x",
        std::string("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}) {
    auto ct = RsaOaepEncrypt(bad, Secret("m"));
    EXPECT_EQ(ct.status().code(), absl::StatusCode::kInvalidArgument) << bad.size();
  }
}

// Our parameters match what `openssl pkeyutl -pkeyopt rsa_padding_mode:oaep
// -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256` does.
TEST_F(RsaOaepTest, InteroperatesWithPlainOpenSslOaepSha256) {
  auto imported = RsaOaepPrivateKey::FromPkcs8Der(Secret(PrivateKeyPkcs8Der(OpenSslKey())));
  ASSERT_TRUE(imported.ok()) << imported.status();
  const std::string from_openssl = OpenSslOaep(OpenSslKey(), /*encrypt=*/true, "wrapped", "lbl");
  auto pt = (*imported)->Decrypt(from_openssl, "lbl");
  ASSERT_TRUE(pt.ok()) << pt.status();
  EXPECT_EQ(pt->view(), "wrapped");

  auto ours = RsaOaepEncrypt(PublicKeyDerOf(OpenSslKey()), Secret("wrapped"), "lbl");
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_EQ(OpenSslOaep(OpenSslKey(), /*encrypt=*/false, *ours, "lbl"), "wrapped");
}

// ------------------------------------------------------------ decrypt failures

TEST_F(RsaOaepTest, DecryptRejectsWrongLabel) {
  auto ct = RsaOaepEncrypt(PublicDer(2048), Secret("key material"), "label a");
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(Key(2048).Decrypt(*ct, "label b").status(), DecryptError());
  EXPECT_EQ(Key(2048).Decrypt(*ct).status(), DecryptError());
  auto unlabeled = RsaOaepEncrypt(PublicDer(2048), Secret("key material"));
  ASSERT_TRUE(unlabeled.ok());
  EXPECT_EQ(Key(2048).Decrypt(*unlabeled, "label a").status(), DecryptError());
}

TEST_F(RsaOaepTest, DecryptRejectsFlippedCiphertextBits) {
  auto ct = RsaOaepEncrypt(PublicDer(2048), Secret("key material"));
  ASSERT_TRUE(ct.ok());
  // Bits in the first, a middle and the last byte, and a spread between.
  for (size_t byte : {size_t{0}, size_t{1}, size_t{17}, size_t{128}, size_t{200}, ct->size() - 1}) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = *ct;
      flipped[byte] ^= static_cast<char>(1 << bit);
      auto pt = Key(2048).Decrypt(flipped);
      EXPECT_EQ(pt.status(), DecryptError()) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST_F(RsaOaepTest, DecryptRejectsTruncatedCiphertext) {
  auto ct = RsaOaepEncrypt(PublicDer(2048), Secret("key material"));
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(Key(2048).Decrypt(ct->substr(0, ct->size() - 1)).status(), DecryptError());
  EXPECT_EQ(Key(2048).Decrypt(ct->substr(1)).status(), DecryptError());
  EXPECT_EQ(Key(2048).Decrypt(ct->substr(0, 1)).status(), DecryptError());
  EXPECT_EQ(Key(2048).Decrypt("").status(), DecryptError());
}

TEST_F(RsaOaepTest, DecryptRejectsOversizedCiphertext) {
  auto ct = RsaOaepEncrypt(PublicDer(2048), Secret("key material"));
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(Key(2048).Decrypt(*ct + std::string(1, '\0')).status(), DecryptError());
  // A leading zero byte keeps the integer but not the length: still refused.
  EXPECT_EQ(Key(2048).Decrypt(std::string(1, '\0') + *ct).status(), DecryptError());
  EXPECT_EQ(Key(2048).Decrypt(*ct + *ct).status(), DecryptError());
}

TEST_F(RsaOaepTest, DecryptRejectsCiphertextNotBelowTheModulus) {
  EvpPkeyPtr public_key = ParsePublicDer(PublicDer(2048));
  ASSERT_NE(public_key, nullptr);
  const std::string n = ModulusOf(public_key.get());
  EXPECT_EQ(Key(2048).Decrypt(n).status(), DecryptError());
  EXPECT_EQ(Key(2048).Decrypt(std::string(n.size(), '\xff')).status(), DecryptError());
  EXPECT_EQ(Key(2048).Decrypt(std::string(n.size(), '\0')).status(), DecryptError());
}

TEST_F(RsaOaepTest, EveryDecryptFailureGivesTheSameErrorAndLeavesNoOpenSslError) {
  auto ct = RsaOaepEncrypt(PublicDer(2048), Secret("key material"), "label");
  ASSERT_TRUE(ct.ok());
  std::string flipped = *ct;
  flipped[100] ^= 0x40;
  EvpPkeyPtr public_key = ParsePublicDer(PublicDer(2048));
  const std::vector<std::pair<std::string, std::string>> failures = {
      {*ct, "wrong label"},
      {flipped, "label"},
      {ct->substr(1), "label"},
      {*ct + "x", "label"},
      {ModulusOf(public_key.get()), "label"},
      {"", "label"},
  };
  const std::string expected = DecryptError().ToString(absl::StatusToStringMode::kWithEverything);
  for (const auto& [ciphertext, label] : failures) {
    ERR_clear_error();
    auto pt = Key(2048).Decrypt(ciphertext, label);
    ASSERT_FALSE(pt.ok());
    EXPECT_EQ(pt.status().ToString(absl::StatusToStringMode::kWithEverything), expected);
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

// ------------------------------------------------------------ key import

TEST_F(RsaOaepTest, ImportsOpenSslGeneratedKeyAsPkcs8DerAndPem) {
  auto from_der = RsaOaepPrivateKey::FromPkcs8Der(Secret(PrivateKeyPkcs8Der(OpenSslKey())));
  auto from_pem = RsaOaepPrivateKey::FromPem(Secret(PrivateKeyPem(OpenSslKey())));
  ASSERT_TRUE(from_der.ok()) << from_der.status();
  ASSERT_TRUE(from_pem.ok()) << from_pem.status();
  EXPECT_EQ((*from_der)->modulus_bits(), 2048);
  EXPECT_EQ(*(*from_der)->PublicKeyDer(), PublicKeyDerOf(OpenSslKey()));
  EXPECT_EQ(*(*from_pem)->PublicKeyDer(), PublicKeyDerOf(OpenSslKey()));
}

TEST_F(RsaOaepTest, FromPkcs8DerRejectsGarbageTruncationAndTrailingData) {
  const std::string der = PrivateKeyPkcs8Der(OpenSslKey());
  for (const std::string& bad :
       {std::string(), std::string("garbage"), der.substr(0, der.size() / 2),
        der.substr(0, der.size() - 1), der + std::string(1, '\0'), PrivateKeyPem(OpenSslKey())}) {
    auto key = RsaOaepPrivateKey::FromPkcs8Der(Secret(bad));
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << bad.size();
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

TEST_F(RsaOaepTest, FromPkcs8DerRejectsTraditionalPkcs1Der) {
  unsigned char* buf = nullptr;
  const int len = i2d_PrivateKey(OpenSslKey(), &buf);  // RSAPrivateKey, not PKCS#8
  ASSERT_GT(len, 0);
  const SecretBytes pkcs1 = SecretBytes::CopyOf(absl::MakeConstSpan(buf, static_cast<size_t>(len)));
  OPENSSL_clear_free(buf, static_cast<size_t>(len));
  EXPECT_EQ(RsaOaepPrivateKey::FromPkcs8Der(pkcs1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RsaOaepTest, FromPemRejectsGarbage) {
  const std::string pem = PrivateKeyPem(OpenSslKey());
  for (const std::string& bad :
       {std::string(), std::string("garbage"),
        std::string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        pem.substr(0, pem.size() / 2), PrivateKeyPkcs8Der(OpenSslKey()),
        *Key(2048).PublicKeyPem()}) {
    auto key = RsaOaepPrivateKey::FromPem(Secret(bad));
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(ERR_peek_error(), 0u);
  }
}

// An encrypted key must fail cleanly, not prompt for a passphrase on a tty.
TEST_F(RsaOaepTest, RefusesEncryptedPrivateKeysWithoutPrompting) {
  auto pem = RsaOaepPrivateKey::FromPem(Secret(PrivateKeyPem(OpenSslKey(), "passphrase")));
  EXPECT_EQ(pem.status().code(), absl::StatusCode::kInvalidArgument);
  auto der =
      RsaOaepPrivateKey::FromPkcs8Der(Secret(PrivateKeyPkcs8Der(OpenSslKey(), "passphrase")));
  EXPECT_EQ(der.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RsaOaepTest, RejectsNonRsaKeys) {
  EvpPkeyPtr ed25519 = OpenSslKeygen("ED25519");
  ASSERT_NE(ed25519, nullptr);
  EvpPkeyPtr p256(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_NE(p256, nullptr);
  for (EVP_PKEY* key : {ed25519.get(), p256.get()}) {
    SCOPED_TRACE(EVP_PKEY_get0_type_name(key));
    auto from_pem = RsaOaepPrivateKey::FromPem(Secret(PrivateKeyPem(key)));
    EXPECT_EQ(from_pem.status(), absl::InvalidArgumentError("key is not an RSA key"));
    auto from_der = RsaOaepPrivateKey::FromPkcs8Der(Secret(PrivateKeyPkcs8Der(key)));
    EXPECT_EQ(from_der.status(), absl::InvalidArgumentError("key is not an RSA key"));
    auto ct = RsaOaepEncrypt(PublicKeyDerOf(key), Secret("m"));
    EXPECT_EQ(ct.status(), absl::InvalidArgumentError("key is not an RSA key"));
  }
}

// RSA-PSS keys (id-RSASSA-PSS) are signature-only and cannot do OAEP.
TEST_F(RsaOaepTest, RejectsRsaPssKeys) {
  EvpPkeyPtr pss = OpenSslKeygen("RSA-PSS", 2048);
  ASSERT_NE(pss, nullptr);
  auto from_der = RsaOaepPrivateKey::FromPkcs8Der(Secret(PrivateKeyPkcs8Der(pss.get())));
  EXPECT_EQ(from_der.status().code(), absl::StatusCode::kInvalidArgument);
  auto from_pem = RsaOaepPrivateKey::FromPem(Secret(PrivateKeyPem(pss.get())));
  EXPECT_EQ(from_pem.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RsaOaepTest, RejectsRsaKeysBelow2048Bits) {
  EvpPkeyPtr small = OpenSslKeygen("RSA", 1024);
  ASSERT_NE(small, nullptr);
  auto from_der = RsaOaepPrivateKey::FromPkcs8Der(Secret(PrivateKeyPkcs8Der(small.get())));
  EXPECT_EQ(from_der.status().code(), absl::StatusCode::kInvalidArgument);
  auto from_pem = RsaOaepPrivateKey::FromPem(Secret(PrivateKeyPem(small.get())));
  EXPECT_EQ(from_pem.status().code(), absl::StatusCode::kInvalidArgument);
  auto ct = RsaOaepEncrypt(PublicKeyDerOf(small.get()), Secret("m"));
  EXPECT_EQ(ct.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RsaOaepTest, ErrorMessagesNeverContainKeyBytes) {
  const std::string der = PrivateKeyPkcs8Der(OpenSslKey());
  const std::string pem = PrivateKeyPem(OpenSslKey());
  // A PKCS#8 whose outer SEQUENCE length is corrupted.
  std::string corrupted_der = der;
  corrupted_der[3] ^= 0x01;
  const std::string pem_body = pem.substr(40, 24);
  EvpPkeyPtr small = OpenSslKeygen("RSA", 1024);
  EvpPkeyPtr ed25519 = OpenSslKeygen("ED25519");
  auto ct = RsaOaepEncrypt(PublicDer(2048), Secret("SECRET-KEY-MATERIAL"));
  ASSERT_TRUE(ct.ok());

  const std::vector<absl::Status> errors = {
      RsaOaepPrivateKey::FromPkcs8Der(Secret(der.substr(0, der.size() - 7))).status(),
      RsaOaepPrivateKey::FromPkcs8Der(Secret(der + "trailing")).status(),
      RsaOaepPrivateKey::FromPkcs8Der(Secret(PrivateKeyPkcs8Der(small.get()))).status(),
      RsaOaepPrivateKey::FromPkcs8Der(Secret(PrivateKeyPkcs8Der(ed25519.get()))).status(),
      RsaOaepPrivateKey::FromPkcs8Der(Secret(corrupted_der)).status(),
      RsaOaepPrivateKey::FromPem(
          Secret("-----BEGIN PRIVATE KEY-----\n" + pem_body + "\n-----END PRIVATE KEY-----\n"))
          .status(),
      RsaOaepPrivateKey::FromPem(Secret(pem.substr(0, pem.size() - 60))).status(),
      RsaOaepPrivateKey::FromPem(Secret(PrivateKeyPem(small.get()))).status(),
      Key(2048).Decrypt(ct->substr(1)).status(),
      Key(2048).Decrypt(*ct, "wrong label").status(),
  };
  for (size_t i = 0; i < errors.size(); ++i) {
    const absl::Status& s = errors[i];
    ASSERT_FALSE(s.ok()) << "case " << i;
    const std::string text = s.ToString(absl::StatusToStringMode::kWithEverything);
    EXPECT_FALSE(LooksLikeItLeaksBytes(text)) << text;
    EXPECT_FALSE(absl::StrContains(text, pem_body)) << text;
    EXPECT_FALSE(absl::StrContains(text, "SECRET-KEY-MATERIAL")) << text;
    EXPECT_FALSE(absl::StrContains(text, der.substr(der.size() - 8))) << text;
  }
}

}  // namespace
}  // namespace clavis::crypto
