// The handlers rpc_key_admin_fuzzer calls, in the order that gives each its
// frame tag; the seed generator writes its seeds with the same table.
// Test-only.
#ifndef CLAVIS_TESTS_FUZZ_RPC_ADMIN_METHODS_H_
#define CLAVIS_TESTS_FUZZ_RPC_ADMIN_METHODS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/fuzz/fuzz_domain.h"
#include "tests/fuzz/rpc_call.h"

namespace clavis::fuzz {

struct AdminRpc {
  std::string name;
  std::function<void(FuzzDomain&, absl::string_view)> call;
};

template <typename Service, typename Request, typename Response>
AdminRpc MakeAdminRpc(const char* name, std::unique_ptr<Service> FuzzDomain::*service,
                      grpc::Status (Service::*method)(grpc::ServerContext*, const Request*,
                                                      Response*)) {
  return {name, [=](FuzzDomain& domain, absl::string_view body) {
            Request request;
            Response response;
            grpc::Status status;
            (void)CallHandler(name, (domain.*service).get(), method, body, &request, &response,
                              &status);
          }};
}

#define CLAVIS_ADMIN_RPC(member, Class, Method) \
  MakeAdminRpc(#Method, &FuzzDomain::member, &kms::Class::Method)

inline const std::vector<AdminRpc>& AdminRpcs() {
  static const std::vector<AdminRpc>* rpcs = new std::vector<AdminRpc>{
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, CreateKey),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, GetKey),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, ListKeys),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, RotateKey),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, EnableKey),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, DisableKey),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, ScheduleKeyDestruction),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, CancelKeyDestruction),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, DestroyKey),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, UpdateKeySettings),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, EnableKeyVersion),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, DisableKeyVersion),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, ScheduleKeyVersionDestruction),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, CancelKeyVersionDestruction),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, DestroyKeyVersion),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, MarkKeyVersionCompromised),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, RewrapSegments),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, GetKeyVersionUsage),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, CreateSegment),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, GetSegment),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, ListSegments),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, RotateSegment),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, RevokeSegment),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, EnableSegment),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, ScheduleSegmentDestruction),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, CancelSegmentDestruction),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, DestroySegment),
      CLAVIS_ADMIN_RPC(admin, KeyAdminService, ImportKeyMaterial),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, WhoAmI),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, GetKeyPolicy),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, SetKeyPolicy),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, ValidateKeyPolicy),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, SimulatePolicy),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, ListApprovalRequests),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, GetApprovalRequest),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, ApproveRequest),
      CLAVIS_ADMIN_RPC(access_control, AccessControlService, DenyRequest),
  };
  return *rpcs;
}

#undef CLAVIS_ADMIN_RPC

// The tag of the RPC called `name` (the seed generator's frames).
inline uint8_t AdminRpcTag(absl::string_view name) {
  const auto& rpcs = AdminRpcs();
  for (size_t i = 0; i < rpcs.size(); ++i) {
    if (rpcs[i].name == name) return static_cast<uint8_t>(i);
  }
  std::abort();
}

}  // namespace clavis::fuzz

#endif  // CLAVIS_TESTS_FUZZ_RPC_ADMIN_METHODS_H_
