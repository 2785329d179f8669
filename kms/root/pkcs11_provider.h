// Pkcs11RootKeyProvider: the root key is a non-extractable AES-256 key
// inside a PKCS#11 token (an HSM; SoftHSM2 in tests and for trying it), and
// every wrap and unwrap under it runs inside the token. The root key never
// exists in this process's memory; the wrapped tenant keys do, once
// unwrapped (SECURITY.md).
//
// The token is found by its label in a module loaded from `module_path`
// (dlopen; e.g. /usr/lib/softhsm/libsofthsm2.so), logged in to as the normal
// user with a PIN, and the key is the one secret key object with CKA_LABEL
// `key_label`. Open() refuses (FailedPrecondition, saying which attribute is
// wrong) a key that is not exactly what a root key must be:
//   CKA_KEY_TYPE CKK_AES, CKA_VALUE_LEN 32, CKA_TOKEN true (persistent),
//   CKA_PRIVATE true (usable only after login), CKA_SENSITIVE true,
//   CKA_EXTRACTABLE false, CKA_ENCRYPT and CKA_DECRYPT true.
// A key that was once extractable or not sensitive (CKA_NEVER_EXTRACTABLE
// or CKA_ALWAYS_SENSITIVE false, e.g. imported) is accepted with a warning:
// copies of it may exist outside the token.
//
// With create_key_if_missing a missing key is generated inside the token
// (C_GenerateKey, CKM_AES_KEY_GEN, the attributes above plus CKA_WRAP,
// CKA_UNWRAP, CKA_DERIVE false). Only for the very first start: on an
// existing data directory a missing key means a wrong label or a lost key,
// and a new key would unwrap nothing stored.
//
// Wrapped blob (docs/FORMAT.md, "PKCS#11 root-wrapped blob"):
//
//   0x11 || IV (12 bytes, random) || AES-256-GCM ciphertext || tag (16)
//
// computed by the token (CKM_AES_GCM, 128-bit tag) with associated data
// kPkcs11WrapDomainLabel || caller's associated data. The IV comes from this
// process's CSPRNG (crypto/random.h) and is handed to the token in the
// buffer that becomes the blob's IV field, so a token that writes back an IV
// of its own there is stored correctly too; a token that refuses caller IVs
// for CKM_AES_GCM altogether (some FIPS modes) cannot be used.
//
// Errors never contain the PIN or key bytes. Open(): InvalidArgument (empty
// option or PIN), NotFound (no module file, no token with that label --
// the message lists the labels seen --, no key and !create_key_if_missing),
// PermissionDenied (wrong, locked or expired PIN), FailedPrecondition (not
// a PKCS#11 module, duplicate labels, a key with the wrong attributes),
// Unavailable (the token cannot be reached).
//
// Wrap and Unwrap, by what the token answered:
//  - DataLoss("root key unwrap failed ...", as for the other providers;
//    Unwrap only): the blob is not a format-0x11 blob of a possible size,
//    or C_Decrypt says the tag does not verify: CKR_ENCRYPTED_DATA_INVALID,
//    CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_AEAD_DECRYPT_FAILED. Tokens also
//    answer a bad tag with CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED,
//    CKR_DATA_INVALID or CKR_DATA_LEN_RANGE (SoftHSM2 2.6: CKR_GENERAL_ERROR);
//    after those from C_Decrypt the token must seal and open a fixed test
//    message under the key: DataLoss if it can, else Internal (or the
//    self-test's Unavailable / PermissionDenied / FailedPrecondition).
//  - FailedPrecondition: the key was deleted, or the label now names an
//    unfit key, or the token refuses the key or the mechanism
//    (CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_KEY_TYPE_INCONSISTENT,
//    CKR_KEY_SIZE_RANGE, CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID,
//    CKR_KEY_HANDLE_INVALID or CKR_OBJECT_HANDLE_INVALID after looking it up
//    again); the key's attributes are then checked as in Open() and the
//    message names the one that changed, if one did.
//  - PermissionDenied: a re-login was refused or not tried (below).
//  - Unavailable: the token cannot be reached (CKR_DEVICE_ERROR,
//    CKR_DEVICE_REMOVED, CKR_DEVICE_MEMORY, CKR_TOKEN_NOT_PRESENT,
//    CKR_SESSION_COUNT, CKR_HOST_MEMORY, a session or login lost again
//    after recovering): the data may be fine, retry later.
//  - Internal: any other failure (CKR_GENERAL_ERROR or CKR_FUNCTION_FAILED
//    from C_EncryptInit, C_Encrypt or C_DecryptInit, CKR_ARGUMENTS_BAD,
//    CKR_BUFFER_TOO_SMALL, a token returning the wrong length, ...).
//
// A session or login the token dropped (HSM restart) is recovered from
// once per call: a new session, a new login with the kept PIN. A re-login
// costs at most one wrong PIN: none is tried while the token reports
// CKF_USER_PIN_FINAL_TRY or CKF_USER_PIN_LOCKED (PermissionDenied), and
// once the token refused the kept PIN (CKR_PIN_INCORRECT, CKR_PIN_LOCKED,
// CKR_PIN_EXPIRED, ...: the PIN was changed on the HSM) every later call
// fails with PermissionDenied ("... refused the PIN ...; fix the PIN and
// restart clavisd") without calling C_Login again. A session is dropped
// without closing only when the token says it is gone
// (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED); after any other
// failure that may leave it unusable it is closed (pkcs11_token.h).
//
// The PKCS#11 login belongs to the process: several providers on one token
// in a process share it (pkcs11_token.h), and their PINs must all match.
//
// Thread safety: all methods may be called concurrently; they share a small
// pool of sessions (at most `max_sessions`, each one operation at a time).
// The destructor, run after every call has returned, closes the sessions
// and, with the last provider on the module, calls C_Finalize.
#ifndef CLAVIS_KMS_ROOT_PKCS11_PROVIDER_H_
#define CLAVIS_KMS_ROOT_PKCS11_PROVIDER_H_

#include <p11-kit/pkcs11.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "crypto/secret_bytes.h"
#include "kms/root/root_key_provider.h"

namespace clavis::kms {

namespace root_internal {
class Pkcs11Token;
}  // namespace root_internal

// First byte of every blob a Pkcs11RootKeyProvider makes: PKCS#11 blob
// format, version 1. (In-memory-key providers' blobs start with 0x01.)
inline constexpr uint8_t kPkcs11WrapFormatV1 = 0x11;
// Prefix of the AES-GCM associated data: ASCII "clavis/pkcs11-root-wrap/v1"
// then one 0x00 byte, which ends the fixed part.
inline constexpr absl::string_view kPkcs11WrapDomainLabel{"clavis/pkcs11-root-wrap/v1\0", 27};

struct Pkcs11RootKeyOptions {
  // The PKCS#11 module (shared library) to load. REQUIRED.
  std::string module_path;
  // CK_TOKEN_INFO label of the token (at most 32 bytes). REQUIRED.
  std::string token_label;
  // CKA_LABEL of the AES key in that token. REQUIRED.
  std::string key_label;
  // Generate the key inside the token if there is none with key_label.
  bool create_key_if_missing = false;
  // Sessions kept open for concurrent calls (HSMs limit sessions).
  size_t max_sessions = 4;
};

class Pkcs11RootKeyProvider final : public RootKeyProvider {
 public:
  // Loads the module, logs in to the token with `pin` and finds (or
  // creates) the key; see the file comment for what is checked and the
  // errors. The PIN is copied into secure memory and kept there (to log in
  // again if the token drops the login); the caller wipes its own copy.
  static absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> Open(
      const Pkcs11RootKeyOptions& options, const crypto::SecretBytes& pin);

  ~Pkcs11RootKeyProvider() override;

  absl::StatusOr<std::string> Wrap(const crypto::SecretBytes& plaintext,
                                   absl::string_view associated_data) override;
  absl::StatusOr<crypto::SecretBytes> Unwrap(absl::string_view wrapped,
                                             absl::string_view associated_data) override;
  // "pkcs11:token=<token label> key=<key label> module=<module path>".
  std::string Describe() const override;

 private:
  Pkcs11RootKeyProvider(std::shared_ptr<root_internal::Pkcs11Token> token, std::string key_label,
                        CK_OBJECT_HANDLE key, uint64_t key_generation);

  // Runs `operation` with a pooled session and the key's handle. If the
  // token says the session, the login or the handle is gone, recovers (new
  // session, new login) and runs it once more with the key looked up again.
  // A session whose call failed in another way than `clean_failure` allows
  // is closed, not reused (an operation may still be active in it).
  // Returns the operation's CK_RV, or the error that kept it from running
  // (no session, no key).
  absl::StatusOr<CK_RV> WithSession(
      const std::function<CK_RV(CK_SESSION_HANDLE, CK_OBJECT_HANDLE)>& operation,
      const std::function<bool(CK_RV)>& clean_failure);
  // The key's handle, looked up again after the token logged in anew. If
  // a PKCS#11 call failed, its CK_RV is stored in `*failed_call`, which is
  // left alone otherwise (key missing, ambiguous or unfit).
  absl::StatusOr<CK_OBJECT_HANDLE> KeyHandle(CK_SESSION_HANDLE session, CK_RV* failed_call);
  // The FailedPrecondition for a token that refused the key or AES-GCM
  // with it (`rv`) for `what` ("encryption"): looks the key up and checks
  // it again, to name the attribute that changed if one did.
  absl::Status KeyRefused(absl::string_view what, CK_RV rv);
  // Seals and opens a fixed, non-secret message under the key: OK if the
  // token still decrypts with it, else why not.
  absl::Status DecryptSelfTest();

  // Constant after construction.
  const std::shared_ptr<root_internal::Pkcs11Token> token_;
  const std::string key_label_;

  absl::Mutex mu_;
  CK_OBJECT_HANDLE key_ ABSL_GUARDED_BY(mu_);
  // The token's login_generation() when key_ was looked up.
  uint64_t key_generation_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ROOT_PKCS11_PROVIDER_H_
