#include "gtest/gtest.h"
#include "kms/server/server.h"

namespace clavis::kms {
namespace {

TEST(ServerConfigTest, LoopbackAddressesAreRecognised) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:7370"));
  EXPECT_TRUE(IsLoopbackAddress("127.1.2.3:0"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:7370"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:7370"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:7370"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:7370"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.1:7370"));
  EXPECT_FALSE(IsLoopbackAddress("127.evil.example:7370"));
  EXPECT_FALSE(IsLoopbackAddress("127.0.0.1"));
}

TEST(ServerConfigTest, NonLoopbackListenAddressIsRefusedUntilTls) {
  clavis::server::ServerConfig config;
  config.set_listen_address("0.0.0.0:7370");
  auto completed = CompleteConfig(config);
  EXPECT_EQ(completed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(completed.status().message().find("loopback"), std::string::npos);
}

TEST(ServerConfigTest, DefaultsAreFilledIn) {
  auto completed = CompleteConfig({});
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_EQ(completed->listen_address(), "127.0.0.1:7370");
  EXPECT_EQ(completed->data_dir(), "clavis-data");
  EXPECT_EQ(completed->max_batch_items(), 1000u);
}

TEST(ServerConfigTest, BadValuesAreNamed) {
  clavis::server::ServerConfig config;
  config.set_listen_address("127.0.0.1:99999");
  EXPECT_EQ(CompleteConfig(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.set_listen_address("127.0.0.1:1");
  config.set_log_level("loud");
  EXPECT_EQ(CompleteConfig(config).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clavis::kms
