// Client::Connect's checks, and the client's behaviour with no server
// (calls with a real server are in tests/integration/sdk_client_test.cc).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clavis/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/unused_port.h"

namespace clavis {
namespace {

using ::testing::HasSubstr;

ClientOptions At(absl::string_view endpoint) {
  ClientOptions options;
  options.endpoint = std::string(endpoint);
  return options;
}

absl::Status ConnectStatus(const ClientOptions& options) {
  return Client::Connect(options).status();
}

TEST(ClientOptionsTest, RefusesBadOptionsNamingTheField) {
  EXPECT_THAT(ConnectStatus(ClientOptions()).message(), HasSubstr("endpoint is empty"));
  EXPECT_THAT(ConnectStatus(At("127.0.0.1")).message(), HasSubstr("is not host:port"));
  EXPECT_THAT(ConnectStatus(At("127.0.0.1:0")).message(), HasSubstr("is not host:port"));
  ClientOptions o = At("127.0.0.1:1");
  o.max_attempts = 0;
  EXPECT_THAT(ConnectStatus(o).message(), HasSubstr("max_attempts must be 1..10"));
  o.max_attempts = 11;
  EXPECT_THAT(ConnectStatus(o).message(), HasSubstr("max_attempts must be 1..10"));
  o = At("127.0.0.1:1");
  o.call_timeout = absl::ZeroDuration();
  EXPECT_THAT(ConnectStatus(o).message(), HasSubstr("call_timeout"));
  o = At("127.0.0.1:1");
  o.max_backoff = absl::Milliseconds(1);
  EXPECT_THAT(ConnectStatus(o).message(), HasSubstr("initial_backoff <= max_backoff"));
  o = At("127.0.0.1:1");
  o.backoff_multiplier = 0.5;
  EXPECT_THAT(ConnectStatus(o).message(), HasSubstr("backoff_multiplier"));
}

TEST(ClientOptionsTest, PlaintextOnlyToLoopback) {
  for (const char* ok : {"127.0.0.1:7443", "127.1.2.3:1", "localhost:7443", "[::1]:7443"}) {
    EXPECT_TRUE(ConnectStatus(At(ok)).ok()) << ok;
  }
  for (const char* remote : {"10.0.0.1:7443", "kms.example.com:443", "[2001:db8::1]:7443",
                             "127.0.0.1.evil.com:1", "128.0.0.1:7443"}) {
    absl::Status s = ConnectStatus(At(remote));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << remote;
    EXPECT_THAT(s.message(), HasSubstr("not a loopback address")) << remote;
  }
}

TEST(ClientOptionsTest, SeveralEndpointsAreIpAddressesOfOneFamily) {
  EXPECT_TRUE(ConnectStatus(At("127.0.0.1:7443,127.0.0.2:7443")).ok());
  EXPECT_TRUE(ConnectStatus(At("[::1]:7443,[::1]:7444")).ok());
  EXPECT_THAT(ConnectStatus(At("127.0.0.1:7443,localhost:7443")).message(),
              HasSubstr("each must be an IP address"));
  EXPECT_THAT(ConnectStatus(At("127.0.0.1:7443,[::1]:7443")).message(),
              HasSubstr("mixes IPv4 and IPv6"));
  EXPECT_THAT(ConnectStatus(At("127.0.0.1:7443,")).message(), HasSubstr("is not host:port"));
  EXPECT_THAT(ConnectStatus(At("127.0.0.1:7443,10.0.0.1:7443")).message(),
              HasSubstr("not a loopback address"));
  ClientOptions tls = At("10.0.0.1:7443,10.0.0.2:7443");
  tls.tls_ca_pem = "-----BEGIN CERTIFICATE-----";
  EXPECT_THAT(ConnectStatus(tls).message(), HasSubstr("set tls_server_name"));
  tls.tls_server_name = "clavis.internal";
  EXPECT_TRUE(ConnectStatus(tls).ok());
}

using ::clavis::testing::UnusedLoopbackPort;

TEST(ClientOptionsTest, NoServerGivesUnavailableAfterAllAttemptsInBoundedTime) {
  ClientOptions options = At(absl::StrCat("127.0.0.1:", UnusedLoopbackPort()));
  options.call_timeout = absl::Seconds(2);
  options.max_attempts = 3;
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(100);
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<DataKey> dk = (*client)->GenerateDataKey("tenants/a/keys/k", "s", {});
  EXPECT_EQ(dk.status().code(), absl::StatusCode::kUnavailable) << dk.status();
  EXPECT_THAT(dk.status().message(), HasSubstr("gave up after 3 attempts"));
  EXPECT_LT(absl::Now() - start, 3 * options.call_timeout + 2 * options.max_backoff);
}

}  // namespace
}  // namespace clavis
