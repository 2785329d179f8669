#include "kms/audit/audit_query.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "crypto/encoding.h"
#include "kms/audit/internal/audit_format.h"
#include "kms/audit/internal/log_files.h"
#include "kms/audit/internal/record_codec.h"

namespace clavis::kms {
namespace {

// Length of the valid UTF-8 sequence at the start of `s`, or 0.
size_t Utf8SequenceLength(absl::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xc0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;  // overlong
    if (c == 0xed && b(1) > 0x9f) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xf4 && b(1) > 0x8f) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  while (!s.empty()) {
    const unsigned char c = static_cast<unsigned char>(s[0]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (c < 0x20) {
      absl::StrAppendFormat(out, "\\u%04x", c);
    } else {
      size_t n = Utf8SequenceLength(s);
      if (n == 0) {
        out->append("\\ufffd");
        n = 1;
      } else {
        out->append(s.data(), n);
      }
      s.remove_prefix(n);
      continue;
    }
    s.remove_prefix(1);
  }
  out->push_back('"');
}

void AppendField(std::string* out, absl::string_view name, absl::string_view value) {
  absl::StrAppend(out, ",\"", name, "\":");
  AppendJsonString(out, value);
}

}  // namespace

bool AuditFilter::Matches(const AuditRecord& r) const {
  if (r.kind == AuditRecordKind::kCheckpoint && !include_checkpoints) return false;
  if (principal && r.principal != *principal) return false;
  if (resource && r.resource != *resource) return false;
  if (segment && r.segment != *segment) return false;
  if (action && r.action != *action) return false;
  if (context_hash && r.context_hash != *context_hash) return false;
  if (from_time_us && r.time_us < *from_time_us) return false;
  if (to_time_us && r.time_us >= *to_time_us) return false;
  return true;
}

absl::Status ForEachAuditRecord(const std::string& dir, const AuditFilter& filter,
                                const std::function<bool(const AuditRecord&)>& visit) {
  absl::StatusOr<std::vector<audit_internal::LogFileRef>> files = audit_internal::ListLogFiles(dir);
  if (!files.ok()) return files.status();
  for (size_t i = 0; i < files->size(); ++i) {
    const audit_internal::LogFileRef& ref = (*files)[i];
    const bool newest = i + 1 == files->size();
    absl::StatusOr<std::string> data = audit_internal::ReadWholeFile(ref.path);
    if (!data.ok()) return data.status();
    if (data->size() < audit_internal::kFileHeaderSize && newest) break;  // torn header
    if (absl::Status s = audit_internal::CheckFileHeader(*data, ref.number); !s.ok()) {
      return absl::DataLossError(absl::StrCat(ref.name, ": ", s.message()));
    }
    uint64_t offset = audit_internal::kFileHeaderSize;
    while (offset < data->size()) {
      audit_internal::DecodedFrame frame;
      std::string why;
      audit_internal::FrameResult result = audit_internal::DecodeFrame(
          absl::string_view(*data).substr(offset), newest, &frame, &why);
      if (result == audit_internal::FrameResult::kTorn) break;
      if (result == audit_internal::FrameResult::kBad) {
        return absl::DataLossError(absl::StrCat(ref.name, " offset ", offset, ": ", why));
      }
      offset += frame.size;
      if (filter.Matches(frame.record) && !visit(frame.record)) return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

std::string AuditRecordToJson(const AuditRecord& r) {
  std::string out =
      absl::StrCat("{\"sequence\":", r.sequence, ",\"time\":\"",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(r.time_us),
                                    absl::UTCTimeZone()),
                   "\",\"time_us\":", r.time_us, ",\"kind\":\"", AuditRecordKindName(r.kind), "\"");
  if (r.kind == AuditRecordKind::kCheckpoint) {
    absl::StrAppend(&out, ",\"closing\":", r.closing ? "true" : "false", ",\"public_key\":\"",
                    crypto::HexEncode(r.public_key), "\"}");
    return out;
  }
  AppendField(&out, "request_id", r.request_id);
  AppendField(&out, "principal", r.principal);
  AppendField(&out, "peer", r.peer);
  AppendField(&out, "action", r.action);
  AppendField(&out, "resource", r.resource);
  AppendField(&out, "segment", r.segment);
  absl::StrAppend(&out, ",\"result\":{\"code\":\"", absl::StatusCodeToString(r.result_code),
                  "\",\"message\":");
  AppendJsonString(&out, r.message);
  out.push_back('}');
  if (!r.context_hash.empty()) {
    absl::StrAppend(&out, ",\"context_hash\":\"", crypto::HexEncode(r.context_hash), "\"");
  }
  out.push_back('}');
  return out;
}

absl::Status ExportAuditJsonLines(const std::string& dir, const AuditFilter& filter,
                                  std::ostream* out) {
  absl::Status status = ForEachAuditRecord(dir, filter, [out](const AuditRecord& r) {
    *out << AuditRecordToJson(r) << '\n';
    return out->good();
  });
  if (status.ok() && !out->good()) return absl::InternalError("writing the JSON export failed");
  return status;
}

}  // namespace clavis::kms
