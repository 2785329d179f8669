#include "kms/keys/import_tokens.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;

constexpr auto kOaep = ImportWrappingAlgorithm::kRsaesOaepSha256;
constexpr auto kRsaAes = ImportWrappingAlgorithm::kRsaAesKeyWrapSha256;

class ImportTokenStoreTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  const KeyName key_{"acme", "byok"};
};

TEST_F(ImportTokenStoreTest, IssuesAUsableWrappingKey) {
  ImportTokenStore store(&clock_);
  auto issued = store.Issue(key_, kOaep, 3072);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_EQ(issued->expire_time, clock_.Now() + absl::Hours(24));
  auto private_key = store.Redeem(issued->token, key_, kOaep);
  ASSERT_TRUE(private_key.ok()) << private_key.status();
  EXPECT_EQ((*private_key)->modulus_bits(), 3072);
  auto wrapped = crypto::RsaOaepEncrypt(issued->public_key_pem, crypto::SecretBytes::CopyOf("x"));
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ((*private_key)->Decrypt(*wrapped)->view(), "x");
}

TEST_F(ImportTokenStoreTest, RefusesOtherSizes) {
  ImportTokenStore store(&clock_);
  EXPECT_TRUE(absl::IsInvalidArgument(store.Issue(key_, kOaep, 2048).status()));
}

TEST_F(ImportTokenStoreTest, EachFailureHasItsOwnMessage) {
  ImportTokenStore store(&clock_);
  auto issued = store.Issue(key_, kRsaAes, 3072);
  ASSERT_TRUE(issued.ok());

  auto other_key = store.Redeem(issued->token, KeyName{"acme", "other"}, kRsaAes);
  ASSERT_TRUE(absl::IsFailedPrecondition(other_key.status()));
  EXPECT_THAT(other_key.status().message(), HasSubstr("issued for key tenants/acme/keys/byok"));

  auto other_algorithm = store.Redeem(issued->token, key_, kOaep);
  ASSERT_TRUE(absl::IsFailedPrecondition(other_algorithm.status()));
  EXPECT_THAT(other_algorithm.status().message(),
              HasSubstr("issued for wrapping algorithm RSA_AES_KEY_WRAP_SHA_256"));

  auto malformed = store.Redeem("not-a-token", key_, kRsaAes);
  ASSERT_TRUE(absl::IsInvalidArgument(malformed.status()));
  EXPECT_THAT(malformed.status().message(), HasSubstr("malformed"));

  std::string flipped = issued->token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  auto unknown = store.Redeem(flipped, key_, kRsaAes);
  ASSERT_TRUE(absl::IsInvalidArgument(unknown.status()));
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown"));

  store.Consume(issued->token);
  auto used = store.Redeem(issued->token, key_, kRsaAes);
  ASSERT_TRUE(absl::IsFailedPrecondition(used.status()));
  EXPECT_THAT(used.status().message(), HasSubstr("already used"));
}

TEST_F(ImportTokenStoreTest, ExpiryDiscardsThePrivateKey) {
  ImportTokenOptions options;
  options.validity = absl::Minutes(10);
  ImportTokenStore store(&clock_, options);
  auto issued = store.Issue(key_, kOaep, 3072);
  ASSERT_TRUE(issued.ok());
  std::weak_ptr<const crypto::RsaOaepPrivateKey> held = *store.Redeem(issued->token, key_, kOaep);
  clock_.Advance(absl::Minutes(10));
  store.Sweep();
  EXPECT_EQ(store.live_tokens(), 0u);
  EXPECT_TRUE(held.expired());  // nothing keeps the private key any more
  auto expired = store.Redeem(issued->token, key_, kOaep);
  ASSERT_TRUE(absl::IsFailedPrecondition(expired.status()));
  EXPECT_THAT(expired.status().message(), HasSubstr("expired at"));
}

TEST_F(ImportTokenStoreTest, TheSweeperDropsExpiredKeysWithoutAnyCall) {
  ImportTokenOptions options;
  options.validity = absl::Minutes(10);
  options.sweep_interval = absl::Milliseconds(10);
  ImportTokenStore store(&clock_, options);
  ASSERT_TRUE(store.Issue(key_, kOaep, 3072).ok());
  clock_.Advance(absl::Minutes(10));
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (store.live_tokens() != 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(store.live_tokens(), 0u);
}

TEST_F(ImportTokenStoreTest, RepeatedFailuresDiscardTheToken) {
  ImportTokenOptions options;
  options.max_failed_unwraps = 3;
  ImportTokenStore store(&clock_, options);
  auto issued = store.Issue(key_, kOaep, 3072);
  ASSERT_TRUE(issued.ok());
  for (int i = 0; i < 2; ++i) store.RecordFailure(issued->token);
  EXPECT_TRUE(store.Redeem(issued->token, key_, kOaep).ok());
  store.RecordFailure(issued->token);
  auto discarded = store.Redeem(issued->token, key_, kOaep);
  ASSERT_TRUE(absl::IsFailedPrecondition(discarded.status()));
  EXPECT_THAT(discarded.status().message(), HasSubstr("3 failed unwraps"));
}

TEST_F(ImportTokenStoreTest, ATokenServesOneImportAtATime) {
  ImportTokenStore store(&clock_);
  auto issued = store.Issue(key_, kOaep, 3072);
  ASSERT_TRUE(issued.ok());
  ASSERT_TRUE(store.Redeem(issued->token, key_, kOaep).ok());
  auto busy = store.Redeem(issued->token, key_, kOaep);
  ASSERT_TRUE(absl::IsFailedPrecondition(busy.status()));
  EXPECT_THAT(busy.status().message(), HasSubstr("in use by another import"));
  store.Release(issued->token);
  ASSERT_TRUE(store.Redeem(issued->token, key_, kOaep).ok());
  store.Consume(issued->token);
  EXPECT_THAT(store.Redeem(issued->token, key_, kOaep).status().message(),
              HasSubstr("already used"));
}

TEST_F(ImportTokenStoreTest, ConcurrentIssuersCannotPassTheLimit) {
  ImportTokenOptions options;
  options.max_live_tokens_per_key = 1;
  ImportTokenStore store(&clock_, options);
  std::atomic<int> issued{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      auto t = store.Issue(key_, kOaep, 3072);
      (t.ok() ? issued : refused)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(issued.load(), 1);
  EXPECT_EQ(refused.load(), 2);
}

TEST_F(ImportTokenStoreTest, LimitsLiveTokensPerKey) {
  ImportTokenOptions options;
  options.max_live_tokens_per_key = 1;
  ImportTokenStore store(&clock_, options);
  ASSERT_TRUE(store.Issue(key_, kOaep, 3072).ok());
  auto refused = store.Issue(key_, kOaep, 3072);
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status()));
  EXPECT_TRUE(store.Issue(KeyName{"acme", "other"}, kOaep, 3072).ok());
}

// Many imports race for one token while the sweeper runs: at any moment at
// most one holds it, a released token can be claimed again, and once one
// import consumed it every later attempt hears "already used".
TEST_F(ImportTokenStoreTest, ConcurrentRedeemsClaimATokenOnceWhileTheSweeperRuns) {
  ImportTokenOptions options;
  options.sweep_interval = absl::Milliseconds(1);
  ImportTokenStore store(&clock_, options);
  auto issued = store.Issue(key_, kOaep, 3072);
  ASSERT_TRUE(issued.ok()) << issued.status();
  constexpr int kThreads = 6;
  constexpr int kRounds = 40;
  std::atomic<int> holders{0}, claims{0}, consumed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        auto claimed = store.Redeem(issued->token, key_, kOaep);
        if (!claimed.ok()) {
          EXPECT_TRUE(absl::IsFailedPrecondition(claimed.status())) << claimed.status();
          continue;
        }
        EXPECT_EQ(++holders, 1) << "two imports hold the token";
        ++claims;
        --holders;
        // The last round of thread 0 imports; everyone else gives it back.
        if (t == 0 && i == kRounds - 1) {
          store.Consume(issued->token);
          ++consumed;
        } else {
          store.Release(issued->token);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(claims.load(), 1);
  EXPECT_LE(consumed.load(), 1);
  if (consumed == 0) {
    ASSERT_TRUE(store.Redeem(issued->token, key_, kOaep).ok());
    store.Consume(issued->token);
  }
  EXPECT_THAT(store.Redeem(issued->token, key_, kOaep).status().message(),
              HasSubstr("already used"));
  EXPECT_EQ(store.live_tokens(), 0u);
}

}  // namespace
}  // namespace clavis::kms
