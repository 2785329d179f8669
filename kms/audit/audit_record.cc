#include "kms/audit/audit_record.h"

namespace clavis::kms {

const char* AuditRecordKindName(AuditRecordKind kind) {
  switch (kind) {
    case AuditRecordKind::kCall:
      return "call";
    case AuditRecordKind::kAlert:
      return "alert";
    case AuditRecordKind::kCheckpoint:
      return "checkpoint";
  }
  return "unknown";
}

}  // namespace clavis::kms
