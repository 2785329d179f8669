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

clavis::server::ServerConfig DevConfig() {
  clavis::server::ServerConfig config;
  config.set_insecure_dev_no_auth(true);
  return config;
}

TEST(ServerConfigTest, NonLoopbackListenAddressNeedsTls) {
  clavis::server::ServerConfig config;
  config.set_listen_address("0.0.0.0:7370");
  config.mutable_tokens()->set_issuers_file("issuers");
  config.mutable_tokens()->set_audience("a");
  auto completed = CompleteConfig(config);
  EXPECT_EQ(completed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(completed.status().message().find("tls.cert_file"), std::string::npos);
  config.mutable_tls()->set_cert_file("server.crt");
  config.mutable_tls()->set_key_file("server.key");
  EXPECT_TRUE(CompleteConfig(config).ok()) << CompleteConfig(config).status();
}

TEST(ServerConfigTest, InsecureDevModeIsLoopbackOnlyEvenWithTls) {
  clavis::server::ServerConfig config = DevConfig();
  config.mutable_tls()->set_cert_file("server.crt");
  config.mutable_tls()->set_key_file("server.key");
  config.set_listen_address("0.0.0.0:7370");
  auto completed = CompleteConfig(config);
  EXPECT_EQ(completed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(completed.status().message().find("insecure_dev_no_auth"), std::string::npos);
  config.set_listen_address("10.1.2.3:7370");
  EXPECT_FALSE(CompleteConfig(config).ok());
}

TEST(ServerConfigTest, SomeAuthenticationMustBeConfigured) {
  auto completed = CompleteConfig({});
  EXPECT_EQ(completed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(completed.status().message().find("no way to authenticate"), std::string::npos);
  clavis::server::ServerConfig tokens;
  tokens.mutable_tokens()->set_issuers_file("issuers");
  EXPECT_EQ(CompleteConfig(tokens).status().code(), absl::StatusCode::kInvalidArgument)
      << "an audience is required";
  clavis::server::ServerConfig ca;
  ca.mutable_tls()->set_client_ca_file("ca.crt");
  EXPECT_EQ(CompleteConfig(ca).status().code(), absl::StatusCode::kInvalidArgument)
      << "mTLS needs a server certificate";
  clavis::server::ServerConfig no_audit;
  no_audit.mutable_audit()->set_insecure_disabled(true);
  no_audit.mutable_tokens()->set_issuers_file("issuers");
  no_audit.mutable_tokens()->set_audience("a");
  EXPECT_EQ(CompleteConfig(no_audit).status().code(), absl::StatusCode::kFailedPrecondition)
      << "the audit log can only be switched off in development mode";
}

TEST(ServerConfigTest, DefaultsAreFilledIn) {
  auto completed = CompleteConfig(DevConfig());
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_EQ(completed->listen_address(), "127.0.0.1:7370");
  EXPECT_EQ(completed->data_dir(), "clavis-data");
  EXPECT_EQ(completed->max_batch_items(), 1000u);
  EXPECT_EQ(completed->audit().dir(), "clavis-data/audit");
}

TEST(ServerConfigTest, BadValuesAreNamed) {
  clavis::server::ServerConfig config = DevConfig();
  config.set_listen_address("127.0.0.1:99999");
  EXPECT_EQ(CompleteConfig(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.set_listen_address("127.0.0.1:1");
  config.set_log_level("loud");
  EXPECT_EQ(CompleteConfig(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.set_log_level("info");
  EXPECT_EQ(CompleteConfig(config)->log_format(), "text");
  config.set_log_format("json");
  EXPECT_TRUE(CompleteConfig(config).ok());
  config.set_log_format("xml");
  EXPECT_EQ(CompleteConfig(config).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ServerConfigTest, StorageBackendDefaultsToRocksDbAndEtcdNeedsEndpoints) {
  auto completed = CompleteConfig(DevConfig());
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_EQ(completed->storage().backend(), "rocksdb");

  clavis::server::ServerConfig config = DevConfig();
  config.mutable_storage()->set_backend("etcd");
  auto no_endpoints = CompleteConfig(config);
  EXPECT_EQ(no_endpoints.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_endpoints.status().message().find("--etcd_endpoints"), absl::string_view::npos);
  config.mutable_storage()->mutable_etcd()->add_endpoints("127.0.0.1:2379");
  completed = CompleteConfig(config);
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_EQ(completed->storage().etcd().key_prefix(), "/clavis/");
  EXPECT_EQ(completed->storage().etcd().request_timeout_ms(), 5000u);
  EXPECT_EQ(completed->audit().dir(), "clavis-data/audit") << "the audit log stays local";

  config.mutable_storage()->mutable_etcd()->set_cert_file("client.crt");
  EXPECT_EQ(CompleteConfig(config).status().code(), absl::StatusCode::kInvalidArgument)
      << "a client certificate without its key";
  config.mutable_storage()->set_backend("zookeeper");
  EXPECT_EQ(CompleteConfig(config).status().code(), absl::StatusCode::kInvalidArgument);
  // etcd settings with the default backend are a mistake, not ignored.
  config.mutable_storage()->set_backend("");
  EXPECT_EQ(CompleteConfig(config).status().code(), absl::StatusCode::kInvalidArgument);

  auto parsed = ParseConfigJson(
      R"({"storage": {"backend": "etcd", "etcd": {"endpoints": ["10.0.0.1:2379", "10.0.0.2:2379"],
          "keyPrefix": "/prod/", "caFile": "ca.pem"}}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->storage().etcd().endpoints_size(), 2);
  EXPECT_EQ(parsed->storage().etcd().key_prefix(), "/prod/");
}

TEST(ServerConfigTest, ParseConfigJsonRefusesUnknownFields) {
  auto config =
      ParseConfigJson(R"({"listen_address": "127.0.0.1:7000", "insecure_dev_no_auth": true})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_address(), "127.0.0.1:7000");
  EXPECT_TRUE(config->insecure_dev_no_auth());
  // A misspelt option must not be silently ignored.
  EXPECT_EQ(ParseConfigJson(R"({"listen_adress": "127.0.0.1:7000"})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseConfigJson("{").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clavis::kms
