#include "client/src/retry.h"

#include "absl/random/random.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::client_internal {
namespace {

using ::testing::HasSubstr;

RetryPolicy Policy(int attempts) {
  return RetryPolicy{attempts, absl::Milliseconds(10), absl::Milliseconds(40), 2.0};
}

TEST(RetryTest, BackoffGrowsExponentiallyWithJitterAndIsCapped) {
  absl::BitGen gen;
  const RetryPolicy policy = Policy(10);
  for (int i = 0; i < 200; ++i) {
    absl::Duration first = BackoffBeforeRetry(policy, 1, gen);
    EXPECT_GE(first, absl::Milliseconds(5));
    EXPECT_LE(first, absl::Milliseconds(10));
    absl::Duration second = BackoffBeforeRetry(policy, 2, gen);
    EXPECT_GE(second, absl::Milliseconds(10));
    EXPECT_LE(second, absl::Milliseconds(20));
    absl::Duration late = BackoffBeforeRetry(policy, 1000, gen);  // no overflow
    EXPECT_GE(late, absl::Milliseconds(20));
    EXPECT_LE(late, absl::Milliseconds(40));
  }
}

TEST(RetryTest, JitterSpreadsRetries) {
  absl::BitGen gen;
  absl::Duration a = BackoffBeforeRetry(Policy(3), 3, gen);
  bool differs = false;
  for (int i = 0; i < 20 && !differs; ++i) differs = BackoffBeforeRetry(Policy(3), 3, gen) != a;
  EXPECT_TRUE(differs);
}

TEST(RetryTest, RetriesOnlyUnavailable) {
  for (absl::Status failure :
       {absl::FailedPreconditionError("disabled"), absl::DeadlineExceededError("slow"),
        absl::InvalidArgumentError("bad"), absl::OkStatus()}) {
    int calls = 0;
    absl::Status s = CallWithRetries(Policy(5), [&] {
      ++calls;
      return failure;
    });
    EXPECT_EQ(calls, 1) << failure;
    EXPECT_EQ(s, failure);
  }
}

TEST(RetryTest, SucceedsAfterTransientUnavailability) {
  int calls = 0;
  absl::Status s = CallWithRetries(
      Policy(5), [&] { return ++calls < 3 ? absl::UnavailableError("down") : absl::OkStatus(); });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
}

TEST(RetryTest, GivesUpAfterMaxAttemptsSayingHowMany) {
  int calls = 0;
  const absl::Time start = absl::Now();
  absl::Status s = CallWithRetries(Policy(4), [&] {
    ++calls;
    return absl::UnavailableError("connection refused");
  });
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("connection refused (gave up after 4 attempts)"));
  // Pauses of at least 5 + 10 + 20 ms.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(35));

  calls = 0;
  s = CallWithRetries(Policy(1), [&] {
    ++calls;
    return absl::UnavailableError("down");
  });
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(s.message(), HasSubstr("(gave up after 1 attempt)"));
}

}  // namespace
}  // namespace clavis::client_internal
