#include "crypto/ed25519.h"

#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "crypto/secret_bytes.h"
#include "crypto/testing/wycheproof.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

using ::clavis::crypto::testing::HexToBytes;
using ::clavis::crypto::testing::LoadWycheproof;
using ::clavis::crypto::testing::WycheproofCase;

const absl::Status kVerificationFailed =
    absl::InvalidArgumentError("signature verification failed");

// The group's public key is nested: "publicKey": {"pk": "<hex>", ...}.
std::string GroupPublicKey(const WycheproofCase& c) {
  auto key = c.group->fields().find("publicKey");
  if (key == c.group->fields().end() || !key->second.has_struct_value()) return "";
  const auto& fields = key->second.struct_value().fields();
  auto pk = fields.find("pk");
  if (pk == fields.end() || !pk->second.has_string_value()) return "";
  return HexToBytes(pk->second.string_value());
}

TEST(Ed25519Test, VerifiesAllWycheproofVectors) {
  const std::string name = "ed25519_test.json";
  auto file = LoadWycheproof(name);
  ASSERT_TRUE(file.ok()) << file.status();
  int valid_ok = 0, invalid_rejected = 0;
  for (const WycheproofCase& c : (*file)->cases) {
    SCOPED_TRACE(::testing::Message() << name << " tcId " << c.tc_id << " " << c.comment);
    const std::string public_key = GroupPublicKey(c);
    ASSERT_EQ(public_key.size(), Ed25519KeyPair::kPublicKeySize);
    const absl::Status s = Ed25519Verify(public_key, c.Hex("msg"), c.Hex("sig"));
    if (c.result == "valid") {
      EXPECT_TRUE(s.ok()) << s;
      ++valid_ok;
    } else {
      // The file has no "acceptable" cases; one would land here and fail.
      ASSERT_EQ(c.result, "invalid");
      EXPECT_EQ(s, kVerificationFailed);
      ++invalid_rejected;
    }
  }
  std::cout << name << ": " << (*file)->cases.size() << " vectors: " << valid_ok << " valid ok, "
            << invalid_rejected << " invalid rejected" << std::endl;
  EXPECT_EQ(valid_ok + invalid_rejected, static_cast<int>((*file)->cases.size()));
  auto count = (*file)->root.fields().find("numberOfTests");
  ASSERT_NE(count, (*file)->root.fields().end());
  EXPECT_EQ(static_cast<double>((*file)->cases.size()), count->second.number_value());
}

TEST(Ed25519Test, MatchesRfc8032TestVector1) {
  const SecretBytes seed = SecretBytes::CopyOf(
      HexToBytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  auto pair = Ed25519KeyPair::FromSeed(seed);
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_EQ(absl::BytesToHexString(pair->public_key),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = Ed25519Sign(seed, "");
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(absl::BytesToHexString(*sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
            "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(Ed25519Verify(pair->public_key, "", *sig).ok());
}

TEST(Ed25519Test, SignThenVerifyRoundTrips) {
  const Ed25519KeyPair pair = Ed25519KeyPair::Generate();
  EXPECT_EQ(pair.public_key.size(), Ed25519KeyPair::kPublicKeySize);
  EXPECT_EQ(pair.seed.size(), Ed25519KeyPair::kSeedSize);
  for (const std::string& message :
       {std::string(), std::string("audit checkpoint 42"), std::string(10000, 'x')}) {
    auto sig = Ed25519Sign(pair.seed, message);
    ASSERT_TRUE(sig.ok()) << sig.status();
    EXPECT_EQ(sig->size(), Ed25519KeyPair::kSignatureSize);
    EXPECT_TRUE(Ed25519Verify(pair.public_key, message, *sig).ok());
  }
}

TEST(Ed25519Test, GenerateGivesDistinctKeys) {
  const Ed25519KeyPair a = Ed25519KeyPair::Generate();
  const Ed25519KeyPair b = Ed25519KeyPair::Generate();
  EXPECT_NE(a.public_key, b.public_key);
  EXPECT_NE(a.seed, b.seed);
}

TEST(Ed25519Test, FromSeedIsDeterministicAndMatchesGenerate) {
  const Ed25519KeyPair generated = Ed25519KeyPair::Generate();
  auto again = Ed25519KeyPair::FromSeed(generated.seed);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->public_key, generated.public_key);
  EXPECT_EQ(again->seed, generated.seed);
  // Signatures are deterministic too (RFC 8032).
  auto s1 = Ed25519Sign(generated.seed, "message");
  auto s2 = Ed25519Sign(again->seed, "message");
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(*s1, *s2);
}

TEST(Ed25519Test, VerifyRejectsEveryFlippedSignatureBit) {
  const Ed25519KeyPair pair = Ed25519KeyPair::Generate();
  auto sig = Ed25519Sign(pair.seed, "message");
  ASSERT_TRUE(sig.ok());
  for (size_t bit = 0; bit < sig->size() * 8; ++bit) {
    std::string flipped = *sig;
    flipped[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    EXPECT_EQ(Ed25519Verify(pair.public_key, "message", flipped), kVerificationFailed) << bit;
  }
}

TEST(Ed25519Test, VerifyRejectsWrongMessageAndWrongKey) {
  const Ed25519KeyPair pair = Ed25519KeyPair::Generate();
  const Ed25519KeyPair other = Ed25519KeyPair::Generate();
  auto sig = Ed25519Sign(pair.seed, "message");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(Ed25519Verify(pair.public_key, "messagE", *sig), kVerificationFailed);
  EXPECT_EQ(Ed25519Verify(other.public_key, "message", *sig), kVerificationFailed);
}

TEST(Ed25519Test, VerifyRejectsWrongSizesWithTheSameError) {
  const Ed25519KeyPair pair = Ed25519KeyPair::Generate();
  auto sig = Ed25519Sign(pair.seed, "message");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(Ed25519Verify(pair.public_key, "message", sig->substr(0, 63)), kVerificationFailed);
  EXPECT_EQ(Ed25519Verify(pair.public_key, "message", *sig + "x"), kVerificationFailed);
  EXPECT_EQ(Ed25519Verify(pair.public_key, "message", ""), kVerificationFailed);
  EXPECT_EQ(Ed25519Verify(pair.public_key.substr(0, 31), "message", *sig), kVerificationFailed);
  EXPECT_EQ(Ed25519Verify("", "message", *sig), kVerificationFailed);
}

TEST(Ed25519Test, VerifyRejectsSmallOrderPublicKey) {
  // The identity point (0, 1) has order 1; libsodium refuses it even with a
  // signature crafted for it (R = identity, S = 0).
  std::string identity(32, '\0');
  identity[0] = 1;
  std::string sig = identity + std::string(32, '\0');
  EXPECT_EQ(Ed25519Verify(identity, "message", sig), kVerificationFailed);
}

TEST(Ed25519Test, RejectsSeedsOfTheWrongSize) {
  for (size_t size : {0, 16, 31, 33, 64}) {
    const SecretBytes seed(size);
    auto pair = Ed25519KeyPair::FromSeed(seed);
    EXPECT_EQ(pair.status().code(), absl::StatusCode::kInvalidArgument) << size;
    auto sig = Ed25519Sign(seed, "message");
    EXPECT_EQ(sig.status().code(), absl::StatusCode::kInvalidArgument) << size;
  }
}

TEST(Ed25519Test, ErrorMessagesNeverContainSeedBytes) {
  // A 33-byte "seed" of recognisable bytes is refused; the error names the
  // size only.
  const std::string seed_bytes = "SEEDBYTES-SECRET-0123456789abcdef";
  ASSERT_EQ(seed_bytes.size(), 33u);
  const SecretBytes seed = SecretBytes::CopyOf(seed_bytes);
  for (const absl::Status& s :
       {Ed25519KeyPair::FromSeed(seed).status(), Ed25519Sign(seed, "m").status()}) {
    ASSERT_FALSE(s.ok());
    const std::string text = s.ToString();
    EXPECT_EQ(text.find("SEEDBYTES"), std::string::npos) << text;
    EXPECT_EQ(text.find("SECRET"), std::string::npos) << text;
    EXPECT_EQ(text.find(absl::BytesToHexString(seed_bytes.substr(0, 4))), std::string::npos)
        << text;
  }
}

}  // namespace
}  // namespace clavis::crypto
