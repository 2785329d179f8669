// The one place where domain errors (absl::Status) become gRPC statuses.
#ifndef CLAVIS_KMS_SERVICE_GRPC_STATUS_H_
#define CLAVIS_KMS_SERVICE_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace clavis::kms {

// Codes map one to one (both follow google.rpc.Code); the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVICE_GRPC_STATUS_H_
