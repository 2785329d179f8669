// KeyFileRootKeyProvider: the root key is 32 random bytes kept in a file.
//
// FOR DEVELOPMENT AND TESTS ONLY. The file holds the root key in plaintext:
// anyone who can read it (or a backup of it) can unwrap every tenant key.
// Production deployments use the passphrase provider or a PKCS#11 token.
//
// File format (docs/FORMAT.md, "Root key file"), exactly 64 bytes:
//
//   clavis-root-key v1\n
//   <the 32 key bytes in standard base64 with padding, 44 characters>\n
//
// Such a file can also be made by hand:
//   (umask 077; { echo clavis-root-key v1; head -c 32 /dev/urandom | base64; } > root.key)
//
// Open() refuses a file that group or others may read or write
// (FailedPrecondition, telling the user to chmod 600), and a file that is not
// exactly the format above: InvalidArgument for a file that is not a v1 root
// key file (wrong header or version, too large), DataLoss for a v1 file whose
// body is damaged (truncated, bad base64, wrong key length, extra bytes).
// No message ever contains key bytes.
//
// Thread safety: immutable after Open(); all methods may be called
// concurrently.
#ifndef CLAVIS_KMS_ROOT_KEY_FILE_PROVIDER_H_
#define CLAVIS_KMS_ROOT_KEY_FILE_PROVIDER_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"
#include "kms/root/root_key_provider.h"
#include "kms/root/root_key_wrapping.h"

namespace clavis::kms {

class KeyFileRootKeyProvider final : public RootKeyProvider {
 public:
  // First line of a version-1 key file, without its newline.
  static constexpr absl::string_view kHeaderV1 = "clavis-root-key v1";

  // Opens the key file at `path`. If it does not exist: with
  // `create_if_missing`, creates it with a fresh random key (parent
  // directories made 0700, file 0600, written atomically, never replacing a
  // file another process created meanwhile) and logs a warning that this is
  // a development-only setup; otherwise NotFound.
  static absl::StatusOr<std::unique_ptr<KeyFileRootKeyProvider>> Open(const std::string& path,
                                                                      bool create_if_missing);

  absl::StatusOr<std::string> Wrap(const crypto::SecretBytes& plaintext,
                                   absl::string_view associated_data) override;
  absl::StatusOr<crypto::SecretBytes> Unwrap(absl::string_view wrapped,
                                             absl::string_view associated_data) override;
  // "key-file:<path> kcv=<8 hex digits>".
  std::string Describe() const override;

 private:
  KeyFileRootKeyProvider(std::string path, RootKeyWrapper wrapper)
      : path_(std::move(path)), wrapper_(std::move(wrapper)) {}

  const std::string path_;
  const RootKeyWrapper wrapper_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ROOT_KEY_FILE_PROVIDER_H_
