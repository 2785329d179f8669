// The sealed record format, v1 (docs/FORMAT.md "Sealed record (v1)"):
// encoding, hostile-input parsing, key derivation with key commitment, and
// sealing/opening given the plaintext data key. No DataKeySource here: this
// layer is pure and is tested (and specified) on its own.
//
//   "CLSR" | u8 version | u8 algorithm | u16 key name | u16 segment |
//   u32 data key blob | salt (32) | commitment (32) | nonce (12) |
//   ciphertext | tag (16)
//
// Every error is InvalidArgument with a message that says what is wrong and
// never contains record bytes, key bytes or context values.
#ifndef CLAVIS_CLIENT_SRC_SEALED_RECORD_H_
#define CLAVIS_CLIENT_SRC_SEALED_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::client_internal {

// What a sealed record names. Views into the parsed input.
struct SealedRecordFields {
  absl::string_view key;            // "tenants/{t}/keys/{k}"
  absl::string_view segment;        // segment label
  absl::string_view data_key_blob;  // the server's ciphertext blob of the data key
};

struct ParsedSealedRecord {
  uint8_t version = 0;
  uint8_t algorithm = 0;
  SealedRecordFields fields;
  absl::string_view salt;
  absl::string_view commitment;
  absl::string_view header;  // every byte before the nonce
  absl::string_view nonce;
  absl::string_view ciphertext_and_tag;
};

// Checks the size rules of the fields (key name 1..256, segment 1..256, blob
// 1..8192 bytes).
absl::Status ValidateSealedRecordFields(const SealedRecordFields& fields);

// Splits and checks a record without any key. The result's views point into
// `sealed`, which must outlive it.
absl::StatusOr<ParsedSealedRecord> ParseSealedRecord(absl::string_view sealed);

// The per-record key and key commitment derived from a data key:
// HKDF-SHA256(data key, salt, kKdfLabel || u8 algorithm || u16 key || u16
// segment), 64 bytes: the first 32 the AES-256-GCM key, the last 32 the
// commitment.
struct RecordKeys {
  crypto::SecretBytes encryption_key;
  std::string commitment;
};
absl::StatusOr<RecordKeys> DeriveRecordKeys(const crypto::SecretBytes& data_key,
                                            absl::string_view salt, uint8_t algorithm,
                                            const SealedRecordFields& fields);

// Seals `plaintext` under `data_key` with a fresh salt and nonce.
// `canonical_context` is the canonical encoding of the encryption context.
// REQUIRES: data_key.size() == 32.
absl::StatusOr<std::string> SealRecord(const crypto::SecretBytes& data_key,
                                       const SealedRecordFields& fields,
                                       absl::string_view plaintext,
                                       absl::string_view canonical_context);

// Opens a parsed record: checks the key commitment in constant time first
// ("sealed record does not match its data key"), then decrypts ("decryption
// failed"). No partial plaintext on failure.
absl::StatusOr<std::string> OpenRecord(const ParsedSealedRecord& record,
                                       const crypto::SecretBytes& data_key,
                                       absl::string_view canonical_context);

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_SEALED_RECORD_H_
