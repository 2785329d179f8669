#include "kms/service/operations_service.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "kms/service/grpc_status.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {

OperationsService::OperationsService(BackupMaker* backups, AccessComponents access)
    : backups_(backups), access_(access) {}

grpc::Status OperationsService::CreateBackup(grpc::ServerContext* context,
                                             const clavis::v1::CreateBackupRequest*,
                                             grpc::ServerWriter<clavis::v1::BackupChunk>* writer) {
  GuardedCall call(access_, context, "CreateBackup");
  if (auto s = call.Begin(1, auth::CallKind::kStream); !s.ok()) return call.Finish(s);
  if (auto s = call.AuthorizeBackup(); !s.ok()) return call.Finish(s);
  // One backup at a time (ResourceExhausted otherwise); a client that
  // cancels, or a deadline that passes, stops the export early.
  auto prepared = backups_->Prepare([context] { return context->IsCancelled(); });
  if (!prepared.ok()) {
    const absl::StatusCode code = prepared.status().code();
    if (code == absl::StatusCode::kCancelled || code == absl::StatusCode::kResourceExhausted) {
      spdlog::warn("backup for {} not made: {}", call.identity().principal,
                   std::string(prepared.status().message()));
    } else {
      spdlog::error("backup for {} failed: {}", call.identity().principal,
                    std::string(prepared.status().message()));
    }
    return call.Finish(prepared.status());
  }
  const std::string id = absl::BytesToHexString((*prepared)->header().backup_id);
  spdlog::info("backup {} for {}: {} entries, {} bytes", id, call.identity().principal,
               (*prepared)->entries(), (*prepared)->size());
  // Audited as made before the first byte leaves.
  if (grpc::Status started = call.Finish(absl::OkStatus()); !started.ok()) return started;

  clavis::v1::BackupChunk message;
  clavis::v1::BackupSummary* summary = message.mutable_summary();
  summary->set_backup_id(id);
  const absl::Time created = (*prepared)->header().created;
  summary->mutable_create_time()->set_seconds(absl::ToUnixSeconds(created));
  summary->mutable_create_time()->set_nanos(
      static_cast<int32_t>((absl::ToUnixNanos(created) % 1000000000 + 1000000000) % 1000000000));
  summary->set_entries((*prepared)->entries());
  summary->set_size_bytes((*prepared)->size());
  summary->set_source((*prepared)->header().source);
  absl::Status streamed = (*prepared)->Stream([&](absl::string_view piece) -> absl::Status {
    message.set_data(piece.data(), piece.size());
    if (!writer->Write(message)) return absl::CancelledError("the client went away");
    message.clear_summary();
    return absl::OkStatus();
  });
  if (!streamed.ok()) {
    spdlog::warn("backup {} not delivered: {}", id, std::string(streamed.message()));
  }
  return ToGrpcStatus(streamed);
}

}  // namespace clavis::kms
