#include "client/src/canonical_context.h"

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"

namespace clavis::client_internal {
namespace {

constexpr size_t kMaxEntries = 64;
constexpr size_t kMaxKeySize = 256;
constexpr size_t kMaxValueSize = 1024;
constexpr size_t kMaxTotalSize = 8192;

}  // namespace

absl::Status ValidateEncryptionContext(const EncryptionContext& context) {
  if (context.size() > kMaxEntries) {
    return absl::InvalidArgumentError(absl::StrCat("encryption context has ", context.size(),
                                                   " entries; at most ", kMaxEntries,
                                                   " are allowed"));
  }
  size_t total = 0;
  for (const auto& [key, value] : context) {
    if (key.empty()) return absl::InvalidArgumentError("encryption context has an empty key");
    if (key.size() > kMaxKeySize) {
      return absl::InvalidArgumentError(
          absl::StrCat("an encryption context key is longer than ", kMaxKeySize, " bytes"));
    }
    if (value.size() > kMaxValueSize) {
      // Values may be personal data: name the limit, not the value.
      return absl::InvalidArgumentError(
          absl::StrCat("an encryption context value is longer than ", kMaxValueSize, " bytes"));
    }
    total += key.size() + value.size();
  }
  if (total > kMaxTotalSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("encryption context is larger than ", kMaxTotalSize, " bytes in all"));
  }
  return absl::OkStatus();
}

std::string CanonicalEncryptionContext(const EncryptionContext& context) {
  std::string out;
  crypto::ByteWriter w(&out);
  w.U32(static_cast<uint32_t>(context.size()));
  // std::map iterates in bytewise (std::string operator<) key order.
  for (const auto& [key, value] : context) {
    w.U32Prefixed(key);
    w.U32Prefixed(value);
  }
  return out;
}

}  // namespace clavis::client_internal
