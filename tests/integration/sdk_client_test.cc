// The SDK against a real clavisd: clavis::Client + RecordEncryptor seal and
// open records in several segments, a disabled key stops decryption, and a
// stopped server gives UNAVAILABLE after the configured attempts.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clavis/client.h"
#include "clavis/record_encryptor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/sdk_options.h"
#include "tests/testing/unused_port.h"

namespace clavis::testing {
namespace {

using ::testing::HasSubstr;

class SdkClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(clavisd_.Start().ok());
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/acme");
    create.set_key_id("crm");
    create.set_policy(TestKeyPolicy("tenants/acme/keys/crm"));
    clavis::v1::Key key;
    grpc::Status s = clavisd_.Admin()->CreateKey(ContextWithDeadline().get(), create, &key);
    ASSERT_TRUE(s.ok()) << s.error_message();
    key_ = key.name();
  }

  absl::StatusOr<std::shared_ptr<Client>> Connect(int max_attempts = 3) {
    // Authenticated with the acme admin's client certificate (mTLS).
    ClientOptions options = SdkClientOptions(clavisd_);
    options.call_timeout = absl::Seconds(5);
    options.max_attempts = max_attempts;
    options.initial_backoff = absl::Milliseconds(50);
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    if (!client.ok()) return client.status();
    return std::shared_ptr<Client>(std::move(*client));
  }

  TempDir dir_;
  ClavisdProcess clavisd_{ClavisdOptions(dir_.path() + "/data")};
  std::string key_;
};

TEST_F(SdkClientTest, SealsAndOpensRecordsInSeveralSegments) {
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto encryptor = RecordEncryptor::New(*client, key_);
  ASSERT_TRUE(encryptor.ok()) << encryptor.status();

  struct Row {
    std::string segment;
    EncryptionContext context;
    std::string plaintext;
    std::string sealed;
  };
  std::vector<Row> rows = {
      {"acme/orders/2026-11", {{"customer", "42"}}, "order 1001: 3 widgets", ""},
      {"acme/orders/2026-12", {{"customer", "42"}}, std::string(70000, 'x'), ""},
      {"acme/customers", {{"customer", "7"}, {"table", "customers"}}, "", ""},
  };
  for (Row& row : rows) {
    absl::StatusOr<std::string> sealed =
        (*encryptor)->Encrypt(row.segment, row.plaintext, row.context);
    ASSERT_TRUE(sealed.ok()) << row.segment << ": " << sealed.status();
    row.sealed = *sealed;
  }
  for (const Row& row : rows) {
    absl::StatusOr<std::string> opened = (*encryptor)->Decrypt(row.sealed, row.context);
    ASSERT_TRUE(opened.ok()) << row.segment << ": " << opened.status();
    EXPECT_EQ(*opened, row.plaintext);
  }
  // The server binds the data key to the context: another one is refused.
  absl::StatusOr<std::string> wrong = (*encryptor)->Decrypt(rows[0].sealed, {{"customer", "43"}});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument) << wrong.status();

  // The raw data plane: a data key and its blob, back through Decrypt and
  // BatchDecrypt.
  absl::StatusOr<DataKey> dk = (*client)->GenerateDataKey(key_, "acme/raw", {{"k", "v"}});
  ASSERT_TRUE(dk.ok()) << dk.status();
  EXPECT_EQ(dk->plaintext.size(), 32u);
  absl::StatusOr<SecretBytes> back = (*client)->Decrypt(dk->ciphertext_blob, {{"k", "v"}});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, dk->plaintext);
  std::vector<DecryptItem> items = {{dk->ciphertext_blob, {{"k", "v"}}, key_},
                                    {dk->ciphertext_blob, {{"k", "other"}}, ""}};
  auto batch = (*client)->BatchDecrypt(items);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), 2u);
  ASSERT_TRUE((*batch)[0].ok()) << (*batch)[0].status();
  EXPECT_EQ(*(*batch)[0], dk->plaintext);
  EXPECT_EQ((*batch)[1].status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SdkClientTest, DisabledKeyFailsDecryptWithFailedPrecondition) {
  auto client = Connect();
  ASSERT_TRUE(client.ok());
  auto encryptor = *RecordEncryptor::New(*client, key_);
  const EncryptionContext context = {{"customer", "42"}};
  absl::StatusOr<std::string> sealed = encryptor->Encrypt("acme/orders/2026-11", "row", context);
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  clavis::v1::KeyNameRequest disable;
  disable.set_name(key_);
  clavis::v1::Key key;
  ASSERT_TRUE(clavisd_.Admin()->DisableKey(ContextWithDeadline().get(), disable, &key).ok());

  absl::StatusOr<std::string> opened = encryptor->Decrypt(*sealed, context);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("DISABLED"));
  EXPECT_EQ(encryptor->Encrypt("acme/orders/2026-11", "row", context).status().code(),
            absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(clavisd_.Admin()->EnableKey(ContextWithDeadline().get(), disable, &key).ok());
  EXPECT_EQ(encryptor->Decrypt(*sealed, context).value_or("?"), "row");
}

TEST_F(SdkClientTest, StoppedServerGivesUnavailableAfterItsAttempts) {
  auto client = Connect(/*max_attempts=*/3);
  ASSERT_TRUE(client.ok());
  auto encryptor = *RecordEncryptor::New(*client, key_);
  absl::StatusOr<std::string> sealed = encryptor->Encrypt("acme/a", "row", {});
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  ASSERT_TRUE(clavisd_.Stop().ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> opened = encryptor->Decrypt(*sealed, {});
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kUnavailable) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("gave up after 3 attempts"));
  // At least the two jittered pauses (25 + 50 ms), at most three deadlines
  // and two capped pauses.
  EXPECT_GE(took, absl::Milliseconds(75));
  EXPECT_LT(took, absl::Seconds(3 * 5) + absl::Milliseconds(400));

  // Once clavisd is back (on a new port), the record opens again.
  ASSERT_TRUE(clavisd_.Start().ok());
  auto fresh = Connect();  // a new port after restart
  ASSERT_TRUE(fresh.ok());
  auto reopened = *RecordEncryptor::New(*fresh, key_);
  EXPECT_EQ(reopened->Decrypt(*sealed, {}).value_or("?"), "row");
}

TEST_F(SdkClientTest, ServiceTokensAuthenticateTheSdk) {
  // A key whose only user is the "batch" principal, which has no certificate:
  // it authenticates with a service token over TLS.
  clavis::v1::CreateKeyRequest create;
  create.set_parent("tenants/acme");
  create.set_key_id("batch");
  create.add_key_users(PrincipalName("acme", "batch"));
  clavis::v1::Key key;
  ASSERT_TRUE(clavisd_.Admin()->CreateKey(ContextWithDeadline().get(), create, &key).ok());

  ClientOptions options;
  options.endpoint = clavisd_.address();
  options.tls_ca_pem = ReadWholeFile(clavisd_.ca_cert_file());
  options.tls_server_name = "localhost";
  options.max_attempts = 1;
  int tokens_asked = 0;
  options.token_source = [&] {
    ++tokens_asked;
    return clavisd_.IssueToken(PrincipalName("acme", "batch"));
  };
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  auto encryptor = *RecordEncryptor::New(std::shared_ptr<Client>(std::move(*client)), key.name());
  auto sealed = encryptor->Encrypt("acme/batch", "row", {{"job", "nightly"}});
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(encryptor->Decrypt(*sealed, {{"job", "nightly"}}).value_or("?"), "row");
  EXPECT_GE(tokens_asked, 2) << "a token is attached to every call";

  // The admin's certificate gives no data-plane rights on this key.
  auto admin = Connect(/*max_attempts=*/1);
  ASSERT_TRUE(admin.ok());
  auto refused = (*RecordEncryptor::New(*admin, key.name()))->Encrypt("acme/batch", "row", {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();
}

TEST(SdkClientOptionsTest, TransportSecurityOptionsAreChecked) {
  ClientOptions options;
  options.endpoint = "10.0.0.1:7370";
  EXPECT_EQ(Client::Connect(options).status().code(), absl::StatusCode::kInvalidArgument)
      << "plaintext only to loopback";
  options.tls_ca_pem = "-----BEGIN CERTIFICATE-----";
  EXPECT_TRUE(Client::Connect(options).ok()) << "TLS to any host";
  options.tls_client_cert_pem = "cert";
  EXPECT_EQ(Client::Connect(options).status().code(), absl::StatusCode::kInvalidArgument)
      << "a certificate without its key";
}

// Several replicas in ClientOptions.endpoint: the first is down (nothing
// listens there), so calls go to the next.
TEST_F(SdkClientTest, FailsOverToTheNextEndpointWhenTheFirstIsDown) {
  const int dead_port = UnusedLoopbackPort();
  ClientOptions options =
      SdkClientOptions(clavisd_, PrincipalName("acme"),
                       absl::StrCat("127.0.0.1:", dead_port, ",", clavisd_.address()));
  std::shared_ptr<Client> client = *Client::Connect(options);
  auto encryptor = *RecordEncryptor::New(client, key_);
  absl::StatusOr<std::string> sealed = encryptor->Encrypt("acme/a", "row", {});
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(*encryptor->Decrypt(*sealed, {}), "row");
}

}  // namespace
}  // namespace clavis::testing
