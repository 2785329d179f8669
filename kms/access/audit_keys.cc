#include "kms/access/audit_keys.h"

#include "crypto/random.h"

namespace clavis::kms::access {
namespace {

constexpr char kAssociatedData[] = "clavis audit keys v1";
const std::string& StoreKey() {
  static const std::string* key = new std::string(std::string("m\0audit-keys", 12));
  return *key;
}

absl::StatusOr<AuditKeys> Split(const crypto::SecretBytes& both) {
  if (both.size() != 64) return absl::DataLossError("stored audit keys have the wrong size");
  return AuditKeys{crypto::SecretBytes::CopyOf(both.view().substr(0, 32)),
                   crypto::SecretBytes::CopyOf(both.view().substr(32, 32))};
}

}  // namespace

absl::StatusOr<AuditKeys> LoadOrCreateAuditKeys(Store* store, RootKeyProvider* root) {
  auto stored = store->Get(StoreKey());
  if (!stored.ok()) return stored.status();
  if (stored->has_value()) {
    auto both = root->Unwrap(**stored, kAssociatedData);
    if (!both.ok()) return both.status();
    return Split(*both);
  }
  crypto::SecretBytes both = crypto::RandomSecret(64);
  auto wrapped = root->Wrap(both, kAssociatedData);
  if (!wrapped.ok()) return wrapped.status();
  WriteBatch batch;
  batch.Expect(StoreKey(), std::nullopt).Put(StoreKey(), *wrapped);
  if (auto s = store->Commit(batch); !s.ok()) return s;
  return Split(both);
}

}  // namespace clavis::kms::access
