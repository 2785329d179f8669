// Encoding and decoding of audit log files and record frames
// (docs/FORMAT.md, "Audit log (v1)"). Shared by the writer, its crash
// recovery, the verifier and the query helpers, so all of them read a file
// with the same bounds-checked parser and the same notion of a "torn" record.
//
// Decoding treats its input as hostile: every length is checked before use
// and no input makes it crash or read out of bounds.
#ifndef CLAVIS_KMS_AUDIT_INTERNAL_RECORD_CODEC_H_
#define CLAVIS_KMS_AUDIT_INTERNAL_RECORD_CODEC_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"
#include "kms/audit/audit_record.h"

namespace clavis::kms::audit_internal {

std::string EncodeFileHeader(uint32_t file_number);
// OK if `file` starts with a v1 header naming `file_number`. A header cut
// short is reported by the caller (it may be a torn file); here it is
// InvalidArgument like any other mismatch.
absl::Status CheckFileHeader(absl::string_view file, uint32_t file_number);

// The frame of a call or alert record. InvalidArgument if a field is too long
// or context_hash is neither empty nor 32 bytes.
absl::StatusOr<std::string> EncodeEventFrame(const AuditRecord& record,
                                             absl::string_view prev_hash);

// The frame of a checkpoint record, signed with `seed`.
absl::StatusOr<std::string> EncodeCheckpointFrame(uint64_t sequence, absl::string_view prev_hash,
                                                  int64_t time_us, bool closing,
                                                  absl::string_view public_key,
                                                  const crypto::SecretBytes& seed);

struct DecodedFrame {
  AuditRecord record;
  std::string prev_hash;  // the chain hash this record carries
  std::string digest;     // this record's digest: the next record's chain hash
  size_t size = 0;        // bytes of the whole frame
  // Checkpoints only.
  std::string signature;
  std::string signed_message;  // the exact input of the signature
};

enum class FrameResult {
  kOk,
  // The data ends inside the frame as only a crash while writing leaves it:
  // too few bytes for the length, a length running past the end, or only
  // zero bytes left (file systems may extend a file before its data lands).
  kTorn,
  // Anything else that is not a valid frame.
  kBad,
};

// Decodes the frame at the start of `data` (which runs to the end of the
// file). Torn frames are only possible at the end of the newest file, so
// with `may_be_torn` false every incomplete frame is kBad. On a failure,
// `*why` says what is wrong without quoting record contents.
FrameResult DecodeFrame(absl::string_view data, bool may_be_torn, DecodedFrame* out,
                        std::string* why);

}  // namespace clavis::kms::audit_internal

#endif  // CLAVIS_KMS_AUDIT_INTERNAL_RECORD_CODEC_H_
