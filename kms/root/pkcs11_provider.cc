#include "kms/root/pkcs11_provider.h"

#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crypto/random.h"
#include "kms/root/pkcs11_module.h"
#include "kms/root/pkcs11_token.h"
#include "kms/root/root_key_wrapping.h"
#include "spdlog/spdlog.h"

// PKCS#11 3.0; p11-kit's 2.40 header may lack it.
#ifndef CKR_AEAD_DECRYPT_FAILED
#define CKR_AEAD_DECRYPT_FAILED 0x42UL
#endif

namespace clavis::kms {
namespace {

using root_internal::Pkcs11ErrorName;
using root_internal::Pkcs11Module;
using root_internal::Pkcs11SessionGone;
using root_internal::Pkcs11Token;
using root_internal::QuotedLabel;

// Fixed by format 0x11 (docs/FORMAT.md, "PKCS#11 root-wrapped blob").
constexpr size_t kIvSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kHeaderSize = 1 + kIvSize;
constexpr size_t kAesKeyBytes = 32;
// No valid handle: forces KeyHandle() to look the key up.
constexpr uint64_t kNoGeneration = std::numeric_limits<uint64_t>::max();

// One message for every unwrap failure, the same as the other providers'
// (root_key_wrapping.cc): which check failed is not the caller's business.

// AES-GCM parameters (PKCS#11 v2.40) for one call: `iv` (kIvSize bytes) and
// `aad` must outlive it; the token reads them (and may write its own IV).
CK_GCM_PARAMS GcmParams(CK_BYTE* iv, std::string& aad) {
  CK_GCM_PARAMS params = {};
  params.pIv = iv;
  params.ulIvLen = kIvSize;
  params.ulIvBits = kIvSize * 8;
  params.pAAD = reinterpret_cast<CK_BYTE_PTR>(aad.data());
  params.ulAADLen = aad.size();
  params.ulTagBits = kTagSize * 8;
  return params;
}

absl::Status UnwrapFailed() {
  return absl::DataLossError(
      "root key unwrap failed: wrong root key, or the stored record was altered");
}

// "key 'k' on PKCS#11 token 't'", for messages.
std::string KeyName(const Pkcs11Token& token, absl::string_view key_label) {
  return absl::StrCat("key ", QuotedLabel(key_label), " on PKCS#11 token ",
                      QuotedLabel(token.label()));
}

// The token or the way to it is gone for now; the data is not at fault.
bool IsUnreachable(CK_RV rv) {
  return rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_REMOVED || rv == CKR_DEVICE_MEMORY ||
         rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_SESSION_COUNT || rv == CKR_HOST_MEMORY ||
         rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
         rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

// What to do about a failed call before trying it once more.
enum class Recovery {
  kNone,         // not a problem of the session or the login: report it
  kSessionGone,  // the token says the session no longer exists: forget it
  kTokenGone,    // the token was removed (or failed over): close the session
  kLoggedOut,    // the session exists, the login or the key's handle does not
  kSessionBusy,  // an earlier operation is still active in the session
};

Recovery RecoveryFor(CK_RV rv) {
  if (Pkcs11SessionGone(rv)) return Recovery::kSessionGone;
  switch (rv) {
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
      return Recovery::kTokenGone;
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
      return Recovery::kLoggedOut;
    case CKR_OPERATION_ACTIVE:
      return Recovery::kSessionBusy;
    default:
      return Recovery::kNone;
  }
}

// A failed C_DecryptInit starts no operation, and a failed C_Decrypt ends
// its operation (PKCS#11 2.40, C_Decrypt: all but CKR_BUFFER_TOO_SMALL), so after
// such a failure the session is fine for the next call unless the failure
// was about the session itself. This matters: a blob that does not open
// (tokens differ in what they say about a bad tag; SoftHSM2 answers
// CKR_GENERAL_ERROR) must not cost a session.
bool LeavesSessionUsable(CK_RV rv) {
  return rv != CKR_BUFFER_TOO_SMALL && RecoveryFor(rv) == Recovery::kNone;
}

// C_Decrypt's answers that mean the blob does not open under this key with
// this associated data: the data is at fault (DataLoss).
bool IsBlobRejected(CK_RV rv) {
  return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
         rv == CKR_AEAD_DECRYPT_FAILED;
}

// C_Decrypt's answers that some tokens give for a tag that does not verify
// and others for a failure of their own (SoftHSM2 2.6 answers a bad tag
// with CKR_GENERAL_ERROR); a self-test tells which.
bool MayBeBlobRejected(CK_RV rv) {
  return rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED || rv == CKR_DATA_INVALID ||
         rv == CKR_DATA_LEN_RANGE;
}

// The token refuses this key or AES-GCM with it: the key's attributes or
// the token's mechanism policy changed (FailedPrecondition).
bool IsKeyRefusal(CK_RV rv) {
  return rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_KEY_TYPE_INCONSISTENT ||
         rv == CKR_KEY_SIZE_RANGE || rv == CKR_KEY_HANDLE_INVALID ||
         rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_MECHANISM_INVALID ||
         rv == CKR_MECHANISM_PARAM_INVALID;
}

absl::Status CallFailed(const Pkcs11Token& token, absl::string_view what, CK_RV rv) {
  const std::string message = absl::StrCat("PKCS#11 token ", QuotedLabel(token.label()), ": ", what,
                                           " failed (", Pkcs11ErrorName(rv), ")");
  if (IsUnreachable(rv)) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

// CallFailed, also telling the caller (if it asks) which CK_RV failed.
absl::Status CallFailed(const Pkcs11Token& token, absl::string_view what, CK_RV rv,
                        CK_RV* failed_call) {
  if (failed_call != nullptr) *failed_call = rv;
  return CallFailed(token, what, rv);
}

// Looks for the one secret key labelled `key_label`. NotFound if there is
// none; FailedPrecondition if the label is ambiguous; if a call fails, its
// error, and its CK_RV in `*failed_call` (if not null).
absl::StatusOr<CK_OBJECT_HANDLE> FindKey(const Pkcs11Token& token, CK_SESSION_HANDLE session,
                                         const std::string& key_label,
                                         CK_RV* failed_call = nullptr) {
  CK_FUNCTION_LIST_PTR f = token.functions();
  CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
  CK_ATTRIBUTE query[] = {
      {CKA_CLASS, &key_class, sizeof(key_class)},
      {CKA_LABEL, const_cast<char*>(key_label.data()), key_label.size()},
  };
  CK_RV rv = f->C_FindObjectsInit(session, query, 2);
  if (rv != CKR_OK) return CallFailed(token, "looking for the root key", rv, failed_call);
  CK_OBJECT_HANDLE found[2];
  CK_ULONG count = 0;
  rv = f->C_FindObjects(session, found, 2, &count);
  const CK_RV final_rv = f->C_FindObjectsFinal(session);
  if (rv == CKR_OK) rv = final_rv;
  if (rv != CKR_OK) return CallFailed(token, "looking for the root key", rv, failed_call);
  if (count == 0) {
    return absl::NotFoundError(absl::StrCat(
        "no AES secret key labelled ", QuotedLabel(key_label), " on PKCS#11 token ",
        QuotedLabel(token.label()),
        " (to generate one inside the token on the very first start, set create_key_if_missing: "
        "clavisd --pkcs11_create_key; deploy/README.md)"));
  }
  if (count > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "more than one secret key is labelled ", QuotedLabel(key_label), " on PKCS#11 token ",
        QuotedLabel(token.label()), "; the root key's label must be unique"));
  }
  return found[0];
}

// Refuses a key that is not a proper root key (see the header), listing
// every attribute that is wrong. With `warn`, logs what is acceptable but
// worth knowing. A failed call as for FindKey.
absl::Status CheckKey(const Pkcs11Token& token, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                      const std::string& key_label, bool warn, CK_RV* failed_call = nullptr) {
  CK_KEY_TYPE key_type = 0;
  CK_ULONG value_len = 0;
  CK_BBOOL is_token = CK_FALSE, is_private = CK_FALSE, sensitive = CK_FALSE, extractable = CK_TRUE,
           encrypt = CK_FALSE, decrypt = CK_FALSE, never_extractable = CK_FALSE,
           always_sensitive = CK_FALSE;
  CK_ATTRIBUTE attributes[] = {
      {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
      {CKA_VALUE_LEN, &value_len, sizeof(value_len)},
      {CKA_TOKEN, &is_token, sizeof(is_token)},
      {CKA_PRIVATE, &is_private, sizeof(is_private)},
      {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
      {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
      {CKA_ENCRYPT, &encrypt, sizeof(encrypt)},
      {CKA_DECRYPT, &decrypt, sizeof(decrypt)},
      {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof(never_extractable)},
      {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof(always_sensitive)},
  };
  constexpr size_t kCount = sizeof(attributes) / sizeof(attributes[0]);
  const CK_RV rv = token.functions()->C_GetAttributeValue(session, key, attributes, kCount);
  // These two answers still fill in every attribute the token could give.
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) {
    return CallFailed(token, "reading the root key's attributes", rv, failed_call);
  }
  auto known = [&](size_t i) { return attributes[i].ulValueLen != CK_UNAVAILABLE_INFORMATION; };

  std::vector<std::string> problems;
  if (!known(0) || key_type != CKK_AES) {
    problems.push_back("it is not an AES key (CKA_KEY_TYPE must be CKK_AES)");
  } else if (!known(1) || value_len != kAesKeyBytes) {
    problems.push_back(
        known(1) ? absl::StrCat("it is a ", value_len * 8, "-bit key, not 256-bit (CKA_VALUE_LEN ",
                                value_len, ", must be 32)")
                 : std::string("the token does not report its length (CKA_VALUE_LEN)"));
  }
  if (!known(5) || extractable != CK_FALSE) {
    problems.push_back(
        "it is extractable (CKA_EXTRACTABLE must be false, or its value could be exported from "
        "the token)");
  }
  if (!known(4) || sensitive != CK_TRUE) {
    problems.push_back(
        "it is not sensitive (CKA_SENSITIVE must be true, or the token would reveal its value)");
  }
  if (!known(2) || is_token != CK_TRUE) {
    problems.push_back("it is a session object (CKA_TOKEN must be true, or it is not persistent)");
  }
  if (!known(3) || is_private != CK_TRUE) {
    problems.push_back(
        "it is a public object (CKA_PRIVATE must be true, or it is usable without the PIN)");
  }
  if (!known(6) || !known(7) || encrypt != CK_TRUE || decrypt != CK_TRUE) {
    problems.push_back("it may not encrypt and decrypt (CKA_ENCRYPT and CKA_DECRYPT must be true)");
  }
  if (!problems.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        KeyName(token, key_label), " cannot be the root key: ", absl::StrJoin(problems, "; ")));
  }
  if (warn &&
      (!known(8) || !known(9) || never_extractable != CK_TRUE || always_sensitive != CK_TRUE)) {
    spdlog::warn(
        "The PKCS#11 root {} was extractable or not sensitive at some time "
        "(CKA_NEVER_EXTRACTABLE or CKA_ALWAYS_SENSITIVE is not true): it was imported or "
        "changed, and copies of it may exist outside the token.",
        KeyName(token, key_label));
  }
  return absl::OkStatus();
}

absl::Status CheckMechanism(const Pkcs11Token& token) {
  CK_MECHANISM_INFO info;
  const CK_RV rv = token.functions()->C_GetMechanismInfo(token.slot(), CKM_AES_GCM, &info);
  if (rv == CKR_MECHANISM_INVALID ||
      (rv == CKR_OK && (info.flags & (CKF_ENCRYPT | CKF_DECRYPT)) != (CKF_ENCRYPT | CKF_DECRYPT))) {
    return absl::FailedPreconditionError(
        absl::StrCat("PKCS#11 token ", QuotedLabel(token.label()),
                     " does not offer CKM_AES_GCM encryption and decryption, which the root key "
                     "needs"));
  }
  if (rv != CKR_OK) return CallFailed(token, "asking for CKM_AES_GCM", rv);
  return absl::OkStatus();
}

// Generates the root key inside the token.
absl::Status GenerateKey(Pkcs11Token& token, const std::string& key_label) {
  absl::StatusOr<CK_SESSION_HANDLE> session = token.OpenReadWriteSession();
  if (!session.ok()) return session.status();
  CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_ULONG value_len = kAesKeyBytes;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE attributes[] = {
      {CKA_CLASS, &key_class, sizeof(key_class)},
      {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
      {CKA_VALUE_LEN, &value_len, sizeof(value_len)},
      {CKA_LABEL, const_cast<char*>(key_label.data()), key_label.size()},
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_ENCRYPT, &yes, sizeof(yes)},
      {CKA_DECRYPT, &yes, sizeof(yes)},
      // Nothing but encrypt/decrypt: no wrapping other keys out with it, no
      // deriving keys (whose values might be extractable) from it.
      {CKA_WRAP, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},
      {CKA_DERIVE, &no, sizeof(no)},
      {CKA_SIGN, &no, sizeof(no)},
      {CKA_VERIFY, &no, sizeof(no)},
  };
  CK_MECHANISM mechanism = {CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  const CK_RV rv = token.functions()->C_GenerateKey(
      *session, &mechanism, attributes, sizeof(attributes) / sizeof(attributes[0]), &key);
  token.CloseSession(*session);
  if (rv != CKR_OK) {
    return CallFailed(token, absl::StrCat("generating the root key ", QuotedLabel(key_label)), rv);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> Pkcs11RootKeyProvider::Open(
    const Pkcs11RootKeyOptions& options, const crypto::SecretBytes& pin) {
  if (options.module_path.empty()) {
    return absl::InvalidArgumentError("PKCS#11 root key: no module path given");
  }
  if (options.token_label.empty()) {
    return absl::InvalidArgumentError("PKCS#11 root key: no token label given");
  }
  if (options.key_label.empty()) {
    return absl::InvalidArgumentError("PKCS#11 root key: no key label given");
  }
  if (pin.empty()) return absl::InvalidArgumentError("PKCS#11 root key: the PIN is empty");

  absl::StatusOr<std::shared_ptr<Pkcs11Module>> module = Pkcs11Module::Load(options.module_path);
  if (!module.ok()) return module.status();
  absl::StatusOr<std::shared_ptr<Pkcs11Token>> token =
      Pkcs11Token::Open(*std::move(module), options.token_label, pin, options.max_sessions);
  if (!token.ok()) return token.status();
  if (absl::Status s = CheckMechanism(**token); !s.ok()) return s;

  bool created = false;
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  {
    absl::StatusOr<Pkcs11Token::Lease> lease = (*token)->Acquire();
    if (!lease.ok()) return lease.status();
    absl::StatusOr<CK_OBJECT_HANDLE> found = FindKey(**token, lease->handle(), options.key_label);
    if (absl::IsNotFound(found.status()) && options.create_key_if_missing) {
      if (absl::Status s = GenerateKey(**token, options.key_label); !s.ok()) return s;
      created = true;
      // Found like any other key, so it is checked like any other key.
      found = FindKey(**token, lease->handle(), options.key_label);
    }
    if (!found.ok()) return found.status();
    if (absl::Status s = CheckKey(**token, lease->handle(), *found, options.key_label, true);
        !s.ok()) {
      return s;
    }
    key = *found;
  }
  const uint64_t generation = (*token)->login_generation();
  auto provider = std::unique_ptr<Pkcs11RootKeyProvider>(
      new Pkcs11RootKeyProvider(*std::move(token), options.key_label, key, generation));
  if (created) {
    spdlog::warn(
        "*** Generated a new AES-256 root key inside PKCS#11 token: {} ({}). It exists ONLY in "
        "the token and cannot be exported: back the token up with the HSM's own backup "
        "procedure, or every key this Clavis instance stores is lost with it. ***",
        KeyName(*provider->token_, provider->key_label_), provider->Describe());
  } else {
    spdlog::info("Using PKCS#11 root key: {} (non-extractable AES-256; wrapping inside the token)",
                 provider->Describe());
  }
  return provider;
}

Pkcs11RootKeyProvider::Pkcs11RootKeyProvider(std::shared_ptr<Pkcs11Token> token,
                                             std::string key_label, CK_OBJECT_HANDLE key,
                                             uint64_t key_generation)
    : token_(std::move(token)),
      key_label_(std::move(key_label)),
      key_(key),
      key_generation_(key_generation) {}

// The token reference closes this provider's share of the sessions and, if
// it is the last, C_Finalize; see pkcs11_token.cc and pkcs11_module.cc.
Pkcs11RootKeyProvider::~Pkcs11RootKeyProvider() = default;

std::string Pkcs11RootKeyProvider::Describe() const {
  return absl::StrCat("pkcs11:token=", token_->label(), " key=", key_label_,
                      " module=", token_->module().path());
}

absl::StatusOr<CK_OBJECT_HANDLE> Pkcs11RootKeyProvider::KeyHandle(CK_SESSION_HANDLE session,
                                                                  CK_RV* failed_call) {
  const uint64_t generation = token_->login_generation();
  absl::MutexLock lock(&mu_);
  if (key_generation_ == generation) return key_;
  absl::StatusOr<CK_OBJECT_HANDLE> found = FindKey(*token_, session, key_label_, failed_call);
  if (!found.ok()) return found.status();
  // Whatever now carries the label must still be a proper root key.
  if (absl::Status s = CheckKey(*token_, session, *found, key_label_, false, failed_call);
      !s.ok()) {
    return s;
  }
  key_ = *found;
  key_generation_ = generation;
  return key_;
}

absl::StatusOr<CK_RV> Pkcs11RootKeyProvider::WithSession(
    const std::function<CK_RV(CK_SESSION_HANDLE, CK_OBJECT_HANDLE)>& operation,
    const std::function<bool(CK_RV)>& clean_failure) {
  for (int attempt = 0;; ++attempt) {
    const bool last_attempt = attempt > 0;
    absl::StatusOr<Pkcs11Token::Lease> lease = token_->Acquire();
    if (!lease.ok()) return lease.status();
    CK_RV rv = CKR_OK;
    absl::StatusOr<CK_OBJECT_HANDLE> key = KeyHandle(lease->handle(), &rv);
    if (!key.ok()) {
      // The key went away or changed while clavisd runs: the server's
      // problem, not a missing record (which NotFound would suggest upward).
      if (absl::IsNotFound(key.status())) {
        return absl::FailedPreconditionError(key.status().message());
      }
      // Not a failed call (an ambiguous label, an unfit key): the session
      // is fine.
      if (rv == CKR_OK) return key.status();
    } else {
      rv = operation(lease->handle(), *key);
      if (rv == CKR_OK || clean_failure(rv)) return rv;
    }
    const Recovery recovery = RecoveryFor(rv);
    if (recovery == Recovery::kSessionGone) {
      lease->Forget();  // the token said so: its number may be reused already
    } else if (recovery != Recovery::kLoggedOut) {
      lease->Discard();  // closed: an operation may still be active in it
    }
    if (recovery == Recovery::kNone || last_attempt) {
      return key.ok() ? absl::StatusOr<CK_RV>(rv) : key.status();
    }
    if (recovery == Recovery::kSessionGone || recovery == Recovery::kTokenGone) {
      token_->DropGoneIdleSessions();
    } else if (recovery == Recovery::kLoggedOut) {
      // A private key is invisible to a logged-out session: log in first,
      // then look the key up again.
      if (absl::Status s = token_->EnsureLoggedIn(lease->handle()); !s.ok()) return s;
    }
    absl::MutexLock lock(&mu_);
    key_generation_ = kNoGeneration;
  }
}

absl::Status Pkcs11RootKeyProvider::KeyRefused(absl::string_view what, CK_RV rv) {
  // Look the key up and check its attributes again: a changed attribute
  // (CKA_DECRYPT set to false, a key replaced under the label) is named.
  {
    absl::MutexLock lock(&mu_);
    key_generation_ = kNoGeneration;
  }
  absl::StatusOr<CK_RV> checked =
      WithSession([](CK_SESSION_HANDLE, CK_OBJECT_HANDLE) { return static_cast<CK_RV>(CKR_OK); },
                  [](CK_RV) { return false; });
  if (absl::IsFailedPrecondition(checked.status())) return checked.status();
  return absl::FailedPreconditionError(
      absl::StrCat("PKCS#11 token ", QuotedLabel(token_->label()), " refused root key ",
                   QuotedLabel(key_label_), " for ", what, " (", Pkcs11ErrorName(rv),
                   "): the key's attributes or the token's policy for CKM_AES_GCM changed"));
}

absl::Status Pkcs11RootKeyProvider::DecryptSelfTest() {
  // Nothing secret, and nothing that leaves this function: a fixed message,
  // a fresh random IV every time (as for Wrap).
  constexpr absl::string_view kMessage = "clavis pkcs11 root key self-test";
  std::string aad = absl::StrCat(kPkcs11WrapDomainLabel, "self-test");
  absl::StatusOr<CK_RV> rv = WithSession(
      [&](CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
        CK_FUNCTION_LIST_PTR f = token_->functions();
        CK_BYTE iv[kIvSize];
        crypto::FillRandom(iv, kIvSize);
        CK_GCM_PARAMS params = GcmParams(iv, aad);
        CK_MECHANISM mechanism = {CKM_AES_GCM, &params, sizeof(params)};
        std::string message(kMessage);
        std::string sealed(message.size() + kTagSize, '\0');
        CK_ULONG sealed_size = sealed.size();
        CK_RV result = f->C_EncryptInit(session, &mechanism, key);
        if (result == CKR_OK) {
          result =
              f->C_Encrypt(session, reinterpret_cast<CK_BYTE_PTR>(message.data()), message.size(),
                           reinterpret_cast<CK_BYTE_PTR>(sealed.data()), &sealed_size);
        }
        if (result != CKR_OK) return result;
        params = GcmParams(iv, aad);
        std::string opened(sealed.size(), '\0');
        CK_ULONG opened_size = opened.size();
        result = f->C_DecryptInit(session, &mechanism, key);
        if (result == CKR_OK) {
          result = f->C_Decrypt(session, reinterpret_cast<CK_BYTE_PTR>(sealed.data()), sealed_size,
                                reinterpret_cast<CK_BYTE_PTR>(opened.data()), &opened_size);
        }
        if (result != CKR_OK) return result;
        if (absl::string_view(opened.data(), opened_size) != kMessage) {
          return static_cast<CK_RV>(CKR_GENERAL_ERROR);
        }
        return static_cast<CK_RV>(CKR_OK);
      },
      [](CK_RV) { return false; });
  if (!rv.ok()) return rv.status();
  if (*rv != CKR_OK) return CallFailed(*token_, "a root key self-test (seal and open)", *rv);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Pkcs11RootKeyProvider::Wrap(const crypto::SecretBytes& plaintext,
                                                        absl::string_view associated_data) {
  if (plaintext.empty()) {
    // An empty "key" would unwrap to an empty key later: always a caller bug.
    return absl::InvalidArgumentError("root key wrap: nothing to wrap (empty plaintext)");
  }
  if (plaintext.size() > kMaxRootWrapPlaintextSize) {
    return absl::InvalidArgumentError(absl::StrCat("root key wrap: plaintext is ", plaintext.size(),
                                                   " bytes, at most ", kMaxRootWrapPlaintextSize,
                                                   " allowed"));
  }
  std::string aad = absl::StrCat(kPkcs11WrapDomainLabel, associated_data);
  std::string blob(kHeaderSize + plaintext.size() + kTagSize, '\0');
  blob[0] = static_cast<char>(kPkcs11WrapFormatV1);
  auto* iv = reinterpret_cast<CK_BYTE*>(&blob[1]);
  auto* sealed = reinterpret_cast<CK_BYTE*>(&blob[kHeaderSize]);

  absl::StatusOr<CK_RV> rv = WithSession(
      [&](CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
        // A fresh IV for every attempt. The token reads it from (and may
        // write its own into) the blob's IV field.
        crypto::FillRandom(iv, kIvSize);
        CK_GCM_PARAMS params = GcmParams(iv, aad);
        CK_MECHANISM mechanism = {CKM_AES_GCM, &params, sizeof(params)};
        CK_RV result = token_->functions()->C_EncryptInit(session, &mechanism, key);
        if (result != CKR_OK) return result;
        CK_ULONG sealed_size = plaintext.size() + kTagSize;
        // C_Encrypt takes a non-const pointer but only reads the plaintext.
        result = token_->functions()->C_Encrypt(session, const_cast<CK_BYTE_PTR>(plaintext.data()),
                                                plaintext.size(), sealed, &sealed_size);
        // Anything but ciphertext || 16-byte tag is not format 0x11.
        if (result == CKR_OK && sealed_size != plaintext.size() + kTagSize) {
          return static_cast<CK_RV>(CKR_GENERAL_ERROR);
        }
        return result;
      },
      [](CK_RV) { return false; });
  if (!rv.ok()) return rv.status();
  if (*rv == CKR_OK) return blob;
  if (IsKeyRefusal(*rv)) return KeyRefused("encryption", *rv);
  return CallFailed(*token_, absl::StrCat("wrapping under root key ", QuotedLabel(key_label_)),
                    *rv);
}

absl::StatusOr<crypto::SecretBytes> Pkcs11RootKeyProvider::Unwrap(
    absl::string_view wrapped, absl::string_view associated_data) {
  if (wrapped.size() <= kHeaderSize + kTagSize) return UnwrapFailed();
  if (static_cast<uint8_t>(wrapped[0]) != kPkcs11WrapFormatV1) return UnwrapFailed();
  const size_t plaintext_size = wrapped.size() - kHeaderSize - kTagSize;
  if (plaintext_size > kMaxRootWrapPlaintextSize) return UnwrapFailed();

  // The token takes non-const pointers; give it copies it may not change.
  CK_BYTE iv[kIvSize];
  std::memcpy(iv, wrapped.data() + 1, kIvSize);
  std::string sealed(wrapped.substr(kHeaderSize));
  std::string aad = absl::StrCat(kPkcs11WrapDomainLabel, associated_data);
  crypto::SecretBytes plaintext;

  // Which call the last attempt's CK_RV came from, and whether C_Decrypt
  // succeeded with the wrong length: the mapping below depends on both.
  bool decrypt_called = false;
  bool wrong_size = false;
  CK_ULONG decrypted_size = 0;

  absl::StatusOr<CK_RV> rv = WithSession(
      [&](CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key) {
        decrypt_called = false;
        wrong_size = false;
        CK_GCM_PARAMS params = GcmParams(iv, aad);
        CK_MECHANISM mechanism = {CKM_AES_GCM, &params, sizeof(params)};
        CK_RV result = token_->functions()->C_DecryptInit(session, &mechanism, key);
        if (result != CKR_OK) return result;
        decrypt_called = true;
        auto* in = reinterpret_cast<CK_BYTE_PTR>(sealed.data());
        // Straight into secure memory. Room for the whole input, not just
        // the plaintext: some tokens (SoftHSM2) want that much before they
        // look at the tag.
        crypto::SecretBytes out(sealed.size());
        CK_ULONG out_size = out.size();
        result = token_->functions()->C_Decrypt(session, in, sealed.size(), out.data(), &out_size);
        if (result != CKR_OK) return result;
        if (out_size != plaintext_size) {
          // The tag verified, yet not ciphertext-many bytes: the token is wrong.
          wrong_size = true;
          decrypted_size = out_size;
          return static_cast<CK_RV>(CKR_GENERAL_ERROR);
        }
        plaintext = crypto::SecretBytes::CopyOf(out.view().substr(0, plaintext_size));
        return static_cast<CK_RV>(CKR_OK);
      },
      LeavesSessionUsable);
  if (!rv.ok()) return rv.status();
  if (*rv == CKR_OK) return plaintext;
  const std::string what = absl::StrCat("unwrapping under root key ", QuotedLabel(key_label_));
  if (!decrypt_called) {
    // C_DecryptInit sees neither ciphertext nor tag: never the blob's fault.
    if (IsKeyRefusal(*rv)) return KeyRefused("decryption", *rv);
    return CallFailed(*token_, what, *rv);
  }
  if (wrong_size) {
    return absl::InternalError(absl::StrCat("PKCS#11 token ", QuotedLabel(token_->label()), ": ",
                                            what, " returned ", decrypted_size, " bytes for ",
                                            plaintext_size, " bytes of ciphertext"));
  }
  // The tag did not verify: wrong key, associated data or blob.
  if (IsBlobRejected(*rv)) return UnwrapFailed();
  if (IsKeyRefusal(*rv)) return KeyRefused("decryption", *rv);
  if (MayBeBlobRejected(*rv)) {
    // A tag that does not verify, or a token that cannot decrypt at all?
    // If the token still seals and opens under the key, it was the blob.
    const absl::Status self_test = DecryptSelfTest();
    if (self_test.ok()) return UnwrapFailed();
    if (!absl::IsInternal(self_test)) return self_test;  // unreachable, PIN refused, key gone
    return absl::InternalError(
        absl::StrCat(CallFailed(*token_, what, *rv).message(),
                     ", and the token fails a self-test too: ", self_test.message()));
  }
  // Anything else (CKR_DEVICE_ERROR, CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL,
  // ...) is no statement about the blob, which may be fine.
  return CallFailed(*token_, what, *rv);
}

}  // namespace clavis::kms
