#include "kms/service/key_management_service.h"

#include "absl/strings/str_cat.h"
#include "kms/keys/blind_index.h"
#include "kms/keys/ciphertext_blob.h"
#include "kms/service/grpc_status.h"

namespace clavis::kms {
namespace {

using policy::Action;

EncryptionContext ToContext(const google::protobuf::Map<std::string, std::string>& map) {
  return EncryptionContext(map.begin(), map.end());
}

void SetItemStatus(const absl::Status& s, clavis::v1::ItemStatus* out) {
  out->set_code(static_cast<int>(s.code()));
  out->set_message(std::string(s.message()));
}

// The key and segment a ciphertext blob names, read from its header before
// anything is decrypted, so the caller can be authorized on them.
absl::StatusOr<SegmentName> BlobSegment(const std::string& blob) {
  auto parsed = ParseCiphertextBlob(blob);
  if (!parsed.ok()) return parsed.status();
  return SegmentName{KeyName{parsed->header.tenant, parsed->header.key_id}, parsed->header.segment};
}

}  // namespace

// One status per item, in request order; one bad item (or one refused item)
// never fails the call. Each item is audited on its own.
template <typename Items, typename Response, typename DoItem>
grpc::Status KeyManagementService::RunBatch(grpc::ServerContext* context, const std::string& rpc,
                                            const Items& items, Response* response,
                                            const DoItem& do_item) {
  const double cost = std::max<double>(1, items.size());
  return RunGuarded(
      access_, context, rpc,
      [&](GuardedCall& call) -> absl::Status {
        if (static_cast<size_t>(items.size()) > limits_.max_batch_items) {
          return absl::InvalidArgumentError(absl::StrCat("batch has ", items.size(),
                                                         " items; at most ",
                                                         limits_.max_batch_items, " are allowed"));
        }
        // Items are audited one by one; an empty batch is audited as a call.
        if (!items.empty()) call.AuditItemsOnly();
        for (const auto& item : items) {
          // A client that gave up (cancel, or its deadline passed) gets no
          // answer: stop working for it, so a long batch does not keep a
          // thread busy on its behalf. Items already done stay audited.
          if (context->IsCancelled()) {
            return absl::CancelledError(absl::StrCat(rpc, " cancelled or past its deadline after ",
                                                     response->items_size(), " of ", items.size(),
                                                     " items; the rest were not processed"));
          }
          auto* out = response->add_items();
          GuardedCall::ItemAudit audit;
          absl::Status s = do_item(call, item, out->mutable_result(), &audit);
          if (!s.ok()) out->clear_result();
          SetItemStatus(s, out->mutable_status());
          if (auto a = call.AuditItem(audit.action, audit.resource, audit.segment,
                                      audit.has_context ? &audit.context : nullptr, s,
                                      s.ok() ? audit.decrypts : 0);
              !a.ok()) {
            return a;
          }
        }
        return absl::OkStatus();
      },
      cost);
}

KeyManagementService::KeyManagementService(Envelope* envelope, KeyEventBus* events,
                                           AccessComponents access, KeyManagementLimits limits)
    : envelope_(envelope), events_(events), access_(access), limits_(limits) {}

void KeyManagementService::Shutdown() { shutting_down_ = true; }

absl::Status KeyManagementService::DoGenerateDataKey(
    GuardedCall& call, const clavis::v1::GenerateDataKeyRequest& request,
    clavis::v1::GenerateDataKeyResponse* response) {
  call.SetResource(request.key());
  auto key = ParseKeyName(request.key());
  if (!key.ok()) return key.status();
  if (auto s = ValidateSegment(request.segment()); !s.ok()) return s;
  const EncryptionContext context = ToContext(request.encryption_context());
  if (auto s = call.AuthorizeKey(Action::kGenerateDataKey, *key, "", request.segment(), &context);
      !s.ok()) {
    return s;
  }
  auto dk = envelope_->GenerateDataKey(SegmentName{*key, request.segment()}, context);
  if (!dk.ok()) return dk.status();
  // The plaintext leaves secure memory here, for the wire; gRPC owns the
  // response buffer from now on.
  response->set_plaintext(std::string(dk->plaintext.view()));
  response->set_ciphertext_blob(std::move(dk->ciphertext_blob));
  response->set_key_version(KeyVersionName{*key, dk->key_version}.ToString());
  response->set_segment_key_version(dk->segment_key_version);
  return absl::OkStatus();
}

absl::Status KeyManagementService::DoDecrypt(GuardedCall& call,
                                             const clavis::v1::DecryptRequest& request,
                                             clavis::v1::DecryptResponse* response) {
  std::optional<KeyName> expected;
  if (!request.key().empty()) {
    call.SetResource(request.key());
    auto key = ParseKeyName(request.key());
    if (!key.ok()) return key.status();
    expected = *key;
  }
  auto segment = BlobSegment(request.ciphertext_blob());
  if (!segment.ok()) return segment.status();
  if (expected.has_value() && !(*expected == segment->key)) {
    // Let the envelope give its usual precise answer; authorize on the key
    // the caller named, so nothing about the other key is revealed first.
    if (auto s = call.AuthorizeKey(Action::kDecrypt, *expected); !s.ok()) return s;
  } else {
    const EncryptionContext context = ToContext(request.encryption_context());
    if (auto s = call.AuthorizeKey(Action::kDecrypt, segment->key, "", segment->segment, &context);
        !s.ok()) {
      return s;
    }
  }
  auto result = envelope_->Decrypt(request.ciphertext_blob(),
                                   ToContext(request.encryption_context()), expected);
  if (!result.ok()) return result.status();
  call.AddDecrypts(1);
  response->set_plaintext(std::string(result->plaintext.view()));
  response->set_key(result->key.ToString());
  response->set_segment(result->segment);
  response->set_segment_key_version(result->segment_key_version);
  return absl::OkStatus();
}

grpc::Status KeyManagementService::GenerateDataKey(
    grpc::ServerContext* context, const clavis::v1::GenerateDataKeyRequest* request,
    clavis::v1::GenerateDataKeyResponse* response) {
  return RunGuarded(access_, context, "GenerateDataKey",
                    [&](GuardedCall& call) { return DoGenerateDataKey(call, *request, response); });
}

grpc::Status KeyManagementService::BatchGenerateDataKey(
    grpc::ServerContext* context, const clavis::v1::BatchGenerateDataKeyRequest* request,
    clavis::v1::BatchGenerateDataKeyResponse* response) {
  return RunBatch(
      context, "BatchGenerateDataKey", request->requests(), response,
      [this](GuardedCall& call, const auto& item, auto* out, GuardedCall::ItemAudit* audit) {
        absl::Status s = DoGenerateDataKey(call, item, out);
        *audit = call.TakeItemAudit();
        return s;
      });
}

grpc::Status KeyManagementService::Decrypt(grpc::ServerContext* context,
                                           const clavis::v1::DecryptRequest* request,
                                           clavis::v1::DecryptResponse* response) {
  return RunGuarded(access_, context, "Decrypt",
                    [&](GuardedCall& call) { return DoDecrypt(call, *request, response); });
}

grpc::Status KeyManagementService::BatchDecrypt(grpc::ServerContext* context,
                                                const clavis::v1::BatchDecryptRequest* request,
                                                clavis::v1::BatchDecryptResponse* response) {
  return RunBatch(
      context, "BatchDecrypt", request->requests(), response,
      [this](GuardedCall& call, const auto& item, auto* out, GuardedCall::ItemAudit* audit) {
        absl::Status s = DoDecrypt(call, item, out);
        *audit = call.TakeItemAudit();
        return s;
      });
}

grpc::Status KeyManagementService::ReEncrypt(grpc::ServerContext* context,
                                             const clavis::v1::ReEncryptRequest* request,
                                             clavis::v1::ReEncryptResponse* response) {
  return RunGuarded(access_, context, "ReEncrypt", [&](GuardedCall& call) -> absl::Status {
    const EncryptionContext old_context = ToContext(request->encryption_context());
    const EncryptionContext new_context =
        request->change_context() ? ToContext(request->new_encryption_context()) : old_context;
    auto segment = BlobSegment(request->ciphertext_blob());
    if (!segment.ok()) return segment.status();
    // A change of context is a decrypt under the old one and an encrypt
    // under the new one: both must be allowed too, or a Deny of Decrypt for
    // some context could be escaped by re-encrypting into another. ReEncrypt
    // itself must be allowed for both contexts (checked last, so it is the
    // action the audit record names).
    if (request->change_context()) {
      if (auto s =
              call.AuthorizeKey(Action::kDecrypt, segment->key, "", segment->segment, &old_context);
          !s.ok()) {
        return s;
      }
      if (auto s =
              call.AuthorizeKey(Action::kEncrypt, segment->key, "", segment->segment, &new_context);
          !s.ok()) {
        return s;
      }
    }
    for (const EncryptionContext* c : {&old_context, &new_context}) {
      if (auto s = call.AuthorizeKey(Action::kReEncrypt, segment->key, "", segment->segment, c);
          !s.ok()) {
        return s;
      }
    }
    auto result = envelope_->ReEncrypt(request->ciphertext_blob(), old_context, new_context);
    if (!result.ok()) return result.status();
    response->set_ciphertext_blob(std::move(result->ciphertext_blob));
    response->set_segment_key_version(result->segment_key_version);
    return absl::OkStatus();
  });
}

grpc::Status KeyManagementService::Encrypt(grpc::ServerContext* context,
                                           const clavis::v1::EncryptRequest* request,
                                           clavis::v1::EncryptResponse* response) {
  return RunGuarded(access_, context, "Encrypt", [&](GuardedCall& call) -> absl::Status {
    call.SetResource(request->key());
    auto key = ParseKeyName(request->key());
    if (!key.ok()) return key.status();
    if (auto s = ValidateSegment(request->segment()); !s.ok()) return s;
    if (request->plaintext().size() > kMaxEncryptPlaintext) {
      return absl::InvalidArgumentError(absl::StrCat(
          "plaintext is ", request->plaintext().size(), " bytes; Encrypt takes at most ",
          kMaxEncryptPlaintext, " (use GenerateDataKey and encrypt larger data locally)"));
    }
    const EncryptionContext enc_context = ToContext(request->encryption_context());
    if (auto s = call.AuthorizeKey(Action::kEncrypt, *key, "", request->segment(), &enc_context);
        !s.ok()) {
      return s;
    }
    auto result =
        envelope_->Encrypt(SegmentName{*key, request->segment()},
                           crypto::SecretBytes::CopyOf(request->plaintext()), enc_context);
    if (!result.ok()) return result.status();
    response->set_ciphertext_blob(std::move(result->ciphertext_blob));
    response->set_segment_key_version(result->segment_key_version);
    return absl::OkStatus();
  });
}

grpc::Status KeyManagementService::DeriveBlindIndexKey(
    grpc::ServerContext* context, const clavis::v1::DeriveBlindIndexKeyRequest* request,
    clavis::v1::DeriveBlindIndexKeyResponse* response) {
  return RunGuarded(
      access_, context, "DeriveBlindIndexKey", [&](GuardedCall& call) -> absl::Status {
        call.SetResource(request->key());
        auto key = ParseKeyName(request->key());
        if (!key.ok()) return key.status();
        if (auto s = ValidateSegment(request->segment()); !s.ok()) return s;
        if (auto s = ValidateBlindIndexName(request->index()); !s.ok()) return s;
        // No encryption context: an Allow conditioned on one never grants this.
        if (auto s = call.AuthorizeKey(Action::kDeriveBlindIndexKey, *key, "", request->segment());
            !s.ok()) {
          return s;
        }
        auto index_key =
            envelope_->DeriveBlindIndexKey(SegmentName{*key, request->segment()}, request->index());
        if (!index_key.ok()) return index_key.status();
        // The key leaves secure memory here, for the wire; it is never logged
        // or audited (the audit record names key, segment and outcome only).
        response->set_index_key(std::string(index_key->view()));
        return absl::OkStatus();
      });
}

grpc::Status KeyManagementService::WatchKeyEvents(
    grpc::ServerContext* context, const clavis::v1::WatchKeyEventsRequest* request,
    grpc::ServerWriter<clavis::v1::KeyEvent>* writer) {
  // The subscription itself is audited once; events are then filtered per
  // key: a subscriber only sees events of keys whose policy lets it
  // WatchKeyEvents (key names are metadata too).
  GuardedCall call(access_, context, "WatchKeyEvents");
  if (auto s = call.Begin(1, auth::CallKind::kStream); !s.ok()) return call.Finish(s);
  call.SetResource(request->tenant());
  auto tenant = ParseTenantName(request->tenant());
  if (!tenant.ok()) return call.Finish(tenant.status());
  if (call.identity().method != auth::AuthMethod::kInsecureDev &&
      call.identity().tenant != *tenant) {
    return call.Finish(absl::PermissionDeniedError(
        absl::StrCat("denied: ", call.identity().principal, " may not WatchKeyEvents on tenants/",
                     *tenant, " (cross-tenant access is never allowed)")));
  }
  grpc::Status started = call.Finish(absl::OkStatus());
  if (!started.ok()) return started;
  auto subscription = events_->Subscribe(*tenant);
  // Headers go out at once, with a marker, so the client knows it is
  // subscribed before any event happens (a refused call sends no headers).
  context->AddInitialMetadata("clavis-watch", "subscribed");
  writer->SendInitialMetadata();
  clavis::v1::KeyEvent event;
  const absl::Time opened = absl::Now();
  absl::Time next_check = opened + limits_.stream_reauthentication_interval;
  while (!context->IsCancelled() && !shutting_down_) {
    const absl::Time now = absl::Now();
    if (now - opened >= limits_.max_stream_lifetime) {
      subscription->Close();
      return grpc::Status::OK;  // the client opens it again (see KeyManagementLimits)
    }
    if (now >= next_check) {
      next_check = now + limits_.stream_reauthentication_interval;
      if (absl::Status s = call.Reauthenticate(); !s.ok()) {
        subscription->Close();
        return ToGrpcStatus(
            absl::UnauthenticatedError(absl::StrCat("WatchKeyEvents ended: ", s.message())));
      }
    }
    switch (subscription->Next(absl::Milliseconds(200), &event)) {
      case KeyEventSubscription::WaitResult::kEvent: {
        auto key = ParseKeyName(event.key());
        if (!key.ok()) break;
        access::KeyRequest watch{*key, Action::kWatchKeyEvents, "", std::nullopt, nullptr};
        if (!access_.authorizer->AuthorizeKey(call.identity(), watch).ok()) {
          // Keep the sequence gap-free (a gap means "events were lost")
          // without saying anything about a key the caller may not see.
          clavis::v1::KeyEvent redacted;
          redacted.set_sequence(event.sequence());
          event = std::move(redacted);
        }
        if (!writer->Write(event)) return grpc::Status::OK;  // client went away
        break;
      }
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
