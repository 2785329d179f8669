#include "kms/audit/internal/record_codec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"
#include "crypto/ed25519.h"
#include "crypto/kdf.h"
#include "kms/audit/internal/audit_format.h"

namespace clavis::kms::audit_internal {
namespace {

using crypto::ByteReader;
using crypto::ByteWriter;

void WriteCommonHeader(ByteWriter& w, AuditRecordKind kind, uint64_t sequence,
                       absl::string_view prev_hash, int64_t time_us) {
  w.U8(kFormatVersion);
  w.U8(static_cast<uint8_t>(kind));
  w.U64(sequence);
  w.Bytes(prev_hash);
  w.U64(static_cast<uint64_t>(time_us));
}

// Fills in the u32 length at the front and appends the digest.
std::string FinishFrame(std::string frame) {
  const size_t body_size = frame.size() - 4 + kHashSize;
  for (int i = 0; i < 4; ++i) {
    frame[i] = static_cast<char>((body_size >> (8 * (3 - i))) & 0xff);
  }
  frame += crypto::Sha256(frame);
  return frame;
}

std::string SignatureInput(absl::string_view frame_before_signature) {
  std::string message(kCheckpointSignatureContext);
  message.push_back('\0');
  message.append(frame_before_signature.data(), frame_before_signature.size());
  return message;
}

bool AllZero(absl::string_view data) {
  return std::all_of(data.begin(), data.end(), [](char c) { return c == 0; });
}

bool ReadField(ByteReader& r, std::string* out) {
  absl::string_view v;
  if (!r.ReadU16Prefixed(&v) || v.size() > kMaxAuditFieldBytes) return false;
  out->assign(v.data(), v.size());
  return true;
}

// Parses the body (without its digest) of a frame whose digest matched.
bool ParseBody(absl::string_view frame, absl::string_view body, DecodedFrame* out,
               std::string* why) {
  ByteReader r(body);
  uint8_t version, kind;
  uint64_t sequence, time;
  absl::string_view prev;
  if (!r.ReadU8(&version) || !r.ReadU8(&kind) || !r.ReadU64(&sequence) ||
      !r.ReadBytes(kHashSize, &prev) || !r.ReadU64(&time)) {
    *why = "record body is too short";
    return false;
  }
  if (version != kFormatVersion) {
    *why = absl::StrCat("unsupported audit record version ", version, " (this reader reads 1)");
    return false;
  }
  AuditRecord& rec = out->record;
  rec = AuditRecord();
  rec.sequence = sequence;
  rec.time_us = static_cast<int64_t>(time);
  out->prev_hash.assign(prev.data(), prev.size());
  switch (static_cast<AuditRecordKind>(kind)) {
    case AuditRecordKind::kCall:
    case AuditRecordKind::kAlert: {
      rec.kind = static_cast<AuditRecordKind>(kind);
      uint32_t code;
      absl::string_view context_hash;
      if (!ReadField(r, &rec.request_id) || !ReadField(r, &rec.principal) ||
          !ReadField(r, &rec.peer) || !ReadField(r, &rec.action) || !ReadField(r, &rec.resource) ||
          !ReadField(r, &rec.segment) || !r.ReadU32(&code) || !ReadField(r, &rec.message) ||
          !r.ReadU8Prefixed(&context_hash) ||
          (!context_hash.empty() && context_hash.size() != kHashSize)) {
        *why = "malformed call/alert record fields";
        return false;
      }
      rec.result_code = static_cast<absl::StatusCode>(code);
      rec.context_hash.assign(context_hash.data(), context_hash.size());
      break;
    }
    case AuditRecordKind::kCheckpoint: {
      rec.kind = AuditRecordKind::kCheckpoint;
      uint8_t flags;
      absl::string_view public_key, signature;
      if (!r.ReadU8(&flags) || (flags & ~kCheckpointFlagClosing) != 0 ||
          !r.ReadBytes(crypto::Ed25519KeyPair::kPublicKeySize, &public_key)) {
        *why = "malformed checkpoint fields";
        return false;
      }
      // Everything before the signature is signed: the frame up to here.
      const size_t signed_size = frame.size() - r.remaining() - kHashSize;
      if (!r.ReadBytes(crypto::Ed25519KeyPair::kSignatureSize, &signature)) {
        *why = "malformed checkpoint fields";
        return false;
      }
      rec.closing = (flags & kCheckpointFlagClosing) != 0;
      rec.public_key.assign(public_key.data(), public_key.size());
      out->signature.assign(signature.data(), signature.size());
      out->signed_message = SignatureInput(frame.substr(0, signed_size));
      break;
    }
    default:
      *why = absl::StrCat("unknown audit record kind ", kind);
      return false;
  }
  if (r.remaining() != 0) {
    *why = "record has trailing bytes after its fields";
    return false;
  }
  return true;
}

}  // namespace

std::string EncodeFileHeader(uint32_t file_number) {
  std::string out;
  ByteWriter w(&out);
  w.Bytes(kFileMagic);
  w.U8(kFormatVersion);
  w.U32(file_number);
  return out;
}

absl::Status CheckFileHeader(absl::string_view file, uint32_t file_number) {
  ByteReader r(file);
  absl::string_view magic;
  uint8_t version;
  uint32_t number;
  if (!r.ReadBytes(kFileMagic.size(), &magic) || magic != kFileMagic) {
    return absl::InvalidArgumentError("not a Clavis audit log file (wrong magic)");
  }
  if (!r.ReadU8(&version) || version != kFormatVersion) {
    return absl::InvalidArgumentError(
        "unsupported audit log format version (this reader reads version 1)");
  }
  if (!r.ReadU32(&number)) return absl::InvalidArgumentError("audit log file header is truncated");
  if (number != file_number) {
    return absl::InvalidArgumentError(absl::StrCat("file header says file number ", number,
                                                   " but the file name says ", file_number,
                                                   " (file renamed or moved)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EncodeEventFrame(const AuditRecord& record,
                                             absl::string_view prev_hash) {
  if (record.kind != AuditRecordKind::kCall && record.kind != AuditRecordKind::kAlert) {
    return absl::InvalidArgumentError("only call and alert records can be appended");
  }
  for (const std::string* field :
       {&record.request_id, &record.principal, &record.peer, &record.action, &record.resource,
        &record.segment, &record.message}) {
    if (field->size() > kMaxAuditFieldBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("audit record field longer than ", kMaxAuditFieldBytes, " bytes"));
    }
  }
  if (!record.context_hash.empty() && record.context_hash.size() != kHashSize) {
    return absl::InvalidArgumentError(
        "context_hash must be empty or the 32-byte AuditLog::HashContext value");
  }
  std::string frame(4, '\0');
  ByteWriter w(&frame);
  WriteCommonHeader(w, record.kind, record.sequence, prev_hash, record.time_us);
  w.U16Prefixed(record.request_id);
  w.U16Prefixed(record.principal);
  w.U16Prefixed(record.peer);
  w.U16Prefixed(record.action);
  w.U16Prefixed(record.resource);
  w.U16Prefixed(record.segment);
  w.U32(static_cast<uint32_t>(record.result_code));
  w.U16Prefixed(record.message);
  w.U8Prefixed(record.context_hash);
  return FinishFrame(std::move(frame));
}

absl::StatusOr<std::string> EncodeCheckpointFrame(uint64_t sequence, absl::string_view prev_hash,
                                                  int64_t time_us, bool closing,
                                                  absl::string_view public_key,
                                                  const crypto::SecretBytes& seed) {
  std::string frame(4, '\0');
  ByteWriter w(&frame);
  WriteCommonHeader(w, AuditRecordKind::kCheckpoint, sequence, prev_hash, time_us);
  w.U8(closing ? kCheckpointFlagClosing : 0);
  w.Bytes(public_key);
  // The length prefix is part of the signed bytes, so set it now: the body
  // size is fixed once the signature and digest sizes are added.
  const size_t body_size = frame.size() - 4 + crypto::Ed25519KeyPair::kSignatureSize + kHashSize;
  for (int i = 0; i < 4; ++i) {
    frame[i] = static_cast<char>((body_size >> (8 * (3 - i))) & 0xff);
  }
  absl::StatusOr<std::string> signature = crypto::Ed25519Sign(seed, SignatureInput(frame));
  if (!signature.ok()) return signature.status();
  w.Bytes(*signature);
  return FinishFrame(std::move(frame));
}

FrameResult DecodeFrame(absl::string_view data, bool may_be_torn, DecodedFrame* out,
                        std::string* why) {
  const FrameResult incomplete = may_be_torn ? FrameResult::kTorn : FrameResult::kBad;
  ByteReader r(data);
  uint32_t body_size;
  if (!r.ReadU32(&body_size)) {
    *why = "file ends inside a record's length prefix";
    return incomplete;
  }
  if (body_size < kMinBodySize || body_size > kMaxBodySize) {
    if (AllZero(data)) {
      *why = "file ends in zero bytes where a record should be";
      return incomplete;
    }
    *why =
        absl::StrCat("record length ", body_size, " is outside ", kMinBodySize, "..", kMaxBodySize);
    return FrameResult::kBad;
  }
  absl::string_view body;
  if (!r.ReadBytes(body_size, &body)) {
    *why = absl::StrCat("record of ", body_size, " bytes runs past the end of the file");
    return incomplete;
  }
  const absl::string_view frame = data.substr(0, 4 + body_size);
  const absl::string_view digest = frame.substr(frame.size() - kHashSize);
  if (crypto::Sha256(frame.substr(0, frame.size() - kHashSize)) != digest) {
    if (may_be_torn && AllZero(data.substr(4))) {
      *why = "file ends in zero bytes where a record should be";
      return FrameResult::kTorn;
    }
    *why = "record digest mismatch: a byte of this record was changed";
    return FrameResult::kBad;
  }
  if (!ParseBody(frame, body.substr(0, body.size() - kHashSize), out, why)) {
    return FrameResult::kBad;
  }
  out->digest.assign(digest.data(), digest.size());
  out->size = frame.size();
  return FrameResult::kOk;
}

}  // namespace clavis::kms::audit_internal
