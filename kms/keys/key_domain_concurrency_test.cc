// The key domain under concurrent use, as clavisd's RPC threads drive it:
// data keys generated and decrypted from several threads while keys and
// segments rotate, are disabled, enabled and revoked, and the bounded
// caches evict. Built under ThreadSanitizer too (scripts/setup --tsan).
// Assertions are on results only: every data key decrypts to what was
// generated, a state change takes effect for every call that starts after
// it returned, rotations are counted exactly once, events arrive in order.
#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kms/keys/envelope.h"
#include "kms/keys/key_domain_testing.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyEvent;
using testing::KeyDomainTest;

constexpr int kWorkers = 4;

struct Issued {
  std::string blob;
  std::string plaintext;
};

// Data keys issued so far, shared by the worker threads.
class IssuedPool {
 public:
  void Add(Issued issued) {
    std::lock_guard<std::mutex> lock(mu_);
    all_.push_back(std::move(issued));
  }
  // A copy of a random one (false if none yet).
  bool Pick(std::mt19937& rng, Issued* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (all_.empty()) return false;
    *out = all_[std::uniform_int_distribution<size_t>(0, all_.size() - 1)(rng)];
    return true;
  }
  std::vector<Issued> All() {
    std::lock_guard<std::mutex> lock(mu_);
    return all_;
  }

 private:
  std::mutex mu_;
  std::vector<Issued> all_;
};

class KeyDomainConcurrencyTest : public KeyDomainTest {
 protected:
  void SetUp() override {
    KeyDomainTest::SetUp();
    // Caches far smaller than the working set: entries are evicted and
    // refilled all the time.
    KeyRepositoryOptions small;
    small.key_cache_entries = 2;
    small.segment_cache_entries = 3;
    Rebuild(small);
  }

  static SegmentName Seg(const KeyName& key, int i) {
    return SegmentName{key, "s" + std::to_string(i)};
  }

  // What a client does with ABORTED (a concurrent write won every attempt).
  template <typename F>
  static auto Retried(F f) {
    auto result = f();
    for (int i = 0; i < 50 && absl::IsAborted(result.status()); ++i) result = f();
    return result;
  }

  const EncryptionContext ctx_{{"customer", "42"}};
};

TEST_F(KeyDomainConcurrencyTest, DataKeysDecryptWhileKeysAndSegmentsRotateAndCachesEvict) {
  constexpr int kKeys = 3;
  constexpr int kSegments = 5;
  constexpr int kRounds = 60;
  auto events = events_.Subscribe("acme");
  std::vector<KeyName> keys;
  for (int k = 0; k < kKeys; ++k) keys.push_back(MakeKey("acme", "k" + std::to_string(k)));

  IssuedPool pool;
  std::atomic<int> failures{0};
  std::atomic<int> workers_left{kWorkers};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(w);
      for (int i = 0; i < kRounds; ++i) {
        const KeyName& key = keys[rng() % kKeys];
        const SegmentName segment = Seg(key, static_cast<int>(rng() % kSegments));
        auto dk = Retried([&] { return envelope_->GenerateDataKey(segment, ctx_); });
        if (!dk.ok()) {
          ADD_FAILURE() << "GenerateDataKey " << segment.ToString() << ": " << dk.status();
          ++failures;
          continue;
        }
        Issued issued{dk->ciphertext_blob, std::string(dk->plaintext.view())};
        auto back = Retried([&] { return envelope_->Decrypt(issued.blob, ctx_, std::nullopt); });
        if (!back.ok() || std::string(back->plaintext.view()) != issued.plaintext) {
          ADD_FAILURE() << "fresh data key of " << segment.ToString()
                        << " does not decrypt: " << back.status();
          ++failures;
        }
        pool.Add(std::move(issued));
        Issued old;
        if (pool.Pick(rng, &old)) {
          auto again = Retried([&] { return envelope_->Decrypt(old.blob, ctx_, std::nullopt); });
          if (!again.ok() || std::string(again->plaintext.view()) != old.plaintext) {
            ADD_FAILURE() << "an earlier data key does not decrypt: " << again.status();
            ++failures;
          }
        }
      }
      --workers_left;
    });
  }
  // Rotations of keys and segments, and re-wraps, while the workers run.
  std::vector<std::atomic<int>> rotations(kKeys);
  threads.emplace_back([&] {
    std::mt19937 rng(1000);
    for (int i = 0; workers_left > 0 || i < 6; ++i) {
      const int k = static_cast<int>(rng() % kKeys);
      switch (i % 3) {
        case 0:
          if (i < 30) {
            auto rotated = lifecycle_->RotateKey(keys[k]);
            if (rotated.ok()) {
              ++rotations[k];
            } else {
              EXPECT_TRUE(absl::IsAborted(rotated.status())) << rotated.status();
            }
          }
          break;
        case 1: {
          auto rotated = lifecycle_->RotateSegment(Seg(keys[k], static_cast<int>(rng() % 5)));
          EXPECT_TRUE(rotated.ok() || absl::IsNotFound(rotated.status()) ||
                      absl::IsAborted(rotated.status()))
              << rotated.status();
          break;
        }
        case 2: {
          auto progress = lifecycle_->RewrapSegments(keys[k], "", 100);
          EXPECT_TRUE(progress.ok() || absl::IsAborted(progress.status())) << progress.status();
          break;
        }
      }
    }
  });
  // Counts ROTATED events while the others run, then what is left; the
  // sequence has no gap and never steps back.
  std::atomic<bool> producing{true};
  int rotated_events = 0;
  std::thread watcher([&] {
    uint64_t last = 0;
    KeyEvent event;
    while (true) {
      const bool last_round = !producing;
      auto result = events->Next(absl::Milliseconds(20), &event);
      ASSERT_TRUE(result == KeyEventSubscription::WaitResult::kEvent ||
                  result == KeyEventSubscription::WaitResult::kTimeout)
          << static_cast<int>(result);
      if (result == KeyEventSubscription::WaitResult::kTimeout) {
        if (last_round) break;
        continue;
      }
      EXPECT_EQ(event.sequence(), last + 1) << "events out of order or missing";
      last = event.sequence();
      if (event.type() == KeyEvent::ROTATED) ++rotated_events;
    }
  });
  for (std::thread& t : threads) t.join();
  producing = false;
  watcher.join();
  EXPECT_EQ(failures, 0);

  int total_rotations = 0;
  for (int k = 0; k < kKeys; ++k) {
    auto key = lifecycle_->GetKey(keys[k]);
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(key->primary_version(), 1u + rotations[k]) << "each rotation counted once";
    total_rotations += rotations[k];
  }
  EXPECT_EQ(rotated_events, total_rotations);
  // Everything issued still decrypts with cold caches, as after a restart.
  Rebuild();
  for (const Issued& issued : pool.All()) {
    auto back = envelope_->Decrypt(issued.blob, ctx_, std::nullopt);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(std::string(back->plaintext.view()), issued.plaintext);
  }
  EXPECT_EQ(pool.All().size(), static_cast<size_t>(kWorkers * kRounds));
}

TEST_F(KeyDomainConcurrencyTest, DisableEnableAndRevokeTakeEffectAtOnceUnderLoad) {
  constexpr int kSegments = 4;
  constexpr int kToggles = 15;
  const KeyName key = MakeKey("acme", "crm");
  const KeyName other = MakeKey("acme", "other");  // competes for the key cache
  // A probe data key per segment, for the admin thread's checks.
  std::vector<std::string> probes;
  for (int s = 0; s < kSegments; ++s) {
    auto dk = envelope_->GenerateDataKey(Seg(key, s), ctx_);
    ASSERT_TRUE(dk.ok()) << dk.status();
    probes.push_back(dk->ciphertext_blob);
  }

  constexpr int kRounds = 80;
  std::atomic<int> workers_left{kWorkers};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937 rng(w);
      // Only OK and FAILED_PRECONDITION (disabled, revoked) are possible.
      auto check = [&](const absl::Status& s) {
        if (!s.ok() && !absl::IsFailedPrecondition(s) && !absl::IsAborted(s)) {
          ADD_FAILURE() << s;
          ++unexpected;
        }
      };
      for (int round = 0; round < kRounds; ++round) {
        const int s = static_cast<int>(rng() % kSegments);
        auto dk = envelope_->GenerateDataKey(Seg(rng() % 2 ? key : other, s), ctx_);
        check(dk.status());
        if (dk.ok()) {
          auto back = envelope_->Decrypt(dk->ciphertext_blob, ctx_, std::nullopt);
          check(back.status());
          if (back.ok() && !(back->plaintext == dk->plaintext)) {
            ADD_FAILURE() << "decrypted to another key";
            ++unexpected;
          }
        }
        check(envelope_->Decrypt(probes[s], ctx_, std::nullopt).status());
      }
      --workers_left;
    });
  }

  // Each change, once it returned, holds for every call that starts after
  // it, whatever the workers put in the caches meanwhile.
  auto decrypt_code = [&](int s) {
    return envelope_->Decrypt(probes[s], ctx_, std::nullopt).status().code();
  };
  using absl::StatusCode;
  for (int i = 0; i < kToggles || workers_left > 0; ++i) {
    ASSERT_TRUE(Retried([&] { return lifecycle_->DisableKey(key); }).ok());
    for (int s = 0; s < kSegments; ++s) EXPECT_EQ(decrypt_code(s), StatusCode::kFailedPrecondition);
    EXPECT_EQ(envelope_->GenerateDataKey(Seg(key, 0), ctx_).status().code(),
              StatusCode::kFailedPrecondition);
    ASSERT_TRUE(Retried([&] { return lifecycle_->EnableKey(key); }).ok());
    for (int s = 0; s < kSegments; ++s) EXPECT_EQ(decrypt_code(s), StatusCode::kOk);

    const int revoked = i % kSegments;
    ASSERT_TRUE(Retried([&] { return lifecycle_->RevokeSegment(Seg(key, revoked)); }).ok());
    for (int s = 0; s < kSegments; ++s) {
      EXPECT_EQ(decrypt_code(s), s == revoked ? StatusCode::kFailedPrecondition : StatusCode::kOk)
          << "segment " << s << ", revoked " << revoked;
    }
    ASSERT_TRUE(Retried([&] { return lifecycle_->EnableSegment(Seg(key, revoked)); }).ok());
    EXPECT_EQ(decrypt_code(revoked), StatusCode::kOk);
  }
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(unexpected, 0);
  for (int s = 0; s < kSegments; ++s) EXPECT_EQ(decrypt_code(s), StatusCode::kOk);
}

}  // namespace
}  // namespace clavis::kms
