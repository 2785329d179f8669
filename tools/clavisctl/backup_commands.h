// `clavisctl backup create`: an online, consistent, encrypted backup of the
// whole clavisd store (docs/BACKUP.md), streamed from the Operations service
// into a file. Needs a principal in clavisd's backup_operators. Restoring
// is offline, on the server host: `clavisd --restore_from FILE`.
#ifndef CLAVIS_TOOLS_CLAVISCTL_BACKUP_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_BACKUP_COMMANDS_H_

#include <string>

#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct BackupCreateArgs {
  std::string out;  // written as <out>.partial (mode 0600), renamed when complete
  bool force = false;
};
absl::Status CreateBackup(Session& session, const BackupCreateArgs& args);

void RegisterBackupCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_BACKUP_COMMANDS_H_
