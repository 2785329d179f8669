// `clavisctl pki ...`: a small certificate authority for Clavis (tools/pki):
// the CA, server certificates for clavisd and client certificates that name
// a principal (mTLS). The commands run locally, call no server and never
// print a private key; keys are written with mode 0600. `certs` is an alias
// of `pki` and `bootstrap` one of `init-ca`.
//
//   pki init-ca --out DIR [--common-name CN] [--validity-days N] [--force]
//   pki issue-server --ca DIR --out PREFIX [--dns NAME]... [--ip ADDR]...
//                    [--common-name CN] [--validity-days N] [--force]
//   pki issue-client --ca DIR --principal tenants/T/principals/ID
//                    [--group tenants/T/groups/G]... --out PREFIX
//                    [--validity-days N] [--force]
#ifndef CLAVIS_TOOLS_CLAVISCTL_PKI_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_PKI_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/struct.pb.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"
#include "tools/clavisctl/table.h"
#include "tools/pki/pki.h"

namespace clavis::clavisctl {

// Whole days of a pki default validity (5 years for a CA, 1 year for a
// server, 90 days for a client).
inline int ValidityDays(absl::Duration validity) {
  return static_cast<int>(validity / absl::Hours(24));
}

struct InitCaArgs {
  std::string out_dir;  // created (0700) if missing; gets ca.crt and ca.key
  std::string common_name = pki::CaOptions().common_name;
  int validity_days = ValidityDays(pki::CaOptions().validity);
  bool force = false;  // overwrite existing files
};
absl::Status InitCa(Session& session, const InitCaArgs& args);

struct IssueServerArgs {
  std::string ca_dir;                     // holds ca.crt and ca.key
  std::string out;                        // writes <out>.crt and <out>.key
  std::vector<std::string> dns_names;     // none given (and no IPs): localhost
  std::vector<std::string> ip_addresses;  // none given (and no names): 127.0.0.1, ::1
  std::string common_name = pki::ServerCertOptions().common_name;
  int validity_days = ValidityDays(pki::ServerCertOptions().validity);
  bool force = false;
};
absl::Status IssueServer(Session& session, const IssueServerArgs& args);

struct IssueClientArgs {
  std::string ca_dir;
  std::string principal;            // tenants/{t}/principals/{id}
  std::vector<std::string> groups;  // tenants/{t}/groups/{g}, same tenant
  std::string out;
  int validity_days = ValidityDays(pki::ClientCertOptions().validity);
  bool force = false;
};
absl::Status IssueClient(Session& session, const IssueClientArgs& args);

void RegisterPkiCommands(CommandRegistry& registry);

// Shared by the local commands (pki, token).
//
// Their errors as exit codes: InvalidArgument and NotFound are about the
// caller's arguments (a bad name, a missing --ca directory), so usage
// errors (2); AlreadyExists (8) gets a hint about --force.
absl::Status LocalCommandError(const absl::Status& status);
// Prints `fields` as one JSON object with --json, else `rows` as a table.
absl::Status PrintLocalResult(Session& session, const google::protobuf::Struct& fields,
                              const std::vector<TableRow>& rows);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_PKI_COMMANDS_H_
