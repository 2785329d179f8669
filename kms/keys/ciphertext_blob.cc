#include "kms/keys/ciphertext_blob.h"

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"
#include "kms/keys/names.h"

namespace clavis::kms {

std::string CiphertextBlobHeader::Encode() const {
  std::string out;
  crypto::ByteWriter w(&out);
  w.U8(version);
  w.U8(algorithm);
  w.U8Prefixed(tenant);
  w.U8Prefixed(key_id);
  w.U16Prefixed(segment);
  w.U32(segment_key_version);
  return out;
}

absl::StatusOr<ParsedCiphertextBlob> ParseCiphertextBlob(absl::string_view blob) {
  if (blob.empty()) return absl::InvalidArgumentError("ciphertext blob is empty");
  if (blob.size() > kMaxCiphertextBlobSize) {
    return absl::InvalidArgumentError(absl::StrCat("ciphertext blob is ", blob.size(),
                                                   " bytes; a Clavis blob is at most ",
                                                   kMaxCiphertextBlobSize));
  }
  crypto::ByteReader r(blob);
  ParsedCiphertextBlob out;
  CiphertextBlobHeader& h = out.header;
  if (!r.ReadU8(&h.version)) return absl::InvalidArgumentError("ciphertext blob is truncated");
  if (h.version != kCiphertextBlobVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported ciphertext blob format version ", h.version, " (this server reads ",
        kCiphertextBlobVersion, "); is this a Clavis ciphertext blob?"));
  }
  absl::string_view tenant, key_id, segment;
  if (!r.ReadU8(&h.algorithm) || !r.ReadU8Prefixed(&tenant) || !r.ReadU8Prefixed(&key_id) ||
      !r.ReadU16Prefixed(&segment) || !r.ReadU32(&h.segment_key_version)) {
    return absl::InvalidArgumentError("ciphertext blob is truncated");
  }
  if (h.algorithm != kBlobAlgorithmAes256Gcm) {
    return absl::InvalidArgumentError(
        absl::StrCat("ciphertext blob names unknown algorithm ", h.algorithm));
  }
  if (!ValidateTenantId(tenant).ok() || !ValidateKeyId(key_id).ok() ||
      !ValidateSegment(segment).ok() || h.segment_key_version == 0) {
    return absl::InvalidArgumentError("ciphertext blob header is malformed");
  }
  h.tenant = std::string(tenant);
  h.key_id = std::string(key_id);
  h.segment = std::string(segment);
  out.header_bytes = std::string(blob.substr(0, blob.size() - r.remaining()));
  absl::string_view nonce;
  if (!r.ReadBytes(kBlobNonceSize, &nonce) || r.remaining() < kBlobTagSize) {
    return absl::InvalidArgumentError("ciphertext blob is truncated");
  }
  out.nonce = std::string(nonce);
  out.ciphertext_and_tag = std::string(r.ReadRest());
  return out;
}

std::string BlobAssociatedData(absl::string_view header_bytes,
                               absl::string_view canonical_context) {
  return absl::StrCat(header_bytes, canonical_context);
}

absl::Status BlobDecryptionFailed() {
  return absl::InvalidArgumentError(
      "decryption failed: the ciphertext blob, its encryption context or its segment does not "
      "match");
}

}  // namespace clavis::kms
