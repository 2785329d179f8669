#include "kms/keys/import_tokens.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "kms/keys/resource_views.h"

namespace clavis::kms {
namespace {

// absl::Mutex::AwaitWithTimeout on a std::condition_variable: waits until
// `ready()` or `timeout` has passed (an infinite or huge timeout waits for
// `ready()` alone) and returns `ready()`.
template <typename Predicate>
bool AwaitWithTimeout(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                      absl::Duration timeout, Predicate ready) {
  if (timeout >= absl::Hours(24 * 365 * 100)) {
    cv.wait(lock, ready);
    return true;
  }
  return cv.wait_for(lock, absl::ToChronoNanoseconds(std::max(timeout, absl::ZeroDuration())),
                     ready);
}

// "clavis-import-v1." + 16 random bytes, base64url without padding.
constexpr absl::string_view kTokenPrefix = "clavis-import-v1.";
constexpr size_t kTokenIdBytes = 16;
constexpr size_t kTokenIdChars = 22;

absl::StatusOr<std::string> TokenId(absl::string_view token) {
  if (!absl::StartsWith(token, kTokenPrefix) ||
      token.size() != kTokenPrefix.size() + kTokenIdChars) {
    return absl::InvalidArgumentError(
        "import_token is malformed: pass the import_token GetImportParameters returned, unchanged");
  }
  return std::string(token.substr(kTokenPrefix.size()));
}

absl::Status Unknown() {
  return absl::InvalidArgumentError(
      "import token unknown: this clavisd did not issue it, or it restarted since (tokens live "
      "in memory only); call GetImportParameters again (clavisctl key import-params)");
}

}  // namespace

ImportTokenStore::ImportTokenStore(const Clock* clock, ImportTokenOptions options)
    : clock_(clock), options_(options) {
  if (options_.sweep_interval <= absl::ZeroDuration()) return;
  sweeper_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      AwaitWithTimeout(stop_, lock, options_.sweep_interval, [this] { return stopping_; });
      if (!stopping_) SweepLocked(clock_->Now());
    }
  });
}

ImportTokenStore::~ImportTokenStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

absl::StatusOr<IssuedImportToken> ImportTokenStore::Issue(const KeyName& key,
                                                          ImportWrappingAlgorithm algorithm,
                                                          int modulus_bits) {
  if (modulus_bits != kImportWrappingKeyBits3072 && modulus_bits != kImportWrappingKeyBits4096) {
    return absl::InvalidArgumentError("wrapping key spec must be RSA_3072 or RSA_4096");
  }
  const std::string key_name = key.ToString();
  {
    // Reserve a slot first, so concurrent callers cannot all start a
    // seconds-long key generation past the limits.
    std::lock_guard<std::mutex> lock(mu_);
    SweepLocked(clock_->Now());
    if (live_.size() + pending_ >= options_.max_live_tokens) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many import tokens are live (", options_.max_live_tokens,
                       "); use or let expire the ones issued, then try again"));
    }
    size_t for_key = pending_per_key_[key_name];
    for (const auto& [id, live] : live_) for_key += live.key == key ? 1 : 0;
    if (for_key >= options_.max_live_tokens_per_key) {
      if (pending_per_key_[key_name] == 0) pending_per_key_.erase(key_name);
      return absl::ResourceExhaustedError(
          absl::StrCat("key ", key_name, " already has ", for_key,
                       " live import tokens; use one of them or wait for them to expire"));
    }
    ++pending_;
    ++pending_per_key_[key_name];
  }
  auto unreserve = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    --pending_;
    if (--pending_per_key_[key_name] == 0) pending_per_key_.erase(key_name);
  };
  // Key generation takes a second or more: outside the lock.
  auto generated = crypto::RsaOaepPrivateKey::Generate(modulus_bits);
  if (!generated.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    unreserve();
    return generated.status();
  }
  std::shared_ptr<const crypto::RsaOaepPrivateKey> private_key = *std::move(generated);
  IssuedImportToken out;
  auto der = private_key->PublicKeyDer();
  auto pem = private_key->PublicKeyPem();
  if (!der.ok() || !pem.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    unreserve();
    return !der.ok() ? der.status() : pem.status();
  }
  out.public_key_der = *std::move(der);
  out.public_key_pem = *std::move(pem);
  const std::string id = crypto::Base64Encode(crypto::RandomBytes(kTokenIdBytes),
                                              crypto::Base64Variant::kUrlSafeNoPadding);
  out.token = absl::StrCat(kTokenPrefix, id);
  std::lock_guard<std::mutex> lock(mu_);
  unreserve();
  out.expire_time = clock_->Now() + options_.validity;
  live_[id] = Live{key, algorithm, std::move(private_key), out.expire_time, 0};
  return out;
}

absl::StatusOr<std::shared_ptr<const crypto::RsaOaepPrivateKey>> ImportTokenStore::Redeem(
    absl::string_view token, const KeyName& key, ImportWrappingAlgorithm algorithm) {
  auto id = TokenId(token);
  if (!id.ok()) return id.status();
  std::lock_guard<std::mutex> lock(mu_);
  SweepLocked(clock_->Now());
  auto live = live_.find(*id);
  if (live == live_.end()) {
    auto dead = tombstones_.find(*id);
    if (dead == tombstones_.end()) return Unknown();
    const Tombstone& t = dead->second;
    const std::string again = absl::StrCat(
        "; call GetImportParameters again (clavisctl key import-params ", t.key.ToString(), ")");
    switch (t.ending) {
      case Ending::kExpired:
        return absl::FailedPreconditionError(
            absl::StrCat("import token expired at ", FormatTimestamp(t.when), again));
      case Ending::kUsed:
        return absl::FailedPreconditionError(absl::StrCat(
            "import token was already used for an import at ", FormatTimestamp(t.when), again));
      case Ending::kTooManyFailures:
        return absl::FailedPreconditionError(
            absl::StrCat("import token was discarded after ", options_.max_failed_unwraps,
                         " failed unwraps at ", FormatTimestamp(t.when), again));
    }
  }
  Live& l = live->second;
  if (!(l.key == key)) {
    return absl::FailedPreconditionError(
        absl::StrCat("import token was issued for key ", l.key.ToString(), ", not ", key.ToString(),
                     "; each token imports into the key it was issued for"));
  }
  if (l.algorithm != algorithm) {
    return absl::FailedPreconditionError(absl::StrCat(
        "import token was issued for wrapping algorithm ", ImportWrappingAlgorithmName(l.algorithm),
        ", but the request says ", ImportWrappingAlgorithmName(algorithm),
        "; wrap with the token's algorithm or ask for parameters for the other one"));
  }
  if (l.in_use) {
    return absl::FailedPreconditionError(
        "import token is in use by another import right now; a token makes one import");
  }
  l.in_use = true;
  return l.private_key;
}

void ImportTokenStore::Consume(absl::string_view token) {
  auto id = TokenId(token);
  if (!id.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto live = live_.find(*id);
  if (live == live_.end()) return;
  BuryLocked(*id, live->second, Ending::kUsed, clock_->Now());
  live_.erase(live);
}

void ImportTokenStore::RecordFailure(absl::string_view token) {
  auto id = TokenId(token);
  if (!id.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto live = live_.find(*id);
  if (live == live_.end()) return;
  live->second.in_use = false;
  if (++live->second.failures < options_.max_failed_unwraps) return;
  BuryLocked(*id, live->second, Ending::kTooManyFailures, clock_->Now());
  live_.erase(live);
}

void ImportTokenStore::Release(absl::string_view token) {
  auto id = TokenId(token);
  if (!id.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto live = live_.find(*id);
  if (live != live_.end()) live->second.in_use = false;
}

void ImportTokenStore::Sweep() {
  std::lock_guard<std::mutex> lock(mu_);
  SweepLocked(clock_->Now());
}

size_t ImportTokenStore::live_tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

void ImportTokenStore::SweepLocked(absl::Time now) {
  for (auto it = live_.begin(); it != live_.end();) {
    if (now >= it->second.expire_time) {
      BuryLocked(it->first, it->second, Ending::kExpired, it->second.expire_time);
      live_.erase(it++);  // drops the private key (cleared by OpenSSL when freed)
    } else {
      ++it;
    }
  }
}

void ImportTokenStore::BuryLocked(const std::string& id, const Live& live, Ending ending,
                                  absl::Time when) {
  if (tombstones_.emplace(id, Tombstone{live.key, ending, when}).second) {
    tombstone_order_.push_back(id);
  }
  while (tombstone_order_.size() > options_.max_tombstones) {
    tombstones_.erase(tombstone_order_.front());
    tombstone_order_.pop_front();
  }
}

}  // namespace clavis::kms
