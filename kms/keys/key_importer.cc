#include "kms/keys/key_importer.h"

#include "absl/strings/str_cat.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyState;

// Imports are for keys of origin EXTERNAL that still have a future.
absl::Status CheckImportable(const clavis::v1::Key& key) {
  if (key.origin() != clavis::v1::EXTERNAL) {
    return absl::FailedPreconditionError(
        absl::StrCat("key ", key.name(), " has origin ", clavis::v1::KeyOrigin_Name(key.origin()),
                     "; only keys created with origin EXTERNAL take imported material "
                     "(clavisctl key create --origin external)"));
  }
  if (key.state() == KeyState::DESTROYED || key.state() == KeyState::PENDING_DESTRUCTION) {
    return absl::FailedPreconditionError(absl::StrCat("key ", key.name(), " is ",
                                                      clavis::v1::KeyState_Name(key.state()),
                                                      "; material cannot be imported into it"));
  }
  return absl::OkStatus();
}

}  // namespace

KeyImporter::KeyImporter(KeyLifecycle* lifecycle, ImportTokenStore* tokens)
    : lifecycle_(lifecycle), tokens_(tokens) {}

absl::StatusOr<IssuedImportToken> KeyImporter::GetImportParameters(
    const KeyName& name, ImportWrappingAlgorithm algorithm, int modulus_bits) {
  auto key = lifecycle_->GetKey(name);
  if (!key.ok()) return key.status();
  if (auto s = CheckImportable(*key); !s.ok()) return s;
  return tokens_->Issue(name, algorithm, modulus_bits);
}

absl::StatusOr<clavis::v1::Key> KeyImporter::Import(const KeyName& name, absl::string_view token,
                                                    ImportWrappingAlgorithm algorithm,
                                                    absl::string_view wrapped,
                                                    const ImportTarget& target) {
  auto key = lifecycle_->GetKey(name);
  if (!key.ok()) return key.status();
  if (auto s = CheckImportable(*key); !s.ok()) return s;
  auto private_key = tokens_->Redeem(token, name, algorithm);
  if (!private_key.ok()) return private_key.status();
  // A wrong size is refused before any decryption and does not count
  // against the token; a failed unwrap does.
  if (auto s = CheckWrappedSize(**private_key, algorithm, wrapped); !s.ok()) {
    tokens_->Release(token);
    return s;
  }
  auto material = UnwrapImportedKeyMaterial(**private_key, algorithm, wrapped);
  if (!material.ok()) {
    tokens_->RecordFailure(token);
    return material.status();
  }
  auto imported = lifecycle_->ImportKeyMaterial(name, *material, target);
  // A refused import (wrong material for the version...) leaves the token
  // usable: the caller may retry with the right material before expiry.
  if (imported.ok()) {
    tokens_->Consume(token);
  } else {
    tokens_->Release(token);
  }
  return imported;
}

}  // namespace clavis::kms
