#include "kms/service/guarded_call.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "grpc/grpc_security_constants.h"
#include "kms/service/grpc_status.h"

namespace clavis::kms {
namespace {

constexpr size_t kMaxRequestIdLength = 128;

std::string FromRef(const grpc::string_ref& ref) { return std::string(ref.data(), ref.size()); }

// A caller-supplied x-request-id is kept for correlation when it is short
// printable ASCII; otherwise the server makes one.
std::string RequestId(const grpc::ServerContext& context) {
  auto it = context.client_metadata().find("x-request-id");
  if (it != context.client_metadata().end()) {
    std::string id = FromRef(it->second);
    if (!id.empty() && id.size() <= kMaxRequestIdLength &&
        std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
      return id;
    }
  }
  return crypto::HexEncode(crypto::RandomBytes(12));
}

access::PresentedCredentials Credentials(const grpc::ServerContext& context) {
  access::PresentedCredentials out;
  out.peer = context.peer();
  auto auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    out.client_certificate = true;
    for (const auto& uri : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
      out.certificate_uris.push_back(FromRef(uri));
    }
    auto cn = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
    if (!cn.empty()) out.certificate_common_name = FromRef(cn.front());
  }
  auto it = context.client_metadata().find("authorization");
  if (it != context.client_metadata().end()) {
    std::string value = FromRef(it->second);
    if (absl::StartsWithIgnoreCase(value, "Bearer ")) {
      out.bearer_token = std::string(absl::StripAsciiWhitespace(value.substr(7)));
    } else {
      out.bearer_token = "";  // present but not a bearer token: refused as malformed
    }
  }
  return out;
}

}  // namespace

GuardedCall::GuardedCall(const AccessComponents& access, grpc::ServerContext* context,
                         std::string rpc)
    : access_(access), context_(context), rpc_(std::move(rpc)), action_(rpc_) {
  peer_ = context_->peer();
  request_id_ = RequestId(*context_);
  context_->AddInitialMetadata("x-request-id", request_id_);
}

absl::Status GuardedCall::Begin(double cost, auth::CallKind kind) {
  access::AuthenticationFailure failure;
  auto identity = access_.authenticator->Authenticate(Credentials(*context_), &failure);
  if (!identity.ok()) {
    claimed_principal_ = failure.claimed_principal;
    if (failure.locked_out_for.has_value()) {
      (void)access_.audit->Alert(
          claimed_principal_.empty() ? "unauthenticated" : claimed_principal_, peer_, "LockedOut",
          "",
          absl::StrCat("repeated authentication failures; locked out for ",
                       absl::FormatDuration(*failure.locked_out_for)));
    }
    return identity.status();
  }
  identity_ = *std::move(identity);
  authenticated_ = true;
  if (access_.rate_limiter != nullptr) {
    if (auto retry = access_.rate_limiter->Acquire(identity_.principal, cost); retry.has_value()) {
      const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(*retry));
      context_->AddTrailingMetadata("retry-after-ms", std::to_string(ms));
      return absl::ResourceExhaustedError(
          absl::StrCat("rate limit of ", identity_.principal, " exceeded; retry in ",
                       absl::FormatDuration(absl::Milliseconds(ms))));
    }
  }
  if (access_.concurrency != nullptr) {
    auto slot = access_.concurrency->Acquire(identity_.principal, kind);
    if (!slot.ok()) return slot.status();
    slot_ = *std::move(slot);
  }
  return absl::OkStatus();
}

absl::Status GuardedCall::Reauthenticate() {
  access::AuthenticationFailure failure;
  auto identity = access_.authenticator->Authenticate(Credentials(*context_), &failure);
  if (!identity.ok()) return identity.status();
  if (identity->principal != identity_.principal) {
    return absl::UnauthenticatedError("the stream's credentials now name another principal");
  }
  return absl::OkStatus();
}

absl::Status GuardedCall::AuthorizeKey(policy::Action action, const KeyName& key,
                                       const std::string& resource,
                                       const std::optional<std::string>& segment,
                                       const EncryptionContext* context) {
  action_ = std::string(policy::ActionName(action));
  resource_ = resource.empty() ? key.ToString() : resource;
  segment_ = segment.value_or("");
  if (context != nullptr) {
    context_copy_ = *context;
    has_context_ = true;
  }
  access::KeyRequest request{key, action, resource, segment, context};
  return access_.authorizer->AuthorizeKey(identity_, request);
}

absl::Status GuardedCall::AuthorizeTenant(policy::Action action, const std::string& tenant) {
  action_ = std::string(policy::ActionName(action));
  resource_ = absl::StrCat("tenants/", tenant);
  return access_.authorizer->AuthorizeTenant(identity_, action, tenant);
}

absl::Status GuardedCall::AuthorizeBackup() {
  action_ = "CreateBackup";
  resource_ = "store";
  return access_.authorizer->AuthorizeBackup(identity_);
}

GuardedCall::ItemAudit GuardedCall::TakeItemAudit() {
  ItemAudit out{action_, resource_, segment_, std::move(context_copy_), has_context_, decrypts_};
  action_ = rpc_;
  resource_.clear();
  segment_.clear();
  context_copy_.clear();
  has_context_ = false;
  decrypts_ = 0;
  return out;
}

std::string GuardedCall::AuditPrincipal() const {
  if (authenticated_) return identity_.principal;
  if (!claimed_principal_.empty())
    return absl::StrCat("unauthenticated (claimed ", claimed_principal_, ")");
  return "unauthenticated";
}

absl::Status GuardedCall::AuditItem(const std::string& action, const std::string& resource,
                                    const std::string& segment, const EncryptionContext* context,
                                    const absl::Status& result, uint64_t decrypts) {
  access::CallRecord record;
  record.request_id = request_id_;
  record.principal = AuditPrincipal();
  record.peer = peer_;
  record.action = action;
  record.resource = resource;
  record.segment = segment;
  record.result = result;
  record.context = context;
  record.decrypts = decrypts;
  return access_.audit->Record(record);
}

grpc::Status GuardedCall::Finish(const absl::Status& result) {
  if (!audit_call_ && authenticated_ && result.ok()) return ToGrpcStatus(result);
  absl::Status audited = AuditItem(action_, resource_, segment_,
                                   has_context_ ? &context_copy_ : nullptr, result, decrypts_);
  if (!audited.ok()) return ToGrpcStatus(audited);
  return ToGrpcStatus(result);
}

grpc::Status RunGuarded(const AccessComponents& access, grpc::ServerContext* context,
                        const std::string& rpc,
                        const std::function<absl::Status(GuardedCall&)>& handler, double cost) {
  GuardedCall call(access, context, rpc);
  absl::Status begun = call.Begin(cost);
  if (!begun.ok()) return call.Finish(begun);
  return call.Finish(handler(call));
}

}  // namespace clavis::kms
