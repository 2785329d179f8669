// `clavisctl token ...`: service tokens (kms/auth/service_token.h), the
// bearer credentials for applications where mTLS is awkward. Both commands
// run locally and call no server.
//
//   token keygen --out PREFIX --key-id ID [--force]
//       a new issuer key: PREFIX.seed (the Ed25519 seed, hex, mode 0600);
//       prints "<key id> <base64 public key>", the line for clavisd's
//       --token_issuers_file.
//   token issue --issuer-seed FILE --key-id ID --principal P [--group G]...
//               --audience AUD [--ttl 1h] [--token-id ID] [--out FILE] [--force]
//       signs a token and prints it (or writes FILE, mode 0600).
#ifndef CLAVIS_TOOLS_CLAVISCTL_TOKEN_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_TOKEN_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct TokenKeygenArgs {
  std::string out;     // writes <out>.seed
  std::string key_id;  // 1-64 of [A-Za-z0-9._-]
  bool force = false;
};
absl::Status TokenKeygen(Session& session, const TokenKeygenArgs& args);

struct TokenIssueArgs {
  std::string issuer_seed_file;  // from token keygen
  std::string key_id;
  std::string principal;            // tenants/{t}/principals/{id}
  std::vector<std::string> groups;  // tenants/{t}/groups/{g}
  std::string audience;
  std::string ttl = "1h";
  std::string token_id;  // empty: a random one
  std::string out;       // empty: print the token on stdout
  bool force = false;
};
absl::Status TokenIssue(Session& session, const TokenIssueArgs& args);

void RegisterTokenCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_TOKEN_COMMANDS_H_
