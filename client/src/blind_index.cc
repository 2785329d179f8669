#include "clavis/blind_index.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/src/data_key_cache_core.h"
#include "client/src/sealed_record_format.h"
#include "crypto/encoding.h"
#include "crypto/kdf.h"

namespace clavis {
namespace {

constexpr size_t kMaxIndexNameSize = 64;

bool IsIndexNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlindIndex>> BlindIndex::New(std::shared_ptr<DataKeyCache> cache,
                                                            std::string key, std::string index) {
  if (cache == nullptr) return absl::InvalidArgumentError("data key cache is null");
  if (key.empty() || key.size() > client_internal::kMaxKeyNameSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key name must be 1..", client_internal::kMaxKeyNameSize, " bytes, not ", key.size()));
  }
  if (index.empty() || index.size() > kMaxIndexNameSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "blind index name must be 1..", kMaxIndexNameSize, " bytes, not ", index.size()));
  }
  for (char c : index) {
    if (!IsIndexNameChar(c)) {
      return absl::InvalidArgumentError(
          "blind index name may only hold a-z, 0-9, '_', '.' and '-'");
    }
  }
  return std::unique_ptr<BlindIndex>(
      new BlindIndex(std::move(cache), std::move(key), std::move(index)));
}

BlindIndex::BlindIndex(std::shared_ptr<DataKeyCache> cache, std::string key, std::string index)
    : cache_(std::move(cache)), key_(std::move(key)), index_(std::move(index)) {}

absl::StatusOr<std::string> BlindIndex::Compute(absl::string_view segment,
                                                absl::string_view value) const {
  if (segment.empty() || segment.size() > client_internal::kMaxSegmentSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segment must be 1..", client_internal::kMaxSegmentSize, " bytes, not ", segment.size()));
  }
  absl::StatusOr<std::shared_ptr<const client_internal::CacheEntry>> entry =
      cache_->core().IndexKey(key_, segment, index_);
  if (!entry.ok()) return entry.status();
  return crypto::HmacSha256((*entry)->secret, value);
}

absl::StatusOr<std::string> BlindIndex::ComputeHex(absl::string_view segment,
                                                   absl::string_view value) const {
  absl::StatusOr<std::string> tag = Compute(segment, value);
  if (!tag.ok()) return tag.status();
  return crypto::HexEncode(*tag);
}

}  // namespace clavis
