// The stream format, v1 (docs/FORMAT.md "Stream (v1)"): header encoding,
// hostile-input header parsing, key derivation with key commitment, and
// sealing/opening single chunks given the plaintext data key. No
// DataKeySource and no buffering here: this layer is pure and is tested (and
// specified) on its own; client/src/stream_encryptor.cc drives it.
//
//   header: "CLST" | u8 version | u8 algorithm | u16 key name | u16 segment |
//           u32 data key blob | u32 chunk size | salt (32) |
//           nonce prefix (7) | commitment (32)
//   chunks: AES-256-GCM(chunk plaintext) || tag (16), one after another;
//           every chunk but the last holds exactly `chunk size` plaintext
//           bytes, the last 0..chunk size.
//   nonce of chunk i: nonce prefix (7) || u32 i || u8 last (1 or 0)
//   associated data of every chunk: header || canonical encryption context
//
// Every error is InvalidArgument with a message that says what is wrong and
// never contains stream bytes, key bytes or context values.
#ifndef CLAVIS_CLIENT_SRC_STREAM_FORMAT_H_
#define CLAVIS_CLIENT_SRC_STREAM_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/aead.h"
#include "crypto/secret_bytes.h"

namespace clavis::client_internal {

// ---- Constants of v1. The prose spec is normative; change both together, and
// never change v1's meaning: a change an old reader could misread is a new
// version. ----

// "CLST": Clavis stream.
inline constexpr absl::string_view kStreamMagic = "CLST";
inline constexpr uint8_t kStreamVersion = 1;
// AES-256-GCM under an HKDF-SHA256-derived key, with key commitment.
inline constexpr uint8_t kStreamAlgorithmAes256GcmHkdfSha256Committing = 1;

inline constexpr size_t kStreamMaxKeyNameSize = 256;
inline constexpr size_t kStreamMaxSegmentSize = 256;
// The server's ciphertext blob limit (docs/FORMAT.md "Ciphertext blob").
inline constexpr size_t kStreamMaxDataKeyBlobSize = 8192;
inline constexpr uint32_t kStreamMinChunkSize = uint32_t{4} << 10;   // 4 KiB
inline constexpr uint32_t kStreamMaxChunkSize = uint32_t{16} << 20;  // 16 MiB
inline constexpr size_t kStreamSaltSize = 32;
inline constexpr size_t kStreamNoncePrefixSize = 7;
inline constexpr size_t kStreamCommitmentSize = 32;
inline constexpr size_t kStreamDerivedKeySize = 32;
inline constexpr size_t kStreamTagSize = 16;
// Chunks are numbered by a u32: at most 2^32 per stream.
inline constexpr uint64_t kStreamMaxChunks = uint64_t{1} << 32;
// The largest possible header: the fixed fields and the longest names.
inline constexpr size_t kStreamMaxHeaderSize = 4 + 1 + 1 + 2 + kStreamMaxKeyNameSize + 2 +
                                               kStreamMaxSegmentSize + 4 +
                                               kStreamMaxDataKeyBlobSize + 4 + kStreamSaltSize +
                                               kStreamNoncePrefixSize + kStreamCommitmentSize;

// HKDF info label: 16 ASCII bytes, no terminator.
inline constexpr absl::string_view kStreamKdfLabel = "clavis stream v1";

// ---- Header ----

// What a stream header names. Views into the caller's bytes.
struct StreamHeaderFields {
  absl::string_view key;            // "tenants/{t}/keys/{k}"
  absl::string_view segment;        // segment label
  absl::string_view data_key_blob;  // the server's ciphertext blob of the data key
  uint32_t chunk_size = 0;          // plaintext bytes per chunk
};

struct ParsedStreamHeader {
  uint8_t version = 0;
  uint8_t algorithm = 0;
  StreamHeaderFields fields;
  absl::string_view salt;
  absl::string_view nonce_prefix;
  absl::string_view commitment;
  absl::string_view header;  // every byte of the header; the chunks follow it
};

// Checks the size rules of the fields (key name 1..256, segment 1..256, blob
// 1..8192 bytes, chunk size 4 KiB..16 MiB).
absl::Status ValidateStreamHeaderFields(const StreamHeaderFields& fields);

// Parses the header at the start of `input`, which may go on with chunks.
// Returns nullopt while `input` is a proper prefix of a header that could
// still turn out valid (more bytes are needed), an error as soon as it
// cannot, and otherwise the header, whose views point into `input`.
absl::StatusOr<std::optional<ParsedStreamHeader>> ParseStreamHeader(absl::string_view input);

// ---- Keys ----

// HKDF-SHA256(data key, salt, kStreamKdfLabel || u8 algorithm || u16 key ||
// u16 segment || u32 chunk size), 64 bytes: the first 32 the AES-256-GCM
// key, the last 32 the commitment.
struct StreamKeys {
  crypto::SecretBytes encryption_key;
  std::string commitment;
};
absl::StatusOr<StreamKeys> DeriveStreamKeys(const crypto::SecretBytes& data_key,
                                            absl::string_view salt, uint8_t algorithm,
                                            const StreamHeaderFields& fields);

// ---- Chunks ----

// The 12-byte nonce of chunk `index`. REQUIRES: index < kStreamMaxChunks,
// nonce_prefix.size() == kStreamNoncePrefixSize.
std::string StreamChunkNonce(absl::string_view nonce_prefix, uint64_t index, bool last);

// Seals and opens the chunks of one stream: its AES key, nonce prefix and
// associated data (header || canonical context). Holds no stream data.
// Thread safety: immutable after creation.
class StreamChunkCipher {
 public:
  // A new stream: fresh random salt and nonce prefix, keys derived from
  // `data_key`, header encoded. InvalidArgument for fields outside their
  // limits. REQUIRES: data_key.size() == 32.
  static absl::StatusOr<std::unique_ptr<StreamChunkCipher>> ForWriting(
      const crypto::SecretBytes& data_key, const StreamHeaderFields& fields,
      absl::string_view canonical_context);

  // An existing stream: derives the keys and checks the key commitment in
  // constant time ("stream does not match its data key") before any chunk
  // can be opened. Copies what it needs from `header`.
  static absl::StatusOr<std::unique_ptr<StreamChunkCipher>> ForReading(
      const ParsedStreamHeader& header, const crypto::SecretBytes& data_key,
      absl::string_view canonical_context);

  // The encoded header, to be written before the first chunk.
  absl::string_view header() const;
  uint32_t chunk_size() const { return chunk_size_; }

  // Chunk `index` (from 0): ciphertext || tag. InvalidArgument if a
  // non-final chunk does not hold exactly chunk_size() bytes or a final
  // chunk more, and "stream is too long: ..." if `index` would leave the 2^32
  // chunk numbers (a non-final chunk cannot be number 2^32 - 1, since its
  // successor would have no number).
  absl::StatusOr<std::string> SealChunk(uint64_t index, absl::string_view plaintext,
                                        bool last) const;

  // The plaintext of chunk `index`. "chunk N failed to decrypt" for a wrong
  // size, a wrong position (another index or `last` flag), another header or
  // context, or any altered byte; the number limit as for SealChunk. No
  // partial plaintext on failure.
  absl::StatusOr<std::string> OpenChunk(uint64_t index, absl::string_view ciphertext_and_tag,
                                        bool last) const;

 private:
  StreamChunkCipher(std::unique_ptr<crypto::Aead> aead, std::string nonce_prefix,
                    size_t header_size, std::string associated_data, uint32_t chunk_size);

  // Constant after construction.
  const std::unique_ptr<crypto::Aead> aead_;
  const std::string nonce_prefix_;
  const size_t header_size_;
  const std::string associated_data_;  // header || canonical context
  const uint32_t chunk_size_;
};

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_STREAM_FORMAT_H_
