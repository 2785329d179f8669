#include "client/src/stream_format.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace clavis::client_internal {
namespace {

// 7-byte prefix || u32 index || u8 last flag: AES-GCM's 96-bit nonce.
constexpr size_t kNonceSize = kStreamNoncePrefixSize + 4 + 1;
static_assert(kNonceSize == 12);
static_assert(kStreamTagSize == crypto::Aead::kTagSize);
static_assert(kStreamDerivedKeySize == crypto::Aead::kKeySize);

absl::Status CheckSize(absl::string_view what, size_t size, size_t min, size_t max) {
  if (size < min || size > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream ", what, " of ", size, " bytes is outside ", min, "..", max));
  }
  return absl::OkStatus();
}

absl::Status TooLong() {
  return absl::InvalidArgumentError("stream is too long: a stream holds at most 2^32 chunks");
}

absl::Status ChunkFailed(uint64_t index) {
  return absl::InvalidArgumentError(absl::StrCat("chunk ", index, " failed to decrypt"));
}

// A non-final chunk needs a successor with a number of its own.
bool IndexFits(uint64_t index, bool last) {
  return last ? index < kStreamMaxChunks : index + 1 < kStreamMaxChunks;
}

// The parser's three outcomes for one field: read, need more bytes, invalid.
enum class Read { kOk, kMore };

// Reads a length prefix, checks it against min..max before reading (so a huge
// claimed length is reported as oversized, not as truncated), then the bytes.
template <typename Int>
absl::StatusOr<Read> ReadField(crypto::ByteReader& reader,
                               bool (crypto::ByteReader::*read_len)(Int*), absl::string_view what,
                               size_t max, absl::string_view* out) {
  Int length = 0;
  if (!(reader.*read_len)(&length)) return Read::kMore;
  if (absl::Status s = CheckSize(what, length, 1, max); !s.ok()) return s;
  if (!reader.ReadBytes(length, out)) return Read::kMore;
  return Read::kOk;
}

std::string EncodeHeader(const StreamHeaderFields& fields, absl::string_view salt,
                         absl::string_view nonce_prefix, absl::string_view commitment) {
  std::string out;
  crypto::ByteWriter w(&out);
  w.Bytes(kStreamMagic);
  w.U8(kStreamVersion);
  w.U8(kStreamAlgorithmAes256GcmHkdfSha256Committing);
  w.U16Prefixed(fields.key);
  w.U16Prefixed(fields.segment);
  w.U32Prefixed(fields.data_key_blob);
  w.U32(fields.chunk_size);
  w.Bytes(salt);
  w.Bytes(nonce_prefix);
  w.Bytes(commitment);
  return out;
}

}  // namespace

absl::Status ValidateStreamHeaderFields(const StreamHeaderFields& fields) {
  if (absl::Status s = CheckSize("key name", fields.key.size(), 1, kStreamMaxKeyNameSize);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSize("segment", fields.segment.size(), 1, kStreamMaxSegmentSize);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckSize("data key blob", fields.data_key_blob.size(), 1, kStreamMaxDataKeyBlobSize);
      !s.ok()) {
    return s;
  }
  return CheckSize("chunk size", fields.chunk_size, kStreamMinChunkSize, kStreamMaxChunkSize);
}

absl::StatusOr<std::optional<ParsedStreamHeader>> ParseStreamHeader(absl::string_view input) {
  const std::optional<ParsedStreamHeader> kNeedMore = std::nullopt;
  // A short prefix of the magic may still become a stream; anything else
  // that does not start with it never will.
  if (absl::string_view(kStreamMagic).substr(0, input.size()) != input.substr(0, 4)) {
    return absl::InvalidArgumentError("not a Clavis stream (wrong magic)");
  }
  crypto::ByteReader reader(input);
  absl::string_view magic;
  if (!reader.ReadBytes(kStreamMagic.size(), &magic)) return kNeedMore;
  ParsedStreamHeader h;
  if (!reader.ReadU8(&h.version)) return kNeedMore;
  if (h.version != kStreamVersion) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported stream format version ", h.version,
                                                   " (this SDK reads version ", kStreamVersion,
                                                   ")"));
  }
  if (!reader.ReadU8(&h.algorithm)) return kNeedMore;
  if (h.algorithm != kStreamAlgorithmAes256GcmHkdfSha256Committing) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported stream algorithm ", h.algorithm));
  }
  StreamHeaderFields& f = h.fields;
  absl::StatusOr<Read> r = ReadField<uint16_t>(reader, &crypto::ByteReader::ReadU16, "key name",
                                               kStreamMaxKeyNameSize, &f.key);
  if (r.ok() && *r == Read::kOk) {
    r = ReadField<uint16_t>(reader, &crypto::ByteReader::ReadU16, "segment", kStreamMaxSegmentSize,
                            &f.segment);
  }
  if (r.ok() && *r == Read::kOk) {
    r = ReadField<uint32_t>(reader, &crypto::ByteReader::ReadU32, "data key blob",
                            kStreamMaxDataKeyBlobSize, &f.data_key_blob);
  }
  if (!r.ok()) return r.status();
  if (*r == Read::kMore) return kNeedMore;
  if (!reader.ReadU32(&f.chunk_size)) return kNeedMore;
  if (absl::Status s =
          CheckSize("chunk size", f.chunk_size, kStreamMinChunkSize, kStreamMaxChunkSize);
      !s.ok()) {
    return s;
  }
  if (!reader.ReadBytes(kStreamSaltSize, &h.salt) ||
      !reader.ReadBytes(kStreamNoncePrefixSize, &h.nonce_prefix) ||
      !reader.ReadBytes(kStreamCommitmentSize, &h.commitment)) {
    return kNeedMore;
  }
  h.header = input.substr(0, input.size() - reader.remaining());
  return h;
}

absl::StatusOr<StreamKeys> DeriveStreamKeys(const crypto::SecretBytes& data_key,
                                            absl::string_view salt, uint8_t algorithm,
                                            const StreamHeaderFields& fields) {
  std::string info;
  crypto::ByteWriter w(&info);
  w.Bytes(kStreamKdfLabel);
  w.U8(algorithm);
  w.U16Prefixed(fields.key);
  w.U16Prefixed(fields.segment);
  w.U32(fields.chunk_size);
  absl::StatusOr<crypto::SecretBytes> okm =
      crypto::HkdfSha256(data_key, salt, info, kStreamDerivedKeySize + kStreamCommitmentSize);
  if (!okm.ok()) return okm.status();
  StreamKeys keys;
  keys.encryption_key = crypto::SecretBytes::CopyOf(okm->view().substr(0, kStreamDerivedKeySize));
  keys.commitment = std::string(okm->view().substr(kStreamDerivedKeySize, kStreamCommitmentSize));
  return keys;
}

std::string StreamChunkNonce(absl::string_view nonce_prefix, uint64_t index, bool last) {
  std::string nonce(nonce_prefix);
  crypto::ByteWriter w(&nonce);
  w.U32(static_cast<uint32_t>(index));
  w.U8(last ? 1 : 0);
  return nonce;
}

StreamChunkCipher::StreamChunkCipher(std::unique_ptr<crypto::Aead> aead, std::string nonce_prefix,
                                     size_t header_size, std::string associated_data,
                                     uint32_t chunk_size)
    : aead_(std::move(aead)),
      nonce_prefix_(std::move(nonce_prefix)),
      header_size_(header_size),
      associated_data_(std::move(associated_data)),
      chunk_size_(chunk_size) {}

absl::StatusOr<std::unique_ptr<StreamChunkCipher>> StreamChunkCipher::ForWriting(
    const crypto::SecretBytes& data_key, const StreamHeaderFields& fields,
    absl::string_view canonical_context) {
  if (absl::Status s = ValidateStreamHeaderFields(fields); !s.ok()) return s;
  // A fresh salt gives every stream its own encryption key, even if a data
  // key is ever used for more than one stream (the data-key cache), so the
  // counter nonces of two streams never meet under one key.
  const std::string salt = crypto::RandomBytes(kStreamSaltSize);
  std::string nonce_prefix = crypto::RandomBytes(kStreamNoncePrefixSize);
  absl::StatusOr<StreamKeys> keys =
      DeriveStreamKeys(data_key, salt, kStreamAlgorithmAes256GcmHkdfSha256Committing, fields);
  if (!keys.ok()) return keys.status();
  std::string header = EncodeHeader(fields, salt, nonce_prefix, keys->commitment);
  absl::StatusOr<std::unique_ptr<crypto::Aead>> aead =
      crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, std::move(keys->encryption_key));
  if (!aead.ok()) return aead.status();
  const size_t header_size = header.size();
  header.append(canonical_context.data(), canonical_context.size());
  return std::unique_ptr<StreamChunkCipher>(
      new StreamChunkCipher(std::move(*aead), std::move(nonce_prefix), header_size,
                            std::move(header), fields.chunk_size));
}

absl::StatusOr<std::unique_ptr<StreamChunkCipher>> StreamChunkCipher::ForReading(
    const ParsedStreamHeader& header, const crypto::SecretBytes& data_key,
    absl::string_view canonical_context) {
  absl::StatusOr<StreamKeys> keys =
      DeriveStreamKeys(data_key, header.salt, header.algorithm, header.fields);
  if (!keys.ok()) return keys.status();
  // Checked before any chunk is opened: without it, a stream crafted to be
  // valid under two data keys (AES-GCM is not key committing) could open to
  // a different plaintext for a different reader.
  if (!crypto::ConstantTimeEquals(keys->commitment, header.commitment)) {
    return absl::InvalidArgumentError("stream does not match its data key");
  }
  absl::StatusOr<std::unique_ptr<crypto::Aead>> aead =
      crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, std::move(keys->encryption_key));
  if (!aead.ok()) return aead.status();
  return std::unique_ptr<StreamChunkCipher>(new StreamChunkCipher(
      std::move(*aead), std::string(header.nonce_prefix), header.header.size(),
      absl::StrCat(header.header, canonical_context), header.fields.chunk_size));
}

absl::string_view StreamChunkCipher::header() const {
  return absl::string_view(associated_data_).substr(0, header_size_);
}

absl::StatusOr<std::string> StreamChunkCipher::SealChunk(uint64_t index,
                                                         absl::string_view plaintext,
                                                         bool last) const {
  if (!IndexFits(index, last)) return TooLong();
  if (last ? plaintext.size() > chunk_size_ : plaintext.size() != chunk_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat(last ? "a final" : "a non-final", " chunk of ", plaintext.size(),
                     " bytes does not fit a chunk size of ", chunk_size_));
  }
  return aead_->Seal(StreamChunkNonce(nonce_prefix_, index, last), plaintext, associated_data_);
}

absl::StatusOr<std::string> StreamChunkCipher::OpenChunk(uint64_t index,
                                                         absl::string_view ciphertext_and_tag,
                                                         bool last) const {
  if (!IndexFits(index, last)) return TooLong();
  const size_t full = size_t{chunk_size_} + kStreamTagSize;
  if (last ? (ciphertext_and_tag.size() < kStreamTagSize || ciphertext_and_tag.size() > full)
           : ciphertext_and_tag.size() != full) {
    return ChunkFailed(index);
  }
  absl::StatusOr<std::string> plaintext = aead_->Open(StreamChunkNonce(nonce_prefix_, index, last),
                                                      ciphertext_and_tag, associated_data_);
  if (!plaintext.ok()) return ChunkFailed(index);
  return plaintext;
}

}  // namespace clavis::client_internal
