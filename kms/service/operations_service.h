// OperationsService: the gRPC face of whole-server operations
// (proto/clavis/v1/operations.proto): backups. Thin: authorization by
// kms/access (backup operators), the backup itself by kms/backup.
#ifndef CLAVIS_KMS_SERVICE_OPERATIONS_SERVICE_H_
#define CLAVIS_KMS_SERVICE_OPERATIONS_SERVICE_H_

#include "clavis/v1/operations.grpc.pb.h"
#include "kms/backup/backup_maker.h"
#include "kms/service/guarded_call.h"

namespace clavis::kms {

class OperationsService final : public clavis::v1::Operations::Service {
 public:
  // REQUIRES: everything outlives the service.
  OperationsService(BackupMaker* backups, AccessComponents access);

  // Authorize, spool the whole backup, audit, then stream it: the audit
  // record says whether a backup was made (and its failure if not), written
  // before the first byte leaves. A client that goes away mid-stream ends the
  // call; the spool file goes with it. One backup at a time per server
  // (BackupMaker): a second call meanwhile gets RESOURCE_EXHAUSTED. A call
  // cancelled while the backup is spooled stops the export (CANCELLED).
  grpc::Status CreateBackup(grpc::ServerContext* context,
                            const clavis::v1::CreateBackupRequest* request,
                            grpc::ServerWriter<clavis::v1::BackupChunk>* writer) override;

 private:
  BackupMaker* const backups_;
  const AccessComponents access_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVICE_OPERATIONS_SERVICE_H_
