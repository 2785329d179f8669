// EscrowExporter: writes the escrow bundle (escrow_bundle.h) of one key of
// origin EXTERNAL from the store, page by page, so a key with a million
// segments streams in constant memory. It copies wrapped segment keys as
// stored: nothing is unwrapped, so an export needs neither the root key's
// cooperation beyond reading nor the material to be present (material that
// expired, or a version that was destroyed, still exports what the customer's
// own copy can open).
//
// Who may export, and the M-of-N approval it needs, are the transport's and
// ApprovalGate's business; this class only refuses what cannot be exported.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_ESCROW_ESCROW_EXPORTER_H_
#define CLAVIS_KMS_ESCROW_ESCROW_EXPORTER_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "kms/keys/clock.h"
#include "kms/keys/key_repository.h"

namespace clavis::kms {

// Receives the bundle in chunks of whole lines; an error stops the export.
using EscrowSink = std::function<absl::Status(std::string chunk)>;

class EscrowExporter {
 public:
  // REQUIRES: both outlive the exporter.
  EscrowExporter(KeyRepository* repository, const Clock* clock);

  // OK if `key` can be exported: it exists (NotFound), has origin EXTERNAL
  // (a generated key's material never leaves clavisd: FailedPrecondition),
  // and is not destroyed.
  absl::Status CheckExportable(const KeyName& key);

  // Streams the bundle of `key` to `sink`, about `chunk_bytes` at a time.
  absl::Status Export(const KeyName& key, const EscrowSink& sink, size_t chunk_bytes = 64 << 10);

 private:
  KeyRepository* const repository_;
  const Clock* const clock_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ESCROW_ESCROW_EXPORTER_H_
