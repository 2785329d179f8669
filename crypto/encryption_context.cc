#include "crypto/encryption_context.h"

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"

namespace clavis::crypto {

absl::Status ValidateEncryptionContext(const EncryptionContext& context) {
  if (context.size() > kMaxContextEntries) {
    return absl::InvalidArgumentError(absl::StrCat("encryption context has ", context.size(),
                                                   " entries; at most ", kMaxContextEntries,
                                                   " are allowed"));
  }
  size_t total = 0;
  for (const auto& [key, value] : context) {
    if (key.empty()) return absl::InvalidArgumentError("encryption context has an empty key");
    if (key.size() > kMaxContextKeyLength) {
      return absl::InvalidArgumentError(absl::StrCat("an encryption context key is longer than ",
                                                     kMaxContextKeyLength, " bytes"));
    }
    if (value.size() > kMaxContextValueLength) {
      // The value may be personal data: name the limit, not the value.
      return absl::InvalidArgumentError(absl::StrCat("an encryption context value is longer than ",
                                                     kMaxContextValueLength, " bytes"));
    }
    total += key.size() + value.size();
  }
  if (total > kMaxContextTotalBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("encryption context is larger than ", kMaxContextTotalBytes, " bytes in all"));
  }
  return absl::OkStatus();
}

std::string CanonicalEncryptionContext(const EncryptionContext& context) {
  size_t size = 4;
  for (const auto& [key, value] : context) size += 8 + key.size() + value.size();
  std::string out;
  out.reserve(size);
  crypto::ByteWriter w(&out);
  w.U32(static_cast<uint32_t>(context.size()));
  // std::map iterates in bytewise (std::string operator<) key order.
  for (const auto& [key, value] : context) {
    w.U32Prefixed(key);
    w.U32Prefixed(value);
  }
  return out;
}

}  // namespace clavis::crypto
