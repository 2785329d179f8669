// SIGTERM while clients are busy: clavisd ends event streams with
// UNAVAILABLE, lets calls finish or refuses them cleanly, closes its store and
// exits 0; everything acknowledged is there after the restart.
#include <atomic>
#include <thread>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"

namespace clavis::testing {
namespace {

TEST(ShutdownTest, SigtermEndsStreamsFinishesCallsAndExitsCleanly) {
  TempDir dir;
  ClavisdProcess clavisd{ClavisdOptions(dir.path() + "/data")};
  ASSERT_TRUE(clavisd.Start().ok());
  {
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/acme");
    create.set_key_id("crm");
    create.set_policy(TestKeyPolicy("tenants/acme/keys/crm"));
    clavis::v1::Key key;
    ASSERT_TRUE(clavisd.Admin()->CreateKey(ContextWithDeadline().get(), create, &key).ok());
  }

  // A watcher and a busy data-plane client, each on its own channel.
  auto watch_channel = clavisd.NewChannel();
  auto data_channel = clavisd.NewChannel();
  grpc::Status watch_status;
  std::thread watcher([&] {
    auto stub = clavis::v1::KeyManagement::NewStub(watch_channel);
    auto ctx = ContextWithDeadline(absl::Seconds(60));
    clavis::v1::WatchKeyEventsRequest request;
    request.set_tenant("tenants/acme");
    auto reader = stub->WatchKeyEvents(ctx.get(), request);
    clavis::v1::KeyEvent event;
    while (reader->Read(&event)) {
    }
    watch_status = reader->Finish();
  });
  std::atomic<bool> stop{false};
  std::atomic<int> ok_calls{0}, unexpected{0};
  std::vector<std::string> blobs;
  std::thread client([&] {
    auto stub = clavis::v1::KeyManagement::NewStub(data_channel);
    while (!stop) {
      clavis::v1::GenerateDataKeyRequest request;
      request.set_key("tenants/acme/keys/crm");
      request.set_segment("s" + std::to_string(ok_calls % 7));
      clavis::v1::GenerateDataKeyResponse response;
      auto s =
          stub->GenerateDataKey(ContextWithDeadline(absl::Seconds(5)).get(), request, &response);
      if (s.ok()) {
        ++ok_calls;
        blobs.push_back(response.ciphertext_blob());
      } else if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
                 s.error_code() != grpc::StatusCode::CANCELLED) {
        // gRPC cancels calls that race with the start of shutdown; they were
        // never acknowledged, so either code is fine.
        ++unexpected;
        ADD_FAILURE() << "code " << s.error_code() << ": " << s.error_message();
      }
    }
  });
  absl::SleepFor(absl::Milliseconds(500));
  const absl::Time before = absl::Now();
  absl::Status stopped = clavisd.Stop(absl::Seconds(30));
  const absl::Duration took = absl::Now() - before;
  stop = true;
  client.join();
  watcher.join();

  EXPECT_TRUE(stopped.ok()) << stopped;  // exit status 0 after SIGTERM
  EXPECT_LT(took, absl::Seconds(15)) << "shutdown is bounded by its 10 s grace";
  EXPECT_EQ(watch_status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << watch_status.error_message();
  EXPECT_EQ(unexpected, 0);
  EXPECT_GT(ok_calls, 0);

  // Every acknowledged data key still decrypts after the restart.
  ASSERT_TRUE(clavisd.Start().ok());
  auto stub = clavisd.Data();
  for (const std::string& blob : blobs) {
    clavis::v1::DecryptRequest request;
    request.set_ciphertext_blob(blob);
    clavis::v1::DecryptResponse response;
    ASSERT_TRUE(stub->Decrypt(ContextWithDeadline().get(), request, &response).ok());
  }
}

}  // namespace
}  // namespace clavis::testing
