// BYOK import payloads (docs/BYOK.md, kms/keys/key_import.h): the wrapped
// key material a customer sends to ImportKeyMaterial, and the wrapping
// algorithm's name.
//
// Input: one byte choosing the algorithm (low bit), then the wrapped bytes.
//  - The wrapping algorithm name parser takes the bytes as a name.
//  - CheckWrappedSize and UnwrapImportedKeyMaterial with the fixture RSA key
//    must not crash; an unwrap that succeeds yields exactly 32 bytes, and
//    every failure of the decryption itself is the one same message (no
//    padding oracle).
//  - The bytes as an XOR mask over a wrap made at start-up: only the
//    unchanged wrap may open.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "crypto/rsa_oaep.h"
#include "kms/keys/key_import.h"
#include "tests/fuzz/fuzz_import_key.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {
namespace {

using kms::ImportWrappingAlgorithm;

struct Fixture {
  std::unique_ptr<crypto::RsaOaepPrivateKey> key;
  std::string material = std::string(32, 'M');
  std::string oaep_wrap;
  std::string decrypt_failure;  // the message of a wrap that does not open
};

const Fixture& TheFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture();
    auto key =
        crypto::RsaOaepPrivateKey::FromPem(crypto::SecretBytes::CopyOf(kFixtureImportKeyPem));
    FUZZ_CHECK(key.ok());
    f->key = *std::move(key);
    auto der = f->key->PublicKeyDer();
    FUZZ_CHECK(der.ok());
    auto wrap = crypto::RsaOaepEncrypt(*der, crypto::SecretBytes::CopyOf(f->material));
    FUZZ_CHECK(wrap.ok());
    f->oaep_wrap = *std::move(wrap);
    auto failed = kms::UnwrapImportedKeyMaterial(*f->key, ImportWrappingAlgorithm::kRsaesOaepSha256,
                                                 std::string(f->oaep_wrap.size(), '\0'));
    FUZZ_CHECK(!failed.ok());
    f->decrypt_failure = std::string(failed.status().message());
    return f;
  }();
  return *fixture;
}

absl::StatusOr<crypto::SecretBytes> Unwrap(ImportWrappingAlgorithm algorithm,
                                           absl::string_view wrapped) {
  const Fixture& f = TheFixture();
  const bool size_ok = kms::CheckWrappedSize(*f.key, algorithm, wrapped).ok();
  auto material = kms::UnwrapImportedKeyMaterial(*f.key, algorithm, wrapped);
  if (material.ok()) {
    FUZZ_CHECK(size_ok);
    FUZZ_CHECK(material->size() == kms::kImportedKeyMaterialSize);
  } else {
    FUZZ_CHECK(material.status().code() == absl::StatusCode::kInvalidArgument);
  }
  return material;
}

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clavis::fuzz;
  if (size == 0) return 0;
  const absl::string_view wrapped = AsView(data + 1, size - 1);
  (void)clavis::kms::ParseImportWrappingAlgorithm(wrapped);
  const auto algorithm = (data[0] & 1) ? ImportWrappingAlgorithm::kRsaAesKeyWrapSha256
                                       : ImportWrappingAlgorithm::kRsaesOaepSha256;
  (void)Unwrap(algorithm, wrapped);

  const Fixture& f = TheFixture();
  const std::string tampered = XorOnto(f.oaep_wrap, wrapped);
  auto opened = Unwrap(ImportWrappingAlgorithm::kRsaesOaepSha256, tampered);
  if (tampered == f.oaep_wrap) {
    FUZZ_CHECK(opened.ok() && opened->view() == f.material);
  } else {
    FUZZ_CHECK(!opened.ok());
    // Past the (public) size check, one message for every failure.
    if (tampered.size() == f.oaep_wrap.size()) {
      FUZZ_CHECK(opened.status().message() == f.decrypt_failure);
    }
  }
  return 0;
}
