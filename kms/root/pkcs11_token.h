// Pkcs11Token: a PKCS#11 token found by its label, logged in as the normal
// user (CKU_USER), with a small pool of sessions for concurrent callers.
// Internal to kms/root (Pkcs11RootKeyProvider and its tests).
//
// PKCS#11 login state belongs to the process and the token, not to a
// session: every session of the process on a token shares one login, and
// the token logs the process out when its last session closes. So this
// process keeps one Pkcs11Token per (module, token), shared by everyone who
// opens the same token, and a second opener's PIN is compared (in constant
// time) with the one the token was logged in with, instead of being
// accepted unchecked because the token answers CKR_USER_ALREADY_LOGGED_IN.
//
// The PIN stays in secure memory for the token's lifetime so that, if the
// token drops the login (an HSM restart, a network HSM fail-over, another
// library in the process calling C_CloseAllSessions), the next session
// opened logs in again instead of the service needing a restart. Object
// handles may change across such a re-login: login_generation() tells
// holders of handles when to look them up again.
//
// A re-login costs at most one wrong PIN: tokens count wrong PINs and lock
// the user PIN after a few, and a PIN changed on the HSM would otherwise be
// tried again on every request. Re-logins are serialised; none is tried
// while the token reports CKF_USER_PIN_FINAL_TRY or CKF_USER_PIN_LOCKED; and
// once the token refused the kept PIN (CKR_PIN_INCORRECT, CKR_PIN_LOCKED,
// CKR_PIN_EXPIRED, ...) the token is marked: every later Acquire,
// EnsureLoggedIn and OpenReadWriteSession fails with PermissionDenied
// without calling C_Login, until the process restarts with the right PIN.
//
// Session handles are dropped without C_CloseSession only when the token
// says they are gone (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED): the
// token may already have given the same number to a new session. Any other
// failure closes the session, so transient errors do not leak sessions. A
// handle number the token gives out anew also evicts stale copies of it
// from the idle pool and the anchor.
//
// Thread safety: all methods may be called concurrently. A Lease is used by
// one thread at a time (a PKCS#11 session runs one operation at a time).
#ifndef CLAVIS_KMS_ROOT_PKCS11_TOKEN_H_
#define CLAVIS_KMS_ROOT_PKCS11_TOKEN_H_

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "crypto/secret_bytes.h"
#include "kms/root/pkcs11_module.h"

namespace clavis::kms::root_internal {

// The token's word that a session no longer exists: its handle is dropped,
// never closed (Lease::Forget). Any other failure is no such word.
inline bool Pkcs11SessionGone(CK_RV rv) {
  return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED;
}

class Pkcs11Token {
 public:
  // The largest token label PKCS#11 can hold (CK_TOKEN_INFO.label).
  static constexpr size_t kMaxLabelSize = 32;

  // Finds the initialised token labelled exactly `label` among the module's
  // slots and logs in with `pin` (or joins this process's existing login to
  // it, see above). `max_sessions` (>= 1) bounds the pool; the first opener
  // of a token sets it. Errors (messages name module, token and PKCS#11
  // return value, never the PIN):
  //  - InvalidArgument: empty label or PIN, label longer than 32 bytes;
  //  - NotFound: no such token (the message lists the labels seen);
  //  - FailedPrecondition: two tokens with that label, no user PIN set;
  //  - PermissionDenied: wrong PIN ("wrong PIN for PKCS#11 token ..."), or
  //    the PIN is locked or expired;
  //  - Unavailable: the token could not be reached (sessions, device).
  static absl::StatusOr<std::shared_ptr<Pkcs11Token>> Open(std::shared_ptr<Pkcs11Module> module,
                                                           const std::string& label,
                                                           const crypto::SecretBytes& pin,
                                                           size_t max_sessions);

  // A logged-in session of the pool, given back when the lease ends.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();

    CK_SESSION_HANDLE handle() const { return handle_; }
    // Close the session instead of giving it back: after an error that may
    // have left an operation active in it.
    void Discard() { end_ = End::kClose; }
    // The token said the session no longer exists (Pkcs11SessionGone):
    // neither reuse nor close it (its handle may already belong to a new
    // session). After any other failure, Discard.
    void Forget() { end_ = End::kForget; }

   private:
    friend class Pkcs11Token;
    enum class End { kReturn, kClose, kForget };
    Lease(Pkcs11Token* token, CK_SESSION_HANDLE handle) : token_(token), handle_(handle) {}

    Pkcs11Token* token_;
    CK_SESSION_HANDLE handle_;
    End end_ = End::kReturn;
  };

  // A session from the pool, opening (and if need be logging in) a new one
  // when none is idle; waits while max_sessions are in use. PermissionDenied
  // once the token refused the kept PIN (see above).
  absl::StatusOr<Lease> Acquire();
  // After a call found its session gone (an HSM restart, C_CloseAllSessions):
  // the idle sessions are most likely gone too. Asks the token about each
  // and drops, without closing, those it says are gone (their numbers may
  // already be new sessions'); the others stay in the pool.
  void DropGoneIdleSessions();
  // Logs in again if `session` says the process is no longer logged in
  // (the login is per process, so this serves every session). A re-login
  // follows the rules above: PermissionDenied without calling C_Login if
  // the token refused the PIN before or reports its final try or a locked
  // PIN; Unavailable if the token's flags cannot be read.
  absl::Status EnsureLoggedIn(CK_SESSION_HANDLE session);
  // A logged-in read-write session outside the pool (for creating objects);
  // the caller closes it with CloseSession.
  absl::StatusOr<CK_SESSION_HANDLE> OpenReadWriteSession();
  void CloseSession(CK_SESSION_HANDLE session);

  // Changes every time this token had to log in again after losing its
  // login: object handles looked up before may no longer be valid.
  uint64_t login_generation() const { return login_generation_.load(); }

  CK_FUNCTION_LIST_PTR functions() const { return module_->functions(); }
  const Pkcs11Module& module() const { return *module_; }
  const std::string& label() const { return label_; }
  CK_SLOT_ID slot() const { return slot_; }

 private:
  // Only Open() makes instances, and only its deleter destroys them; the
  // destructor closes the idle sessions (no lease may be outstanding).
  ~Pkcs11Token();
  Pkcs11Token(std::shared_ptr<Pkcs11Module> module, std::string label, CK_SLOT_ID slot,
              crypto::SecretBytes pin, size_t max_sessions);

  // Opens a session with `flags` and makes sure the process is logged in.
  absl::StatusOr<CK_SESSION_HANDLE> OpenLoggedInSession(CK_FLAGS flags);
  // C_Login as CKU_USER with the kept PIN; the error for its result.
  absl::Status Login(CK_SESSION_HANDLE session, CK_RV* rv);
  // A login after Open()'s, with the rules in the file comment.
  absl::Status LogInAgain(CK_SESSION_HANDLE session) ABSL_LOCKS_EXCLUDED(login_mu_, mu_);
  // The PermissionDenied every call gets once the token refused the PIN,
  // or OK.
  absl::Status PinRefusal() const ABSL_LOCKS_EXCLUDED(login_mu_);
  // Opens a new anchor session if the token says the old one is gone.
  void ReplaceAnchorIfGone() ABSL_LOCKS_EXCLUDED(mu_);
  // `fresh` was just given out by C_OpenSession, so no session this token
  // kept under that number still exists: drops stale copies of it from the
  // idle pool and the anchor. True if the anchor was one.
  bool ClaimHandle(CK_SESSION_HANDLE fresh) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(CK_SESSION_HANDLE session, Lease::End end);
  bool CanAcquire() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || open_ < max_sessions_;
  }

  // Constant after construction.
  const std::shared_ptr<Pkcs11Module> module_;
  const std::string label_;
  const CK_SLOT_ID slot_;
  const crypto::SecretBytes pin_;
  const size_t max_sessions_;

  std::atomic<uint64_t> login_generation_{0};
  // Set once Open() has logged in: any later login is a re-login.
  std::atomic<bool> logged_in_once_{false};
  // Held for a whole re-login, so that concurrent callers who all find the
  // login gone cost one C_Login, not one each.
  mutable absl::Mutex login_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Set (never cleared) when the token refused the kept PIN on a re-login;
  // pin_refusal_ then holds the error to return.
  std::atomic<bool> pin_refused_{false};
  absl::Status pin_refusal_ ABSL_GUARDED_BY(login_mu_);
  absl::Mutex mu_;
  // A session kept open only to keep the login alive (PKCS#11 logs the
  // process out when its last session on the token closes).
  CK_SESSION_HANDLE anchor_ ABSL_GUARDED_BY(mu_) = CK_INVALID_HANDLE;
  std::vector<CK_SESSION_HANDLE> idle_ ABSL_GUARDED_BY(mu_);
  // Pool sessions open, idle or leased (the anchor not counted).
  size_t open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace clavis::kms::root_internal

#endif  // CLAVIS_KMS_ROOT_PKCS11_TOKEN_H_
