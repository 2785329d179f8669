#include "kms/root/pkcs11_token.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace clavis::kms::root_internal {
namespace {

// The tokens this process is logged in to, by module and slot, with the
// number of live references to each. As for modules (pkcs11_module.cc),
// counts are kept by hand under the mutex so that a token being closed
// cannot be joined half-way through.
struct TokenRegistry {
  struct Entry {
    Pkcs11Token* token = nullptr;
    int references = 0;
  };
  absl::Mutex mu;
  std::map<std::pair<const Pkcs11Module*, CK_SLOT_ID>, Entry> tokens ABSL_GUARDED_BY(mu);
};

TokenRegistry& GetTokenRegistry() {
  static TokenRegistry* registry = new TokenRegistry;
  return *registry;
}

// Return values that mean the token (or the connection to it) is not
// there, as opposed to a refusal.
bool IsUnreachable(CK_RV rv) {
  return rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_REMOVED || rv == CKR_DEVICE_MEMORY ||
         rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_SESSION_COUNT || rv == CKR_HOST_MEMORY;
}

// The token refused the PIN itself (as opposed to failing to check it):
// trying the same PIN again would only count another wrong one.
bool IsPinRefusal(CK_RV rv) {
  return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE ||
         rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED;
}

bool IsUserSession(const CK_SESSION_INFO& info) {
  return info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS;
}

// After a wrong PIN: how close the token says it is to locking the user
// PIN, as text to append to a message ("" if not close or unknown).
std::string PinTriesWarning(const Pkcs11Token& token) {
  CK_TOKEN_INFO info;
  if (token.functions()->C_GetTokenInfo(token.slot(), &info) != CKR_OK) return "";
  if ((info.flags & CKF_USER_PIN_LOCKED) != 0) return "; the PIN is now LOCKED";
  if ((info.flags & CKF_USER_PIN_FINAL_TRY) != 0) {
    return "; one more wrong PIN LOCKS the token's user PIN";
  }
  if ((info.flags & CKF_USER_PIN_COUNT_LOW) != 0) {
    return "; the token reports few tries left before it locks the user PIN "
           "(CKF_USER_PIN_COUNT_LOW)";
  }
  return "";
}

absl::Status SessionStateUnreadable(const Pkcs11Token& token, CK_RV rv) {
  return absl::UnavailableError(absl::StrCat("PKCS#11 token ", QuotedLabel(token.label()),
                                             ": reading a session's state failed (",
                                             Pkcs11ErrorName(rv), ")"));
}

struct FoundSlot {
  CK_SLOT_ID slot = 0;
  CK_FLAGS flags = 0;
};

// The slot holding the initialised token labelled `label`.
absl::StatusOr<FoundSlot> FindSlot(const Pkcs11Module& module, const std::string& label) {
  CK_FUNCTION_LIST_PTR f = module.functions();
  std::vector<CK_SLOT_ID> slots;
  CK_RV rv = CKR_BUFFER_TOO_SMALL;
  // The slot list can grow between the two calls (a token plugged in).
  for (int attempt = 0; attempt < 3 && rv == CKR_BUFFER_TOO_SMALL; ++attempt) {
    CK_ULONG count = 0;
    rv = f->C_GetSlotList(CK_TRUE, nullptr, &count);
    if (rv != CKR_OK) break;
    slots.resize(count);
    rv = f->C_GetSlotList(CK_TRUE, slots.data(), &count);
    if (rv == CKR_OK) slots.resize(count);
  }
  if (rv != CKR_OK) {
    return absl::UnavailableError(absl::StrCat("PKCS#11 module ", module.path(),
                                               ": listing its slots failed (", Pkcs11ErrorName(rv),
                                               ")"));
  }
  std::vector<FoundSlot> matches;
  std::vector<std::string> seen;
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info;
    if (f->C_GetTokenInfo(slot, &info) != CKR_OK) continue;   // removed meanwhile
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;  // a free slot, no label
    const std::string token_label = Pkcs11Text(info.label, sizeof(info.label));
    if (token_label == label) {
      matches.push_back({slot, info.flags});
    } else {
      seen.push_back(QuotedLabel(token_label));
    }
  }
  if (matches.size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(matches.size(), " tokens in PKCS#11 module ", module.path(), " are labelled ",
                     QuotedLabel(label), "; token labels must be unique to tell them apart"));
  }
  if (matches.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no PKCS#11 token labelled ", QuotedLabel(label), " in module ", module.path(), "; ",
        seen.empty() ? "it shows no initialised token at all (check the module's configuration, "
                       "e.g. SOFTHSM2_CONF for SoftHSM2)"
                     : absl::StrCat("tokens seen: ", absl::StrJoin(seen, ", "))));
  }
  return matches.front();
}

}  // namespace

absl::StatusOr<std::shared_ptr<Pkcs11Token>> Pkcs11Token::Open(std::shared_ptr<Pkcs11Module> module,
                                                               const std::string& label,
                                                               const crypto::SecretBytes& pin,
                                                               size_t max_sessions) {
  if (label.empty()) return absl::InvalidArgumentError("no PKCS#11 token label given");
  if (label.size() > kMaxLabelSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("PKCS#11 token label ", QuotedLabel(label), " is ", label.size(),
                     " bytes; token labels are at most ", kMaxLabelSize));
  }
  if (pin.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the PIN for PKCS#11 token ", QuotedLabel(label), " is empty"));
  }
  if (max_sessions == 0) {
    return absl::InvalidArgumentError("a PKCS#11 session pool needs at least one session");
  }
  absl::StatusOr<FoundSlot> found = FindSlot(*module, label);
  if (!found.ok()) return found.status();
  if ((found->flags & CKF_USER_PIN_INITIALIZED) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("PKCS#11 token ", QuotedLabel(label),
                     " has no user PIN yet; its security officer must set one (C_InitPIN, e.g. "
                     "softhsm2-util --init-token ... --pin)"));
  }
  if ((found->flags & CKF_USER_PIN_LOCKED) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("the user PIN of PKCS#11 token ", QuotedLabel(label),
                     " is locked after too many wrong PINs; its security officer must reset it"));
  }

  TokenRegistry& registry = GetTokenRegistry();
  const auto key = std::make_pair(static_cast<const Pkcs11Module*>(module.get()), found->slot);
  absl::MutexLock lock(&registry.mu);
  auto it = registry.tokens.find(key);
  if (it != registry.tokens.end()) {
    // Logged in already: the token would accept any PIN now, so compare
    // with the one it was logged in with.
    if (!it->second.token->pin_.Equals(pin)) {
      return absl::PermissionDeniedError(
          absl::StrCat("wrong PIN for PKCS#11 token ", QuotedLabel(label),
                       " (it differs from the PIN this process is logged in to the token with)"));
    }
  } else {
    auto* token = new Pkcs11Token(std::move(module), label, found->slot, pin.Clone(), max_sessions);
    // The first session logs in and becomes the anchor: never used for
    // operations, never closed because one failed, it keeps the login alive
    // while pool sessions come and go.
    absl::StatusOr<CK_SESSION_HANDLE> anchor = token->OpenLoggedInSession(CKF_SERIAL_SESSION);
    if (!anchor.ok()) {
      delete token;
      return anchor.status();
    }
    token->logged_in_once_.store(true);
    {
      absl::MutexLock pool_lock(&token->mu_);
      token->anchor_ = *anchor;
    }
    it = registry.tokens.emplace(key, TokenRegistry::Entry{token, 0}).first;
  }
  ++it->second.references;
  return std::shared_ptr<Pkcs11Token>(it->second.token, [key](Pkcs11Token* token) {
    TokenRegistry& registry = GetTokenRegistry();
    absl::MutexLock lock(&registry.mu);
    auto entry = registry.tokens.find(key);
    if (entry == registry.tokens.end() || entry->second.token != token) return;
    if (--entry->second.references == 0) {
      registry.tokens.erase(entry);
      delete token;  // closes the sessions, then drops its module reference
    }
  });
}

Pkcs11Token::Pkcs11Token(std::shared_ptr<Pkcs11Module> module, std::string label, CK_SLOT_ID slot,
                         crypto::SecretBytes pin, size_t max_sessions)
    : module_(std::move(module)),
      label_(std::move(label)),
      slot_(slot),
      pin_(std::move(pin)),
      max_sessions_(max_sessions) {}

Pkcs11Token::~Pkcs11Token() {
  // Only this token's own sessions: C_CloseAllSessions would also end those
  // of other code in the process. Closing the last one logs the process out.
  std::vector<CK_SESSION_HANDLE> sessions;
  {
    absl::MutexLock lock(&mu_);
    sessions.swap(idle_);
    if (open_ != sessions.size()) {
      spdlog::error("PKCS#11 token {}: closed with {} sessions still leased", QuotedLabel(label_),
                    open_ - sessions.size());
    }
    open_ = 0;
    // The anchor last: closing the process's last session logs it out.
    if (anchor_ != CK_INVALID_HANDLE) sessions.push_back(anchor_);
    anchor_ = CK_INVALID_HANDLE;
  }
  for (CK_SESSION_HANDLE session : sessions) CloseSession(session);
}

absl::Status Pkcs11Token::Login(CK_SESSION_HANDLE session, CK_RV* rv_out) {
  // C_Login takes a non-const pointer but only reads the PIN.
  const CK_RV rv = functions()->C_Login(session, CKU_USER, const_cast<CK_UTF8CHAR_PTR>(pin_.data()),
                                        pin_.size());
  *rv_out = rv;
  if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return absl::OkStatus();
  const std::string token = QuotedLabel(label_);
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      return absl::PermissionDeniedError(absl::StrCat("wrong PIN for PKCS#11 token ", token, " (",
                                                      Pkcs11ErrorName(rv), ")",
                                                      PinTriesWarning(*this)));
    case CKR_PIN_LOCKED:
      return absl::PermissionDeniedError(
          absl::StrCat("the user PIN of PKCS#11 token ", token,
                       " is locked after too many wrong PINs; its security officer must reset it"));
    case CKR_PIN_EXPIRED:
      return absl::PermissionDeniedError(absl::StrCat("the user PIN of PKCS#11 token ", token,
                                                      " has expired; set a new one (C_SetPIN)"));
    case CKR_USER_PIN_NOT_INITIALIZED:
      return absl::FailedPreconditionError(
          absl::StrCat("PKCS#11 token ", token, " has no user PIN yet"));
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
      return absl::FailedPreconditionError(
          absl::StrCat("cannot log in to PKCS#11 token ", token,
                       " as its user: this process is logged in to it as the security officer"));
    default:
      return absl::UnavailableError(absl::StrCat("logging in to PKCS#11 token ", token, " failed (",
                                                 Pkcs11ErrorName(rv), ")"));
  }
}

absl::StatusOr<CK_SESSION_HANDLE> Pkcs11Token::OpenLoggedInSession(CK_FLAGS flags) {
  if (absl::Status s = PinRefusal(); !s.ok()) return s;
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  CK_RV rv = functions()->C_OpenSession(slot_, flags, nullptr, nullptr, &session);
  if (rv != CKR_OK) {
    std::string hint;
    if (rv == CKR_TOKEN_WRITE_PROTECTED) hint = ": the token is write-protected";
    if (rv == CKR_SESSION_COUNT) hint = ": the token has no free sessions";
    return absl::UnavailableError(absl::StrCat("cannot open a session on PKCS#11 token ",
                                               QuotedLabel(label_), " (", Pkcs11ErrorName(rv), ")",
                                               hint));
  }
  bool anchor_lost;
  {
    absl::MutexLock lock(&mu_);
    anchor_lost = ClaimHandle(session);
  }
  if (absl::Status s = EnsureLoggedIn(session); !s.ok()) {
    CloseSession(session);
    return s;
  }
  if (anchor_lost) ReplaceAnchorIfGone();
  return session;
}

absl::Status Pkcs11Token::EnsureLoggedIn(CK_SESSION_HANDLE session) {
  if (absl::Status s = PinRefusal(); !s.ok()) return s;
  CK_SESSION_INFO info;
  const CK_RV rv = functions()->C_GetSessionInfo(session, &info);
  if (rv != CKR_OK) return SessionStateUnreadable(*this, rv);
  if (IsUserSession(info)) return absl::OkStatus();  // the process's login holds
  if (!logged_in_once_.load()) {
    // Open()'s first login: its errors are the operator's to fix now.
    CK_RV login_rv;
    return Login(session, &login_rv);
  }
  return LogInAgain(session);
}

absl::Status Pkcs11Token::LogInAgain(CK_SESSION_HANDLE session) {
  absl::MutexLock lock(&login_mu_);
  if (!pin_refusal_.ok()) return pin_refusal_;
  const std::string token = QuotedLabel(label_);
  // Another caller may have logged in again while this one waited.
  CK_SESSION_INFO session_info;
  CK_RV rv = functions()->C_GetSessionInfo(session, &session_info);
  if (rv != CKR_OK) return SessionStateUnreadable(*this, rv);
  if (IsUserSession(session_info)) return absl::OkStatus();

  // Never spend the PIN's last try, nor try a locked PIN, unattended: the
  // kept PIN may be the one that is wrong.
  CK_TOKEN_INFO info;
  rv = functions()->C_GetTokenInfo(slot_, &info);
  if (rv != CKR_OK) {
    return absl::UnavailableError(
        absl::StrCat("the login to PKCS#11 token ", token,
                     " was lost, and reading the token's PIN state failed (", Pkcs11ErrorName(rv),
                     "); not logging in again without it"));
  }
  if ((info.flags & CKF_USER_PIN_LOCKED) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the login to PKCS#11 token ", token,
        " was lost, and its user PIN is locked after too many wrong PINs; its security officer "
        "must reset it, then fix the PIN if it changed and restart clavisd"));
  }
  if ((info.flags & CKF_USER_PIN_FINAL_TRY) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the login to PKCS#11 token ", token,
        " was lost, and one more wrong PIN would lock its user PIN (CKF_USER_PIN_FINAL_TRY): the "
        "kept PIN is not risked on it; log in once with the right PIN using the HSM's tools to "
        "reset the count, and if the PIN was changed, fix it and restart clavisd"));
  }

  CK_RV login_rv = CKR_OK;
  if (absl::Status s = Login(session, &login_rv); !s.ok()) {
    if (!IsPinRefusal(login_rv)) return s;  // not the PIN's fault: try again next time
    pin_refusal_ = absl::PermissionDeniedError(absl::StrCat(
        "PKCS#11 token ", token, " refused the PIN when logging in again after losing the login (",
        Pkcs11ErrorName(login_rv), ")", PinTriesWarning(*this),
        "; it is not tried again, so as not to lock the user PIN: fix the PIN and restart "
        "clavisd"));
    pin_refused_.store(true);
    spdlog::error("{}", std::string(pin_refusal_.message()));
    return pin_refusal_;
  }
  // The token had dropped the login; handles found before may be stale.
  login_generation_.fetch_add(1);
  spdlog::warn(
      "PKCS#11 token {}: the login was lost (token reset or sessions closed); logged in again",
      token);
  ReplaceAnchorIfGone();
  return absl::OkStatus();
}

absl::Status Pkcs11Token::PinRefusal() const {
  if (!pin_refused_.load()) return absl::OkStatus();
  absl::MutexLock lock(&login_mu_);
  return pin_refusal_;
}

void Pkcs11Token::ReplaceAnchorIfGone() {
  absl::MutexLock lock(&mu_);
  if (anchor_ != CK_INVALID_HANDLE) {
    CK_SESSION_INFO info;
    // Open: it holds the new login as well. Any other answer (the token
    // cannot tell now): kept, since replacing it would leak it.
    if (!Pkcs11SessionGone(functions()->C_GetSessionInfo(anchor_, &info))) return;
    // Gone: not closed, its number may already be a new session's.
    anchor_ = CK_INVALID_HANDLE;
  }
  CK_SESSION_HANDLE anchor = CK_INVALID_HANDLE;
  const CK_RV rv = functions()->C_OpenSession(slot_, CKF_SERIAL_SESSION, nullptr, nullptr, &anchor);
  if (rv != CKR_OK) {
    spdlog::warn("PKCS#11 token {}: cannot open a session to keep the login ({})",
                 QuotedLabel(label_), Pkcs11ErrorName(rv));
    return;
  }
  ClaimHandle(anchor);
  anchor_ = anchor;
}

bool Pkcs11Token::ClaimHandle(CK_SESSION_HANDLE fresh) {
  const size_t before = idle_.size();
  idle_.erase(std::remove(idle_.begin(), idle_.end(), fresh), idle_.end());
  open_ -= before - idle_.size();
  if (anchor_ != fresh) return false;
  anchor_ = CK_INVALID_HANDLE;
  return true;
}

absl::StatusOr<Pkcs11Token::Lease> Pkcs11Token::Acquire() {
  if (absl::Status s = PinRefusal(); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Pkcs11Token::CanAcquire));
    if (!idle_.empty()) {
      const CK_SESSION_HANDLE session = idle_.back();
      idle_.pop_back();
      return Lease(this, session);
    }
    ++open_;  // reserve the place while opening outside the lock
  }
  absl::StatusOr<CK_SESSION_HANDLE> session = OpenLoggedInSession(CKF_SERIAL_SESSION);
  if (!session.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
    return session.status();
  }
  return Lease(this, *session);
}

void Pkcs11Token::Release(CK_SESSION_HANDLE session, Lease::End end) {
  if (end == Lease::End::kClose) CloseSession(session);
  absl::MutexLock lock(&mu_);
  if (end == Lease::End::kReturn) {
    idle_.push_back(session);
  } else {
    --open_;
  }
}

void Pkcs11Token::DropGoneIdleSessions() {
  absl::MutexLock lock(&mu_);
  std::vector<CK_SESSION_HANDLE> kept;
  for (CK_SESSION_HANDLE session : idle_) {
    CK_SESSION_INFO info;
    if (Pkcs11SessionGone(functions()->C_GetSessionInfo(session, &info))) {
      --open_;  // dropped, not closed: see the header
    } else {
      kept.push_back(session);
    }
  }
  idle_.swap(kept);
}

absl::StatusOr<CK_SESSION_HANDLE> Pkcs11Token::OpenReadWriteSession() {
  return OpenLoggedInSession(CKF_SERIAL_SESSION | CKF_RW_SESSION);
}

void Pkcs11Token::CloseSession(CK_SESSION_HANDLE session) {
  const CK_RV rv = functions()->C_CloseSession(session);
  // Already gone (token reset, all sessions closed) is what we wanted.
  if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_SESSION_CLOSED &&
      !IsUnreachable(rv)) {
    spdlog::warn("PKCS#11 token {}: closing a session failed ({})", QuotedLabel(label_),
                 Pkcs11ErrorName(rv));
  }
}

Pkcs11Token::Lease::Lease(Lease&& other) noexcept
    : token_(other.token_), handle_(other.handle_), end_(other.end_) {
  other.token_ = nullptr;
}

Pkcs11Token::Lease::~Lease() {
  if (token_ != nullptr) token_->Release(handle_, end_);
}

}  // namespace clavis::kms::root_internal
