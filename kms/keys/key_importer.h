// KeyImporter: the BYOK import flow (docs/BYOK.md) over the token store, the
// unwrap and the key lifecycle: GetImportParameters hands out a wrapping key
// for a key of origin EXTERNAL; Import unwraps the customer's material with
// it and stores it.
//
// Errors, each distinct (FailedPrecondition unless said otherwise):
//  - the key is not EXTERNAL, is destroyed or pending destruction;
//  - the token expired, was used, was discarded, or belongs to another key
//    or algorithm (ImportTokenStore); malformed or unknown: InvalidArgument;
//  - the wrapped bytes have the wrong length (InvalidArgument, naming the
//    expected length);
//  - the wrap does not open (InvalidArgument, one message for every cause:
//    no padding oracle; the token is discarded after a few of these);
//  - the material is not the version's own (re-import) or is already
//    another version's (new version).
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_KEYS_KEY_IMPORTER_H_
#define CLAVIS_KMS_KEYS_KEY_IMPORTER_H_

#include <string>

#include "absl/status/statusor.h"
#include "clavis/v1/resources.pb.h"
#include "kms/keys/import_tokens.h"
#include "kms/keys/key_import.h"
#include "kms/keys/key_lifecycle.h"

namespace clavis::kms {

class KeyImporter {
 public:
  // REQUIRES: both outlive the importer.
  KeyImporter(KeyLifecycle* lifecycle, ImportTokenStore* tokens);

  absl::StatusOr<IssuedImportToken> GetImportParameters(const KeyName& key,
                                                        ImportWrappingAlgorithm algorithm,
                                                        int modulus_bits);

  absl::StatusOr<clavis::v1::Key> Import(const KeyName& key, absl::string_view token,
                                         ImportWrappingAlgorithm algorithm,
                                         absl::string_view wrapped, const ImportTarget& target);

 private:
  KeyLifecycle* const lifecycle_;
  ImportTokenStore* const tokens_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_KEY_IMPORTER_H_
