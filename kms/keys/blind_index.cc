#include "kms/keys/blind_index.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"
#include "crypto/kdf.h"

namespace clavis::kms {
namespace {

bool IsIndexNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

constexpr size_t kSegmentKeySize = 32;

}  // namespace

absl::Status ValidateBlindIndexName(absl::string_view index) {
  if (index.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("index name is empty; it must be 1-",
                                                   kMaxBlindIndexNameLength,
                                                   " bytes of a-z, 0-9, '_', '.' and '-'"));
  }
  if (index.size() > kMaxBlindIndexNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "index name of ", index.size(), " bytes is longer than ", kMaxBlindIndexNameLength,
        " bytes; it must be 1-", kMaxBlindIndexNameLength, " bytes of a-z, 0-9, '_', '.' and '-'"));
  }
  for (char c : index) {
    if (!IsIndexNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "index name (", index.size(), " bytes) may contain only a-z, 0-9, '_', '.' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<crypto::SecretBytes> DeriveBlindIndexKeyFromSegmentKey(
    const crypto::SecretBytes& segment_key_v1, const KeyName& key, absl::string_view segment,
    absl::string_view index) {
  if (auto s = ValidateBlindIndexName(index); !s.ok()) return s;
  if (auto s = ValidateSegment(segment); !s.ok()) return s;
  if (segment_key_v1.size() != kSegmentKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment key is ", segment_key_v1.size(), " bytes, not ", kSegmentKeySize));
  }
  std::string info;
  crypto::ByteWriter w(&info);
  w.Bytes(kBlindIndexInfoLabel);
  w.U16Prefixed(key.ToString());
  w.U16Prefixed(segment);
  w.U16Prefixed(index);
  return crypto::HkdfSha256(segment_key_v1, /*salt=*/"", info, kBlindIndexKeySize);
}

}  // namespace clavis::kms
