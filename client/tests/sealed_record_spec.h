// The sealed record format written a second time, straight from
// docs/FORMAT.md "Sealed record (v2)" (and v1, which has the same layout) and with the crypto
// layer's primitives only, independent of client/src. Tests use it to check that the SDK follows
// its spec, to decrypt records "offline" as a customer would, and to craft
// records the SDK would never write (e.g. with a commitment that does not
// match the data key).
#ifndef CLAVIS_CLIENT_TESTS_SEALED_RECORD_SPEC_H_
#define CLAVIS_CLIENT_TESTS_SEALED_RECORD_SPEC_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"

namespace clavis::testing {

inline std::string BigEndian(uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

// FORMAT.md "Encryption context": u32 count, then sorted u32-prefixed pairs.
inline std::string SpecCanonicalContext(const std::map<std::string, std::string>& context) {
  std::string out = BigEndian(context.size(), 4);
  for (const auto& [k, v] : context)
    absl::StrAppend(&out, BigEndian(k.size(), 4), k, BigEndian(v.size(), 4), v);
  return out;
}

struct SpecRecord {
  std::string key = "tenants/acme/keys/crm";
  std::string segment = "acme/orders/2026-11";
  std::string data_key_blob = "blob";
  std::string salt = crypto::RandomBytes(32);
  std::string nonce = crypto::RandomBytes(12);
  uint8_t version = 2;
  uint8_t algorithm = 1;
  // If set, written instead of the commitment derived from the data key.
  std::optional<std::string> commitment_override;
};

// HKDF-SHA256(data key, salt, "clavis sealed record v1" || alg || u16 key ||
// u16 segment) -> 64 bytes: encryption key || commitment.
inline crypto::SecretBytes SpecDerive(const crypto::SecretBytes& data_key, const SpecRecord& r) {
  const std::string info =
      absl::StrCat("clavis sealed record v1", std::string(1, static_cast<char>(r.algorithm)),
                   BigEndian(r.key.size(), 2), r.key, BigEndian(r.segment.size(), 2), r.segment);
  return *crypto::HkdfSha256(data_key, r.salt, info, 64);
}

inline std::string SpecSeal(const crypto::SecretBytes& data_key, const SpecRecord& r,
                            absl::string_view plaintext,
                            const std::map<std::string, std::string>& context,
                            absl::string_view associated_data = "") {
  crypto::SecretBytes okm = SpecDerive(data_key, r);
  const std::string commitment =
      r.commitment_override.value_or(std::string(okm.view().substr(32, 32)));
  const std::string header =
      absl::StrCat("CLSR", std::string(1, static_cast<char>(r.version)),
                   std::string(1, static_cast<char>(r.algorithm)), BigEndian(r.key.size(), 2),
                   r.key, BigEndian(r.segment.size(), 2), r.segment,
                   BigEndian(r.data_key_blob.size(), 4), r.data_key_blob, r.salt, commitment);
  auto aead = *crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm,
                                 crypto::SecretBytes::CopyOf(okm.view().substr(0, 32)));
  return absl::StrCat(
      header, r.nonce,
      *aead->Seal(r.nonce, plaintext,
                  absl::StrCat(header, SpecCanonicalContext(context), associated_data)));
}

// The offline recipe of FORMAT.md: split by the documented offsets, derive,
// compare the commitment, AES-256-GCM-decrypt.
inline absl::StatusOr<std::string> SpecOpen(const crypto::SecretBytes& data_key,
                                            absl::string_view sealed,
                                            const std::map<std::string, std::string>& context,
                                            absl::string_view associated_data = "") {
  auto u16 = [&](size_t at) {
    return (static_cast<uint8_t>(sealed[at]) << 8) | static_cast<uint8_t>(sealed[at + 1]);
  };
  size_t at = 6;
  SpecRecord r;
  r.algorithm = static_cast<uint8_t>(sealed[5]);
  r.key = std::string(sealed.substr(at + 2, u16(at)));
  at += 2 + r.key.size();
  r.segment = std::string(sealed.substr(at + 2, u16(at)));
  at += 2 + r.segment.size();
  const size_t blob_size = (u16(at) << 16) | u16(at + 2);
  at += 4 + blob_size;
  r.salt = std::string(sealed.substr(at, 32));
  const absl::string_view commitment = sealed.substr(at + 32, 32);
  at += 64;
  const absl::string_view header = sealed.substr(0, at);
  const absl::string_view nonce = sealed.substr(at, 12);
  crypto::SecretBytes okm = SpecDerive(data_key, r);
  if (!crypto::ConstantTimeEquals(okm.view().substr(32, 32), commitment)) {
    return absl::InvalidArgumentError("commitment mismatch");
  }
  auto aead = *crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm,
                                 crypto::SecretBytes::CopyOf(okm.view().substr(0, 32)));
  return aead->Open(nonce, sealed.substr(at + 12),
                    absl::StrCat(header, SpecCanonicalContext(context), associated_data));
}

}  // namespace clavis::testing

#endif  // CLAVIS_CLIENT_TESTS_SEALED_RECORD_SPEC_H_
