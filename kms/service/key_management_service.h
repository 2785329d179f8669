// KeyManagementService: the gRPC face of the data plane. It only translates:
// request fields -> domain calls (Envelope) -> response fields, and
// absl::Status -> grpc::Status. No key logic lives here. Every call runs in
// a GuardedCall (authenticated, authorized by the key policy, audited).
#ifndef CLAVIS_KMS_SERVICE_KEY_MANAGEMENT_SERVICE_H_
#define CLAVIS_KMS_SERVICE_KEY_MANAGEMENT_SERVICE_H_

#include <atomic>

#include "absl/time/time.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "kms/keys/envelope.h"
#include "kms/keys/key_events.h"
#include "kms/service/guarded_call.h"

namespace clavis::kms {

struct KeyManagementLimits {
  size_t max_batch_items = 1000;
  // A WatchKeyEvents stream ends (OK) after this long; clients open it
  // again (the SDK does, and resyncs its cache), which spreads streams over
  // replicas and re-checks their credentials from scratch.
  absl::Duration max_stream_lifetime = absl::Hours(1);
  // How often an open stream's credentials are checked again (a token that
  // expired or was revoked ends the stream: UNAUTHENTICATED).
  absl::Duration stream_reauthentication_interval = absl::Seconds(5);
};

class KeyManagementService final : public clavis::v1::KeyManagement::Service {
 public:
  // REQUIRES: envelope and events outlive the service.
  KeyManagementService(Envelope* envelope, KeyEventBus* events, AccessComponents access,
                       KeyManagementLimits limits = {});

  // Ends open WatchKeyEvents streams (called at shutdown).
  void Shutdown();

  grpc::Status GenerateDataKey(grpc::ServerContext* context,
                               const clavis::v1::GenerateDataKeyRequest* request,
                               clavis::v1::GenerateDataKeyResponse* response) override;
  grpc::Status BatchGenerateDataKey(grpc::ServerContext* context,
                                    const clavis::v1::BatchGenerateDataKeyRequest* request,
                                    clavis::v1::BatchGenerateDataKeyResponse* response) override;
  grpc::Status Decrypt(grpc::ServerContext* context, const clavis::v1::DecryptRequest* request,
                       clavis::v1::DecryptResponse* response) override;
  grpc::Status BatchDecrypt(grpc::ServerContext* context,
                            const clavis::v1::BatchDecryptRequest* request,
                            clavis::v1::BatchDecryptResponse* response) override;
  grpc::Status ReEncrypt(grpc::ServerContext* context, const clavis::v1::ReEncryptRequest* request,
                         clavis::v1::ReEncryptResponse* response) override;
  grpc::Status Encrypt(grpc::ServerContext* context, const clavis::v1::EncryptRequest* request,
                       clavis::v1::EncryptResponse* response) override;
  grpc::Status WatchKeyEvents(grpc::ServerContext* context,
                              const clavis::v1::WatchKeyEventsRequest* request,
                              grpc::ServerWriter<clavis::v1::KeyEvent>* writer) override;
  grpc::Status DeriveBlindIndexKey(grpc::ServerContext* context,
                                   const clavis::v1::DeriveBlindIndexKeyRequest* request,
                                   clavis::v1::DeriveBlindIndexKeyResponse* response) override;

 private:
  // Each authorizes its own request through `call` (a batch item is
  // authorized on its own key and segment).
  absl::Status DoGenerateDataKey(GuardedCall& call,
                                 const clavis::v1::GenerateDataKeyRequest& request,
                                 clavis::v1::GenerateDataKeyResponse* response);
  absl::Status DoDecrypt(GuardedCall& call, const clavis::v1::DecryptRequest& request,
                         clavis::v1::DecryptResponse* response);
  template <typename Items, typename Response, typename DoItem>
  grpc::Status RunBatch(grpc::ServerContext* context, const std::string& rpc, const Items& items,
                        Response* response, const DoItem& do_item);

  Envelope* const envelope_;
  KeyEventBus* const events_;
  const AccessComponents access_;
  const KeyManagementLimits limits_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVICE_KEY_MANAGEMENT_SERVICE_H_
