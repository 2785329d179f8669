#include "kms/service/key_management_service.h"

#include "absl/strings/str_cat.h"
#include "kms/service/grpc_status.h"

namespace clavis::kms {
namespace {

EncryptionContext ToContext(const google::protobuf::Map<std::string, std::string>& map) {
  return EncryptionContext(map.begin(), map.end());
}

void SetItemStatus(const absl::Status& s, clavis::v1::ItemStatus* out) {
  out->set_code(static_cast<int>(s.code()));
  out->set_message(std::string(s.message()));
}

}  // namespace

// One status per item, in request order; one bad item never fails the call.
template <typename Items, typename Response, typename DoItem>
grpc::Status KeyManagementService::RunBatch(const Items& items, Response* response,
                                            const DoItem& do_item) {
  if (static_cast<size_t>(items.size()) > limits_.max_batch_items) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "batch has ", items.size(), " items; at most ", limits_.max_batch_items, " are allowed")));
  }
  for (const auto& item : items) {
    auto* out = response->add_items();
    absl::Status s = do_item(item, out->mutable_result());
    if (!s.ok()) out->clear_result();
    SetItemStatus(s, out->mutable_status());
  }
  return grpc::Status::OK;
}

KeyManagementService::KeyManagementService(Envelope* envelope, KeyEventBus* events,
                                           KeyManagementLimits limits)
    : envelope_(envelope), events_(events), limits_(limits) {}

void KeyManagementService::Shutdown() { shutting_down_ = true; }

absl::Status KeyManagementService::DoGenerateDataKey(
    const clavis::v1::GenerateDataKeyRequest& request,
    clavis::v1::GenerateDataKeyResponse* response) {
  auto key = ParseKeyName(request.key());
  if (!key.ok()) return key.status();
  if (auto s = ValidateSegment(request.segment()); !s.ok()) return s;
  auto dk = envelope_->GenerateDataKey(SegmentName{*key, request.segment()},
                                       ToContext(request.encryption_context()));
  if (!dk.ok()) return dk.status();
  // The plaintext leaves secure memory here, for the wire; gRPC owns the
  // response buffer from now on.
  response->set_plaintext(std::string(dk->plaintext.view()));
  response->set_ciphertext_blob(std::move(dk->ciphertext_blob));
  response->set_key_version(KeyVersionName{*key, dk->key_version}.ToString());
  response->set_segment_key_version(dk->segment_key_version);
  return absl::OkStatus();
}

absl::Status KeyManagementService::DoDecrypt(const clavis::v1::DecryptRequest& request,
                                             clavis::v1::DecryptResponse* response) {
  std::optional<KeyName> expected;
  if (!request.key().empty()) {
    auto key = ParseKeyName(request.key());
    if (!key.ok()) return key.status();
    expected = *key;
  }
  auto result = envelope_->Decrypt(request.ciphertext_blob(),
                                   ToContext(request.encryption_context()), expected);
  if (!result.ok()) return result.status();
  response->set_plaintext(std::string(result->plaintext.view()));
  response->set_key(result->key.ToString());
  response->set_segment(result->segment);
  response->set_segment_key_version(result->segment_key_version);
  return absl::OkStatus();
}

grpc::Status KeyManagementService::GenerateDataKey(
    grpc::ServerContext*, const clavis::v1::GenerateDataKeyRequest* request,
    clavis::v1::GenerateDataKeyResponse* response) {
  return ToGrpcStatus(DoGenerateDataKey(*request, response));
}

grpc::Status KeyManagementService::BatchGenerateDataKey(
    grpc::ServerContext*, const clavis::v1::BatchGenerateDataKeyRequest* request,
    clavis::v1::BatchGenerateDataKeyResponse* response) {
  return RunBatch(request->requests(), response,
                  [this](const auto& item, auto* out) { return DoGenerateDataKey(item, out); });
}

grpc::Status KeyManagementService::Decrypt(grpc::ServerContext*,
                                           const clavis::v1::DecryptRequest* request,
                                           clavis::v1::DecryptResponse* response) {
  return ToGrpcStatus(DoDecrypt(*request, response));
}

grpc::Status KeyManagementService::BatchDecrypt(grpc::ServerContext*,
                                                const clavis::v1::BatchDecryptRequest* request,
                                                clavis::v1::BatchDecryptResponse* response) {
  return RunBatch(request->requests(), response,
                  [this](const auto& item, auto* out) { return DoDecrypt(item, out); });
}

grpc::Status KeyManagementService::ReEncrypt(grpc::ServerContext*,
                                             const clavis::v1::ReEncryptRequest* request,
                                             clavis::v1::ReEncryptResponse* response) {
  const EncryptionContext context = ToContext(request->encryption_context());
  const EncryptionContext new_context =
      request->change_context() ? ToContext(request->new_encryption_context()) : context;
  auto result = envelope_->ReEncrypt(request->ciphertext_blob(), context, new_context);
  if (!result.ok()) return ToGrpcStatus(result.status());
  response->set_ciphertext_blob(std::move(result->ciphertext_blob));
  response->set_segment_key_version(result->segment_key_version);
  return grpc::Status::OK;
}

grpc::Status KeyManagementService::Encrypt(grpc::ServerContext*,
                                           const clavis::v1::EncryptRequest* request,
                                           clavis::v1::EncryptResponse* response) {
  auto key = ParseKeyName(request->key());
  if (!key.ok()) return ToGrpcStatus(key.status());
  if (auto s = ValidateSegment(request->segment()); !s.ok()) return ToGrpcStatus(s);
  if (request->plaintext().size() > kMaxEncryptPlaintext) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "plaintext is ", request->plaintext().size(), " bytes; Encrypt takes at most ",
        kMaxEncryptPlaintext, " (use GenerateDataKey and encrypt larger data locally)")));
  }
  auto result = envelope_->Encrypt(SegmentName{*key, request->segment()},
                                   crypto::SecretBytes::CopyOf(request->plaintext()),
                                   ToContext(request->encryption_context()));
  if (!result.ok()) return ToGrpcStatus(result.status());
  response->set_ciphertext_blob(std::move(result->ciphertext_blob));
  response->set_segment_key_version(result->segment_key_version);
  return grpc::Status::OK;
}

grpc::Status KeyManagementService::WatchKeyEvents(
    grpc::ServerContext* context, const clavis::v1::WatchKeyEventsRequest* request,
    grpc::ServerWriter<clavis::v1::KeyEvent>* writer) {
  auto tenant = ParseTenantName(request->tenant());
  if (!tenant.ok()) return ToGrpcStatus(tenant.status());
  auto subscription = events_->Subscribe(*tenant);
  // Headers go out at once so the client knows it is subscribed before any
  // event happens.
  writer->SendInitialMetadata();
  clavis::v1::KeyEvent event;
  while (!context->IsCancelled() && !shutting_down_) {
    switch (subscription->Next(absl::Milliseconds(200), &event)) {
      case KeyEventSubscription::WaitResult::kEvent:
        if (!writer->Write(event)) return grpc::Status::OK;  // client went away
        break;
      case KeyEventSubscription::WaitResult::kTimeout:
        break;
      case KeyEventSubscription::WaitResult::kLost:
        return grpc::Status(grpc::StatusCode::DATA_LOSS,
                            "the event stream fell behind and lost events; drop every cached key "
                            "of the tenant and watch again");
      case KeyEventSubscription::WaitResult::kClosed:
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down");
    }
  }
  subscription->Close();
  if (shutting_down_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down");
  return grpc::Status::OK;
}

}  // namespace clavis::kms
