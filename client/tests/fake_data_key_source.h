// An in-memory DataKeySource for unit tests: issues random data keys and
// remembers each blob's key, segment and context, refusing (like clavisd) a
// blob presented with any other. Thread-safe.
#ifndef CLAVIS_CLIENT_TESTS_FAKE_DATA_KEY_SOURCE_H_
#define CLAVIS_CLIENT_TESTS_FAKE_DATA_KEY_SOURCE_H_

#include <map>
#include <mutex>  // std::mutex: visible to ThreadSanitizer (Debian's absl is not instrumented)
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clavis/data_key_source.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace clavis::testing {

class FakeDataKeySource : public DataKeySource {
 public:
  absl::StatusOr<DataKey> GenerateDataKey(absl::string_view key, absl::string_view segment,
                                          const EncryptionContext& context) override {
    Delay();
    std::lock_guard<std::mutex> lock(mu_);
    ++generate_calls_;
    if (disabled_) return absl::FailedPreconditionError("key is DISABLED");
    DataKey dk;
    dk.plaintext = crypto::RandomSecret(kDataKeySize);
    dk.ciphertext_blob =
        absl::StrCat("fake-blob-", absl::BytesToHexString(crypto::RandomBytes(16)));
    entries_.emplace(dk.ciphertext_blob,
                     Entry{std::string(key), std::string(segment), context, dk.plaintext.Clone()});
    issued_.push_back(dk.plaintext.Clone());
    return dk;
  }

  absl::StatusOr<SecretBytes> DecryptDataKey(absl::string_view key, absl::string_view segment,
                                             absl::string_view blob,
                                             const EncryptionContext& context) override {
    Delay();
    std::lock_guard<std::mutex> lock(mu_);
    ++decrypt_calls_;
    return DecryptLocked(key, segment, blob, context);
  }

  std::vector<absl::StatusOr<SecretBytes>> BatchDecryptDataKeys(
      absl::Span<const DataKeyRequest> requests) override {
    Delay();
    std::lock_guard<std::mutex> lock(mu_);
    ++batch_calls_;
    batch_items_ += requests.size();
    std::vector<absl::StatusOr<SecretBytes>> out;
    for (const DataKeyRequest& r : requests) {
      out.push_back(DecryptLocked(r.key, r.segment, r.ciphertext_blob, r.context));
    }
    return out;
  }

  // Deterministic per (key, segment, index), like the server's derivation.
  absl::StatusOr<SecretBytes> DeriveBlindIndexKey(absl::string_view key, absl::string_view segment,
                                                  absl::string_view index) override {
    Delay();
    std::lock_guard<std::mutex> lock(mu_);
    ++index_calls_;
    if (disabled_) return absl::FailedPreconditionError("key is DISABLED");
    absl::StatusOr<std::string> derived = crypto::HmacSha256(
        index_root_, absl::StrCat(key.size(), ":", key, segment.size(), ":", segment, index));
    return SecretBytes::CopyOf(*derived);
  }

  // Every call sleeps this long first (to make concurrent misses overlap).
  void set_delay(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    delay_ = d;
  }
  int generate_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return generate_calls_;
  }
  int decrypt_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return decrypt_calls_;
  }
  int batch_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return batch_calls_;
  }
  size_t batch_items() {
    std::lock_guard<std::mutex> lock(mu_);
    return batch_items_;
  }
  int index_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return index_calls_;
  }

 private:
  void Delay() {
    absl::Duration d;
    {
      std::lock_guard<std::mutex> lock(mu_);
      d = delay_;
    }
    if (d > absl::ZeroDuration()) absl::SleepFor(d);
  }

  absl::StatusOr<SecretBytes> DecryptLocked(absl::string_view key, absl::string_view segment,
                                            absl::string_view blob,
                                            const EncryptionContext& context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (disabled_) return absl::FailedPreconditionError("key is DISABLED");
    auto it = entries_.find(std::string(blob));
    if (it == entries_.end() || it->second.key != key || it->second.segment != segment ||
        it->second.context != context) {
      return absl::InvalidArgumentError("decryption failed");
    }
    return it->second.data_key.Clone();
  }

 public:
  void set_disabled(bool disabled) {
    std::lock_guard<std::mutex> lock(mu_);
    disabled_ = disabled;
  }
  // Copies of every data key issued so far, oldest first.
  std::vector<SecretBytes> IssuedKeys() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<SecretBytes> out;
    for (const SecretBytes& k : issued_) out.push_back(k.Clone());
    return out;
  }

 private:
  struct Entry {
    std::string key;
    std::string segment;
    EncryptionContext context;
    SecretBytes data_key;
  };
  std::mutex mu_;
  bool disabled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  int generate_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int decrypt_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int batch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  size_t batch_items_ ABSL_GUARDED_BY(mu_) = 0;
  int index_calls_ ABSL_GUARDED_BY(mu_) = 0;
  const SecretBytes index_root_ = crypto::RandomSecret(32);
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<SecretBytes> issued_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clavis::testing

#endif  // CLAVIS_CLIENT_TESTS_FAKE_DATA_KEY_SOURCE_H_
