#include "crypto/password_kdf.h"

#include <sodium.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/internal/sodium_init.h"

namespace clavis::crypto {

// The argon2id-specific bounds (crypto_pwhash_OPSLIMIT_MIN and friends are
// the same values for the default algorithm, but could follow a future
// default).
static_assert(Argon2idParams::kSaltSize == crypto_pwhash_argon2id_SALTBYTES);

absl::StatusOr<SecretBytes> Argon2id(const SecretBytes& passphrase, absl::string_view salt,
                                     const Argon2idParams& params, size_t output_size) {
  if (salt.size() != Argon2idParams::kSaltSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Argon2id salt must be ", Argon2idParams::kSaltSize, " bytes, got ", salt.size()));
  }
  if (params.ops_limit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
      params.ops_limit > crypto_pwhash_argon2id_OPSLIMIT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("Argon2id ops_limit must be ", crypto_pwhash_argon2id_OPSLIMIT_MIN, " to ",
                     crypto_pwhash_argon2id_OPSLIMIT_MAX, ", got ", params.ops_limit));
  }
  if (params.mem_limit_bytes < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
      params.mem_limit_bytes > crypto_pwhash_argon2id_MEMLIMIT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Argon2id mem_limit_bytes must be ", crypto_pwhash_argon2id_MEMLIMIT_MIN, " to ",
        crypto_pwhash_argon2id_MEMLIMIT_MAX, ", got ", params.mem_limit_bytes));
  }
  if (output_size < crypto_pwhash_argon2id_BYTES_MIN ||
      output_size > crypto_pwhash_argon2id_BYTES_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("Argon2id output size must be ", crypto_pwhash_argon2id_BYTES_MIN, " to ",
                     crypto_pwhash_argon2id_BYTES_MAX, " bytes, got ", output_size));
  }
  if (passphrase.size() > crypto_pwhash_argon2id_PASSWD_MAX) {
    return absl::InvalidArgumentError("Argon2id passphrase is too long");
  }

  internal::EnsureSodiumInitialized();
  static const char kEmpty = 0;
  const char* passwd =
      passphrase.empty() ? &kEmpty : reinterpret_cast<const char*>(passphrase.data());
  SecretBytes out(output_size);
  // With the inputs validated above, libsodium fails only when it cannot
  // allocate mem_limit_bytes.
  if (crypto_pwhash(out.data(), out.size(), passwd, passphrase.size(),
                    reinterpret_cast<const unsigned char*>(salt.data()), params.ops_limit,
                    static_cast<size_t>(params.mem_limit_bytes),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("Argon2id could not allocate ", params.mem_limit_bytes, " bytes of memory"));
  }
  return out;
}

}  // namespace clavis::crypto
