// Test fixture: the whole key domain (MemoryStore, a key-file root key in a
// temp dir, a FakeClock, an event bus) wired together. Test-only.
#ifndef CLAVIS_KMS_KEYS_KEY_DOMAIN_TESTING_H_
#define CLAVIS_KMS_KEYS_KEY_DOMAIN_TESTING_H_

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kms/keys/clock.h"
#include "kms/keys/envelope.h"
#include "kms/keys/key_events.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/keys/key_repository.h"
#include "kms/root/key_file_provider.h"
#include "kms/storage/memory_store.h"

namespace clavis::kms::testing {

class KeyDomainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = absl::StrCat(::testing::TempDir(), "/clavis_keys_", ::getpid(), "_", counter++);
    std::filesystem::create_directories(dir_);
    auto root = KeyFileRootKeyProvider::Open(dir_ + "/root.key", /*create_if_missing=*/true);
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *std::move(root);
    Rebuild();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // New repository/lifecycle/envelope over the same store (cold caches), as
  // after a restart.
  void Rebuild(KeyRepositoryOptions options = {}) {
    envelope_.reset();
    lifecycle_.reset();
    repository_ = std::make_unique<KeyRepository>(&store_, root_.get(), options);
    lifecycle_ = std::make_unique<KeyLifecycle>(repository_.get(), &clock_, &events_, limits_);
    envelope_ = std::make_unique<Envelope>(repository_.get(), lifecycle_.get());
  }

  KeyName MakeKey(const std::string& tenant = "acme", const std::string& id = "crm") {
    CreateKeyParams p;
    p.tenant = tenant;
    p.key_id = id;
    auto key = lifecycle_->CreateKey(p);
    EXPECT_TRUE(key.ok()) << key.status();
    return KeyName{tenant, id};
  }

  std::string dir_;
  MemoryStore store_;
  std::unique_ptr<RootKeyProvider> root_;
  FakeClock clock_;
  KeyEventBus events_;
  KeyPolicyLimits limits_;
  std::unique_ptr<KeyRepository> repository_;
  std::unique_ptr<KeyLifecycle> lifecycle_;
  std::unique_ptr<Envelope> envelope_;
};

}  // namespace clavis::kms::testing

#endif  // CLAVIS_KMS_KEYS_KEY_DOMAIN_TESTING_H_
