// The audit log (docs/FORMAT.md "Audit log (v1)"): record frames and whole
// log files, read by the writer's crash recovery, the offline verifier
// (clavisctl audit verify) and the query helpers. A log may have been
// tampered with: that is what the verifier is for.
//
// For every input:
//  - the frames after a file header are decoded one by one: the decoder must
//    not crash; kTorn only when allowed; a call or alert record re-encodes
//    to exactly its bytes; a checkpoint's signature input is what it signs;
//  - the input is written as audit-000001.log and VerifyAuditLog run on it
//    with the fixture signing key: a report, never a crash, and "clean"
//    only for a log whose frames all decode and that ends in a closing
//    checkpoint.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "crypto/ed25519.h"
#include "kms/audit/audit_verifier.h"
#include "kms/audit/internal/audit_format.h"
#include "kms/audit/internal/record_codec.h"
#include "tests/fuzz/fuzz_fixtures.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {
namespace {

namespace ai = kms::audit_internal;

const std::string& PublicKey() {
  static const std::string* key = [] {
    auto pair = crypto::Ed25519KeyPair::FromSeed(FixtureSigningSeed());
    FUZZ_CHECK(pair.ok());
    return new std::string(pair->public_key);
  }();
  return *key;
}

// Decodes the frames of one file body; returns whether all decoded and the
// last was a closing checkpoint.
bool CheckFrames(absl::string_view body) {
  bool closed = false;
  while (!body.empty()) {
    ai::DecodedFrame frame, frame_if_torn;
    std::string why, why_if_torn;
    const ai::FrameResult strict = ai::DecodeFrame(body, false, &frame, &why);
    const ai::FrameResult lenient = ai::DecodeFrame(body, true, &frame_if_torn, &why_if_torn);
    // Allowing a torn tail only turns some kBad into kTorn.
    FUZZ_CHECK(strict != ai::FrameResult::kTorn);
    FUZZ_CHECK((strict == ai::FrameResult::kOk) == (lenient == ai::FrameResult::kOk));
    if (strict != ai::FrameResult::kOk) {
      FUZZ_CHECK(!why.empty() && !why_if_torn.empty());
      return false;
    }
    FUZZ_CHECK(frame.size > 0 && frame.size <= body.size() && frame.size == frame_if_torn.size);
    if (frame.record.kind == kms::AuditRecordKind::kCheckpoint) {
      FUZZ_CHECK(frame.signature.size() == crypto::Ed25519KeyPair::kSignatureSize);
    } else {
      // Encoder and decoder agree byte for byte: the chain hashes the
      // verifier recomputes are over exactly these bytes.
      auto again = ai::EncodeEventFrame(frame.record, frame.prev_hash);
      FUZZ_CHECK(again.ok());
      FUZZ_CHECK(*again == body.substr(0, frame.size));
    }
    closed = frame.record.kind == kms::AuditRecordKind::kCheckpoint && frame.record.closing;
    body.remove_prefix(frame.size);
  }
  return closed;
}

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clavis::fuzz;
  const absl::string_view input = AsView(data, size);
  bool frames_ok = false;
  if (clavis::kms::audit_internal::CheckFileHeader(input, 1).ok()) {
    frames_ok = CheckFrames(input.substr(clavis::kms::audit_internal::kFileHeaderSize));
  } else {
    (void)CheckFrames(input);
  }

  const std::string path = ScratchDir() + "/audit-000001.log";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(input.data(), static_cast<std::streamsize>(input.size()));
    FUZZ_CHECK(out.good());
  }
  auto report = clavis::kms::VerifyAuditLog(ScratchDir(), PublicKey());
  FUZZ_CHECK(report.ok());
  (void)report->ToString();
  if (report->ok()) {
    FUZZ_CHECK(frames_ok);
    FUZZ_CHECK(report->cleanly_closed);
  }
  return 0;
}
