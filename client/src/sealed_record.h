// The sealed record format, v2 and v1 (docs/FORMAT.md "Sealed record (v2)"):
// encoding, hostile-input parsing, key derivation with key commitment, and
// sealing/opening given the plaintext data key. No DataKeySource here: this
// layer is pure and is tested (and specified) on its own.
//
//   "CLSR" | u8 version | u8 algorithm | u16 key name | u16 segment |
//   u32 data key blob | salt (32) | commitment (32) | nonce (12) |
//   ciphertext | tag (16)
//
// Associated data of the AES-GCM tag: header || canonical encryption
// context || application associated data (empty for v1 records).
//
// Every error is InvalidArgument with a message that says what is wrong and
// never contains record bytes, key bytes or context values.
#ifndef CLAVIS_CLIENT_SRC_SEALED_RECORD_H_
#define CLAVIS_CLIENT_SRC_SEALED_RECORD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/aes_gcm_key.h"
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

// Splits and checks a record (version 1 or 2) without any key. The result's
// views point into `sealed`, which must outlive it.
absl::StatusOr<ParsedSealedRecord> ParseSealedRecord(absl::string_view sealed);

// The record key and commitment of one (data key, salt) pair, derived once
// and then used for many records, bound to one encryption context:
// HKDF-SHA256(data key, salt, kKdfLabel || u8 algorithm || u16 key || u16
// segment), 64 bytes: the first 32 the AES-256-GCM key, the last 32 the
// commitment. Holds the derived key in secure memory and in pooled OpenSSL
// contexts (crypto::AesGcmKey); the data key itself is not kept. The
// header and the canonical context are encoded once, so a record costs one
// AES-GCM call and no encoding.
//
// Thread safety: immutable after New (but for the nonce counter); Seal and
// Open may run concurrently.
class RecordKeyMaterial {
 public:
  // `salt` must be 32 bytes; empty means a fresh random salt.
  // `canonical_context` is the context every record of this material is
  // bound to.
  static absl::StatusOr<std::unique_ptr<RecordKeyMaterial>> New(const crypto::SecretBytes& data_key,
                                                                const SealedRecordFields& fields,
                                                                absl::string_view canonical_context,
                                                                std::string salt = {});

  // A v2 record of `plaintext` bound to the material's context and
  // `associated_data`. Nonces are unique per material without drawing
  // randomness per record: a random 32-bit prefix chosen at New, then a
  // 64-bit counter. FailedPrecondition after 2^32 records (far above any
  // cache limit), or in a child process of a fork() made after New (the
  // child would repeat the parent's nonces).
  absl::StatusOr<std::string> Seal(absl::string_view plaintext,
                                   absl::string_view associated_data) const;

  // Whether `record` names this material's key name, segment, data key blob
  // and salt, i.e. whether Open can use the derived key.
  bool Matches(const ParsedSealedRecord& record) const;

  // Opens a record for which Matches() holds, with the material's context:
  // checks the key commitment in constant time first ("sealed record does
  // not match its data key"), then decrypts ("decryption failed"). No
  // partial plaintext on failure.
  absl::StatusOr<std::string> Open(const ParsedSealedRecord& record,
                                   absl::string_view associated_data) const;

  // Opens `sealed`, a whole record whose first bytes are exactly header():
  // the usual case, where the header is one comparison rather than a parse
  // (a record with this very header names this material's key name,
  // segment, data key blob, salt and commitment). Same errors as
  // ParseSealedRecord on the rest, then as Open. The caller must have
  // checked that the record is presented with this material's context.
  // REQUIRES: absl::StartsWith(sealed, header()).
  absl::StatusOr<std::string> OpenOwnRecord(absl::string_view sealed,
                                            absl::string_view associated_data) const;

  const std::string& header() const { return header_; }
  const std::string& canonical_context() const { return canonical_context_; }
  // Whether Seal may still be used in this process (see ForkGeneration).
  bool SealableHere() const;

 private:
  RecordKeyMaterial() = default;

  // AES-GCM-opens a record of this material's header (and context).
  absl::StatusOr<std::string> OpenBody(absl::string_view nonce,
                                       absl::string_view ciphertext_and_tag,
                                       absl::string_view associated_data) const;

  std::string key_;
  std::string segment_;
  std::string data_key_blob_;
  std::string salt_;
  std::string commitment_;
  std::string canonical_context_;
  std::string header_;      // v2 header of the records this material seals
  std::string aad_prefix_;  // header_ || canonical_context_
  std::unique_ptr<crypto::AesGcmKey> aead_;
  char nonce_prefix_[4] = {};
  mutable std::atomic<uint64_t> records_sealed_{0};
  uint64_t fork_generation_ = 0;
};

// One-shot helpers (a material used once): seal a v2 record with a fresh
// salt, and open any record given its data key.
// REQUIRES: data_key.size() == 32.
absl::StatusOr<std::string> SealRecord(const crypto::SecretBytes& data_key,
                                       const SealedRecordFields& fields,
                                       absl::string_view plaintext,
                                       absl::string_view canonical_context,
                                       absl::string_view associated_data = {});
absl::StatusOr<std::string> OpenRecord(const ParsedSealedRecord& record,
                                       const crypto::SecretBytes& data_key,
                                       absl::string_view canonical_context,
                                       absl::string_view associated_data = {});

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_SEALED_RECORD_H_
