// KeyAdminService: the gRPC face of the control plane (KeyLifecycle). It
// parses names, durations and page tokens, authorizes the call (GuardedCall),
// calls the domain, and converts the status. No key logic lives here.
// Destruction requests on a key that requires M-of-N approval become
// approval requests (ApprovalGate) instead of running.
#ifndef CLAVIS_KMS_SERVICE_KEY_ADMIN_SERVICE_H_
#define CLAVIS_KMS_SERVICE_KEY_ADMIN_SERVICE_H_

#include <functional>
#include <string>
#include "clavis/v1/key_admin.grpc.pb.h"

#include "kms/escrow/escrow_exporter.h"
#include "kms/keys/key_importer.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/service/approval_gate.h"
#include "kms/service/guarded_call.h"

namespace clavis::kms {

class KeyAdminService final : public clavis::v1::KeyAdmin::Service {
 public:
  // REQUIRES: lifecycle, the access components and approvals outlive the
  // service.
  KeyAdminService(KeyLifecycle* lifecycle, KeyImporter* importer, EscrowExporter* escrow,
                  AccessComponents access, ApprovalGate* approvals);

  using Ctx = grpc::ServerContext;
  grpc::Status CreateKey(Ctx*, const clavis::v1::CreateKeyRequest*, clavis::v1::Key*) override;
  grpc::Status GetKey(Ctx*, const clavis::v1::GetKeyRequest*, clavis::v1::Key*) override;
  grpc::Status ListKeys(Ctx*, const clavis::v1::ListKeysRequest*,
                        clavis::v1::ListKeysResponse*) override;
  grpc::Status RotateKey(Ctx*, const clavis::v1::RotateKeyRequest*, clavis::v1::Key*) override;
  grpc::Status EnableKey(Ctx*, const clavis::v1::KeyNameRequest*, clavis::v1::Key*) override;
  grpc::Status DisableKey(Ctx*, const clavis::v1::KeyNameRequest*, clavis::v1::Key*) override;
  grpc::Status ScheduleKeyDestruction(Ctx*, const clavis::v1::ScheduleDestructionRequest*,
                                      clavis::v1::Key*) override;
  grpc::Status CancelKeyDestruction(Ctx*, const clavis::v1::KeyNameRequest*,
                                    clavis::v1::Key*) override;
  grpc::Status DestroyKey(Ctx*, const clavis::v1::KeyNameRequest*, clavis::v1::Key*) override;
  grpc::Status UpdateKeySettings(Ctx*, const clavis::v1::UpdateKeySettingsRequest*,
                                 clavis::v1::Key*) override;
  grpc::Status EnableKeyVersion(Ctx*, const clavis::v1::KeyVersionRequest*,
                                clavis::v1::Key*) override;
  grpc::Status DisableKeyVersion(Ctx*, const clavis::v1::KeyVersionRequest*,
                                 clavis::v1::Key*) override;
  grpc::Status ScheduleKeyVersionDestruction(Ctx*,
                                             const clavis::v1::ScheduleVersionDestructionRequest*,
                                             clavis::v1::Key*) override;
  grpc::Status CancelKeyVersionDestruction(Ctx*, const clavis::v1::KeyVersionRequest*,
                                           clavis::v1::Key*) override;
  grpc::Status DestroyKeyVersion(Ctx*, const clavis::v1::KeyVersionRequest*,
                                 clavis::v1::Key*) override;
  grpc::Status MarkKeyVersionCompromised(Ctx*, const clavis::v1::KeyVersionRequest*,
                                         clavis::v1::Key*) override;
  grpc::Status RewrapSegments(Ctx*, const clavis::v1::RewrapSegmentsRequest*,
                              clavis::v1::RewrapSegmentsResponse*) override;
  grpc::Status GetKeyVersionUsage(Ctx*, const clavis::v1::KeyNameRequest*,
                                  clavis::v1::KeyVersionUsage*) override;
  grpc::Status CreateSegment(Ctx*, const clavis::v1::SegmentRequest*,
                             clavis::v1::Segment*) override;
  grpc::Status GetSegment(Ctx*, const clavis::v1::SegmentRequest*, clavis::v1::Segment*) override;
  grpc::Status ListSegments(Ctx*, const clavis::v1::ListSegmentsRequest*,
                            clavis::v1::ListSegmentsResponse*) override;
  grpc::Status RotateSegment(Ctx*, const clavis::v1::SegmentRequest*,
                             clavis::v1::Segment*) override;
  grpc::Status RevokeSegment(Ctx*, const clavis::v1::SegmentRequest*,
                             clavis::v1::Segment*) override;
  grpc::Status EnableSegment(Ctx*, const clavis::v1::SegmentRequest*,
                             clavis::v1::Segment*) override;
  grpc::Status ScheduleSegmentDestruction(Ctx*,
                                          const clavis::v1::ScheduleSegmentDestructionRequest*,
                                          clavis::v1::Segment*) override;
  grpc::Status CancelSegmentDestruction(Ctx*, const clavis::v1::SegmentRequest*,
                                        clavis::v1::Segment*) override;
  grpc::Status DestroySegment(Ctx*, const clavis::v1::SegmentRequest*,
                              clavis::v1::Segment*) override;
  grpc::Status GetImportParameters(Ctx*, const clavis::v1::GetImportParametersRequest*,
                                   clavis::v1::ImportParameters*) override;
  grpc::Status ImportKeyMaterial(Ctx*, const clavis::v1::ImportKeyMaterialRequest*,
                                 clavis::v1::Key*) override;
  grpc::Status ExportEscrow(Ctx*, const clavis::v1::ExportEscrowRequest*,
                            grpc::ServerWriter<clavis::v1::EscrowChunk>*) override;

 private:
  template <typename Name, typename Out>
  grpc::Status Guarded(Ctx* ctx, const char* rpc, const std::string& raw_name,
                       policy::Action action,
                       const std::function<absl::StatusOr<Out>(const Name&)>& run, Out* response,
                       const google::protobuf::Message* approval_payload = nullptr);
  // The policy document a new key starts with (JSON; empty for none).
  absl::StatusOr<std::string> InitialPolicy(GuardedCall& call,
                                            const clavis::v1::CreateKeyRequest& request,
                                            const KeyName& key);

  KeyLifecycle* const lifecycle_;
  KeyImporter* const importer_;
  EscrowExporter* const escrow_;
  const AccessComponents access_;
  ApprovalGate* const approvals_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVICE_KEY_ADMIN_SERVICE_H_
