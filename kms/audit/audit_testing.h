// Helpers shared by the audit tests: temp dirs, options, raw file surgery.
#ifndef CLAVIS_KMS_AUDIT_AUDIT_TESTING_H_
#define CLAVIS_KMS_AUDIT_AUDIT_TESTING_H_

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_log.h"
#include "kms/audit/internal/audit_format.h"
#include "kms/audit/internal/record_codec.h"

namespace clavis::kms::audit_testing {

inline std::string NewTempDir(absl::string_view name) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/audit_", name, "_",
                                 crypto::HexEncode(crypto::RandomBytes(6)));
  std::filesystem::remove_all(dir);
  return dir;
}

inline AuditLogOptions TestOptions(const std::string& dir, const crypto::Ed25519KeyPair& pair) {
  AuditLogOptions options;
  options.dir = dir;
  options.signing_seed = pair.seed.Clone();
  options.context_key = crypto::RandomSecret(32);
  options.checkpoint_every_records = 4;
  options.checkpoint_interval = absl::InfiniteDuration();
  options.flush_interval = absl::Milliseconds(10);
  return options;
}

inline AuditRecord Call(int i) {
  AuditRecord r;
  r.request_id = absl::StrCat("req-", i);
  r.principal = i % 2 == 0 ? "alice" : "bob";
  r.peer = "ipv4:10.0.0.7:51234";
  r.action = i % 3 == 0 ? "Decrypt" : "GenerateDataKey";
  r.resource = absl::StrCat("tenants/t/keys/k", i % 4);
  r.segment = "eu";
  return r;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::string& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::string FirstFile(const std::string& dir) { return dir + "/audit-000001.log"; }

struct FrameInfo {
  size_t offset;
  size_t size;
  uint64_t sequence;
  AuditRecordKind kind;
};

// The frames of an intact file, in order.
inline std::vector<FrameInfo> Frames(const std::string& file) {
  std::vector<FrameInfo> out;
  size_t offset = audit_internal::kFileHeaderSize;
  while (offset < file.size()) {
    audit_internal::DecodedFrame f;
    std::string why;
    if (audit_internal::DecodeFrame(absl::string_view(file).substr(offset), false, &f, &why) !=
        audit_internal::FrameResult::kOk) {
      ADD_FAILURE() << "bad frame at " << offset << ": " << why;
      break;
    }
    out.push_back({offset, f.size, f.record.sequence, f.record.kind});
    offset += f.size;
  }
  return out;
}

// Recomputes a frame's digest, as a forger who edited it would.
inline void FixDigest(std::string* file, const FrameInfo& f) {
  const size_t digest_at = f.offset + f.size - audit_internal::kHashSize;
  file->replace(digest_at, audit_internal::kHashSize,
                crypto::Sha256(absl::string_view(*file).substr(f.offset, f.size - 32)));
}

}  // namespace clavis::kms::audit_testing

#endif  // CLAVIS_KMS_AUDIT_AUDIT_TESTING_H_
