#include "clavis/data_key_source.h"

namespace clavis {

std::vector<absl::StatusOr<SecretBytes>> DataKeySource::BatchDecryptDataKeys(
    absl::Span<const DataKeyRequest> requests) {
  std::vector<absl::StatusOr<SecretBytes>> results;
  results.reserve(requests.size());
  for (const DataKeyRequest& r : requests) {
    results.push_back(DecryptDataKey(r.key, r.segment, r.ciphertext_blob, r.context));
  }
  return results;
}

absl::StatusOr<SecretBytes> DataKeySource::DeriveBlindIndexKey(absl::string_view key,
                                                               absl::string_view segment,
                                                               absl::string_view index) {
  return absl::UnimplementedError("this data key source does not derive blind index keys");
}

}  // namespace clavis
