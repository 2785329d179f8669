// BlindIndex: find a record by the exact value of an encrypted field (e.g.
// an email address) without decrypting anything.
//
//   auto email_index = clavis::BlindIndex::New(cache, "tenants/acme/keys/crm", "email");
//   std::string tag = *(*email_index)->ComputeHex("acme/customers", "ada@example.com");
//   // store `tag` in an indexed column beside the encrypted record; to look
//   // up, compute it again from the searched value and query by it.
//
// The tag is HMAC-SHA256 of the value under a key derived by clavisd for
// (key, segment, index name) (docs/FORMAT.md "Blind index key"); the key is
// fetched once per segment through the DataKeyCache (so it is evicted on
// revocation like data keys) and never leaves secure memory.
//
// What it reveals: equal values in one segment and index give equal tags,
// so whoever sees the tags learns which records share a value, and whoever
// holds the index key can test guesses (a dictionary attack on low-entropy
// values such as phone numbers). Hence a separate permission
// (DeriveBlindIndexKey) and one key per segment and index. Normalize values
// before indexing (e.g. trim and lower-case emails) — tags are byte-exact.
// Tags stay valid across segment rotation; destroying the segment makes
// them unrecomputable.
//
// Thread safety: immutable after New; Compute may be called concurrently.
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_BLIND_INDEX_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_BLIND_INDEX_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clavis/data_key_cache.h"

namespace clavis {

class BlindIndex {
 public:
  // `index` names the index, 1..64 bytes of [a-z0-9_.-]. InvalidArgument for
  // a null cache, a bad key name or index name.
  static absl::StatusOr<std::unique_ptr<BlindIndex>> New(std::shared_ptr<DataKeyCache> cache,
                                                         std::string key, std::string index);

  // The 32-byte tag of `value` in `segment`. Errors of the key source pass
  // through (PERMISSION_DENIED without DeriveBlindIndexKey,
  // FAILED_PRECONDITION for a disabled key or revoked segment).
  absl::StatusOr<std::string> Compute(absl::string_view segment, absl::string_view value) const;
  // The same, as 64 lower-case hex digits.
  absl::StatusOr<std::string> ComputeHex(absl::string_view segment, absl::string_view value) const;

 private:
  BlindIndex(std::shared_ptr<DataKeyCache> cache, std::string key, std::string index);
  const std::shared_ptr<DataKeyCache> cache_;
  const std::string key_;
  const std::string index_;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_BLIND_INDEX_H_
