// An in-memory DataKeySource for unit tests: issues random data keys and
// remembers each blob's key, segment and context, refusing (like clavisd) a
// blob presented with any other. Thread-safe.
#ifndef CLAVIS_CLIENT_TESTS_FAKE_DATA_KEY_SOURCE_H_
#define CLAVIS_CLIENT_TESTS_FAKE_DATA_KEY_SOURCE_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "clavis/data_key_source.h"
#include "crypto/random.h"

namespace clavis::testing {

class FakeDataKeySource : public DataKeySource {
 public:
  absl::StatusOr<DataKey> GenerateDataKey(absl::string_view key, absl::string_view segment,
                                          const EncryptionContext& context) override {
    absl::MutexLock lock(&mu_);
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
    absl::MutexLock lock(&mu_);
    if (disabled_) return absl::FailedPreconditionError("key is DISABLED");
    auto it = entries_.find(std::string(blob));
    if (it == entries_.end() || it->second.key != key || it->second.segment != segment ||
        it->second.context != context) {
      return absl::InvalidArgumentError("decryption failed");
    }
    return it->second.data_key.Clone();
  }

  void set_disabled(bool disabled) {
    absl::MutexLock lock(&mu_);
    disabled_ = disabled;
  }
  // Copies of every data key issued so far, oldest first.
  std::vector<SecretBytes> IssuedKeys() {
    absl::MutexLock lock(&mu_);
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
  absl::Mutex mu_;
  bool disabled_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<SecretBytes> issued_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clavis::testing

#endif  // CLAVIS_CLIENT_TESTS_FAKE_DATA_KEY_SOURCE_H_
