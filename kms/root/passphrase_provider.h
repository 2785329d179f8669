// PassphraseRootKeyProvider: the root key is derived from an operator's
// passphrase with Argon2id, so no key is ever stored on disk.
//
//   root key = Argon2id(passphrase, salt, ops_limit, mem_limit_bytes), 32 bytes
//
// The salt, the Argon2id parameters and the root key's key check value live
// in a small params file beside the data, <data_dir>/root-passphrase.params
// (docs/FORMAT.md, "Root passphrase params file"):
//
//   clavis-root-passphrase v1
//   kdf=argon2id
//   salt=<16 bytes, standard base64>
//   ops_limit=<decimal>
//   mem_limit_bytes=<decimal>
//   kcv=<8 lower-case hex digits>
//   sha256=<64 lower-case hex digits: SHA-256 of all the lines above>
//
// The first start with create_if_missing creates the file with a fresh random
// salt. Every later start re-derives the key and compares its key check value
// with the recorded one in constant time: a wrong passphrase fails Open() with
// PermissionDenied("wrong root passphrase ...") instead of producing a key
// that would fail later, record by record. The sha256 line catches accidental
// damage (DataLoss) so it is not mistaken for a wrong passphrase; it is not a
// security mechanism (anyone who can edit the file can recompute it, and an
// edited salt or parameter just turns into "wrong root passphrase").
//
// The params file is not secret in the sense a key file is, but together with
// the kcv it lets an attacker test passphrase guesses offline (as any wrapped
// blob does), so it is created 0600 in a 0700 directory and the passphrase
// must be strong. Losing the file or the passphrase loses every key.
//
// The passphrase bytes are used exactly as given: the caller (the server
// reading an environment variable or a file descriptor) decides whether a
// trailing newline is part of it.
//
// Thread safety: immutable after Open(); all methods may be called
// concurrently. Open() itself takes as long as one Argon2id run (about a
// second with the default parameters) and as much memory.
#ifndef CLAVIS_KMS_ROOT_PASSPHRASE_PROVIDER_H_
#define CLAVIS_KMS_ROOT_PASSPHRASE_PROVIDER_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/password_kdf.h"
#include "crypto/secret_bytes.h"
#include "kms/root/root_key_provider.h"
#include "kms/root/root_key_wrapping.h"

namespace clavis::kms {

struct PassphraseRootKeyOptions {
  // Create the params file (new salt, new root key) if it does not exist;
  // otherwise a missing file is NotFound. Only for the very first start: on
  // an existing data directory a lost params file must be restored from
  // backup, not recreated, or nothing stored will unwrap.
  bool create_if_missing = false;
  // Argon2id cost for a newly created params file (ignored when the file
  // exists: its recorded parameters are used). The defaults, ops=3 and
  // 256 MiB, are for production; tests lower them to run fast.
  crypto::Argon2idParams new_file_params;
};

class PassphraseRootKeyProvider final : public RootKeyProvider {
 public:
  // First line of a version-1 params file, without its newline.
  static constexpr absl::string_view kHeaderV1 = "clavis-root-passphrase v1";
  // The params file's name inside the data directory.
  static constexpr absl::string_view kParamsFileName = "root-passphrase.params";

  // <data_dir>/root-passphrase.params
  static std::string ParamsPathIn(absl::string_view data_dir);

  // Derives the root key from `passphrase` (non-empty, else InvalidArgument)
  // and the params file at `params_path`. Errors:
  //  - NotFound: no params file and !options.create_if_missing;
  //  - PermissionDenied("wrong root passphrase ..."): the derived key's check
  //    value differs from the recorded one;
  //  - InvalidArgument: not a v1 params file (other file, other version);
  //  - DataLoss: a v1 params file that is damaged (checksum, truncation,
  //    malformed line);
  //  - ResourceExhausted: Argon2id could not get the memory it asks for.
  // No message contains passphrase or key bytes.
  static absl::StatusOr<std::unique_ptr<PassphraseRootKeyProvider>> Open(
      const std::string& params_path, const crypto::SecretBytes& passphrase,
      const PassphraseRootKeyOptions& options);

  absl::StatusOr<std::string> Wrap(const crypto::SecretBytes& plaintext,
                                   absl::string_view associated_data) override;
  absl::StatusOr<crypto::SecretBytes> Unwrap(absl::string_view wrapped,
                                             absl::string_view associated_data) override;
  // "passphrase:<params path> argon2id(ops=3,mem=256MiB) kcv=<8 hex digits>".
  std::string Describe() const override;

 private:
  PassphraseRootKeyProvider(std::string params_path, crypto::Argon2idParams params,
                            RootKeyWrapper wrapper)
      : params_path_(std::move(params_path)), params_(params), wrapper_(std::move(wrapper)) {}

  const std::string params_path_;
  const crypto::Argon2idParams params_;
  const RootKeyWrapper wrapper_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ROOT_PASSPHRASE_PROVIDER_H_
