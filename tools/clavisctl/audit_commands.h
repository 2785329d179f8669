// `clavisctl audit ...`: read and verify clavisd's audit log (docs/ACCESS.md,
// "Audit log"; format in docs/FORMAT.md). These commands read the log files
// directly (run them on the clavisd host, or on a copy of the directory);
// they make no RPC.
//
//   audit verify --dir DIR --public-key-file F   chain, signatures, clean end
//   audit tail   --dir DIR [-n N]                 the last N records
//   audit query  --dir DIR [filters]              matching records
//   audit export --dir DIR [filters]              matching records as JSON Lines
#ifndef CLAVIS_TOOLS_CLAVISCTL_AUDIT_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_AUDIT_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct AuditVerifyArgs {
  // One or several logs (one per clavisd replica; all signed with the same
  // key when the replicas share a store).
  std::vector<std::string> dirs;
  std::string public_key;       // base64
  std::string public_key_file;  // holding the base64 key (audit-signing.pub)
};

struct AuditQueryArgs {
  std::string dir;
  std::string principal;
  std::string key;  // resource: a key, or anything under it
  std::string segment;
  std::string action;
  std::string since;  // RFC 3339, inclusive
  std::string until;  // RFC 3339, exclusive
  bool alerts_only = false;
  int limit = 0;  // 0: no limit (query), else at most this many (oldest first)
};

// OK for a clean, cleanly closed log. DataLoss naming the first bad record
// (file, offset, sequence) when the log was changed; FailedPrecondition when
// it only ends without a closing checkpoint (crash or cut tail).
absl::Status VerifyAudit(Session& session, const AuditVerifyArgs& args);
// Human lines, or JSON Lines with --json.
absl::Status QueryAudit(Session& session, const AuditQueryArgs& args);
absl::Status TailAudit(Session& session, const std::string& dir, int count);
// Always JSON Lines.
absl::Status ExportAudit(Session& session, const AuditQueryArgs& args);

void RegisterAuditCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_AUDIT_COMMANDS_H_
