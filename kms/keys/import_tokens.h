// ImportTokenStore: the RSA wrapping keys handed out for BYOK imports
// (GetImportParameters), each behind an import token.
//
// A token is bound to one key, one wrapping algorithm and one wrapping key,
// expires (default 24 h), and is single use: a successful import consumes
// it. Its private key lives only in this process, in OpenSSL's secure heap
// when clavisd initialised one (mlocked, zeroed when freed), and is dropped
// at expiry, at use, after kMaxFailedUnwraps failed unwraps, or when the
// process ends: a restart invalidates every token (ask for a new one).
//
// After a token is gone, a small tombstone remembers why, so a late caller
// hears "expired at ..." or "already used" instead of "unknown".
//
// Every Redeem error is FailedPrecondition (token expired, used, discarded,
// issued for another key or algorithm) or InvalidArgument (malformed or
// unknown token), with a message that says what to do next; none reveals the
// private key or whether an unwrap failed for a padding reason.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_KEYS_IMPORT_TOKENS_H_
#define CLAVIS_KMS_KEYS_IMPORT_TOKENS_H_

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/rsa_oaep.h"
#include "kms/keys/clock.h"
#include "kms/keys/key_import.h"
#include "kms/keys/names.h"

namespace clavis::kms {

struct ImportTokenOptions {
  absl::Duration validity = absl::Hours(24);
  // Live tokens at once, in total and per key: each holds an RSA private
  // key that took a second or more of CPU to make.
  size_t max_live_tokens = 1000;
  size_t max_live_tokens_per_key = 10;
  // Failed unwraps after which a token is discarded.
  int max_failed_unwraps = 5;
  // Tombstones of used or discarded tokens kept for messages.
  size_t max_tombstones = 10000;
  // How often a background thread drops expired tokens' private keys, so
  // they go at expiry even when no call comes (zero: only on calls).
  absl::Duration sweep_interval = absl::ZeroDuration();
};

struct IssuedImportToken {
  std::string token;
  std::string public_key_der;
  std::string public_key_pem;
  absl::Time expire_time;
};

class ImportTokenStore {
 public:
  // REQUIRES: clock outlives the store.
  explicit ImportTokenStore(const Clock* clock, ImportTokenOptions options = {});
  // Stops the sweeper and drops every private key.
  ~ImportTokenStore();
  ImportTokenStore(const ImportTokenStore&) = delete;
  ImportTokenStore& operator=(const ImportTokenStore&) = delete;

  // A fresh wrapping key of `modulus_bits` (3072 or 4096) behind a new token
  // for `key`. ResourceExhausted when too many tokens are live.
  absl::StatusOr<IssuedImportToken> Issue(const KeyName& key, ImportWrappingAlgorithm algorithm,
                                          int modulus_bits);

  // The token's private key, if the token is live, was issued for `key`
  // and `algorithm`, and is not in use by another import (FailedPrecondition
  // then): the token is claimed until the caller calls exactly one of
  // Consume, RecordFailure or Release, so one token never makes two imports.
  absl::StatusOr<std::shared_ptr<const crypto::RsaOaepPrivateKey>> Redeem(
      absl::string_view token, const KeyName& key, ImportWrappingAlgorithm algorithm);
  // The import succeeded: the token is used up.
  void Consume(absl::string_view token);
  // The unwrap failed; the token is discarded after max_failed_unwraps.
  void RecordFailure(absl::string_view token);
  // The import was refused for another reason (wrong size, material that
  // does not fit the key): the token may be used again.
  void Release(absl::string_view token);

  // Drops expired tokens' private keys (also done on every call).
  void Sweep();
  size_t live_tokens() const;

 private:
  struct Live {
    KeyName key;
    ImportWrappingAlgorithm algorithm;
    std::shared_ptr<const crypto::RsaOaepPrivateKey> private_key;
    absl::Time expire_time;
    int failures = 0;
    bool in_use = false;  // claimed by an import in progress
  };
  enum class Ending { kExpired, kUsed, kTooManyFailures };
  struct Tombstone {
    KeyName key;
    Ending ending;
    absl::Time when;
  };

  void SweepLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BuryLocked(const std::string& id, const Live& live, Ending ending, absl::Time when)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  const ImportTokenOptions options_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Live> live_ ABSL_GUARDED_BY(mu_);
  // Tokens being issued (their RSA keys are being generated), in total and
  // per key: they count against the limits before they exist.
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, size_t> pending_per_key_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Tombstone> tombstones_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> tombstone_order_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::condition_variable stop_;  // notified when stopping_ is set
  std::thread sweeper_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_IMPORT_TOKENS_H_
