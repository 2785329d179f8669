// clavis-recover: decrypting customer data offline, with no clavisd and no
// store: only an escrow bundle (clavisctl escrow export) and the customer's
// own copies of their imported key material (docs/BYOK.md, "Leaving with
// your data").
//
// Inputs it opens:
//   record  a sealed record made by the SDK's RecordEncryptor (docs/FORMAT.md
//           "Sealed record"); needs the encryption context and the
//           application's associated data it was sealed with
//   blob    a ciphertext blob of clavisd (Encrypt's result, or a data key
//           from GenerateDataKey); needs its encryption context
//
// Everything here is pure: the CLI (recover_main.cc) reads the files.
#ifndef CLAVIS_TOOLS_RECOVER_RECOVER_H_
#define CLAVIS_TOOLS_RECOVER_RECOVER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"
#include "kms/escrow/offline_recovery.h"

namespace clavis::recover {

enum class InputKind { kRecord, kBlob };

// The plaintext of `input` (a sealed record or a ciphertext blob).
absl::StatusOr<crypto::SecretBytes> Recover(const kms::OfflineRecovery& recovery, InputKind kind,
                                            absl::string_view input,
                                            const kms::EncryptionContext& context,
                                            absl::string_view associated_data);

}  // namespace clavis::recover

#endif  // CLAVIS_TOOLS_RECOVER_RECOVER_H_
