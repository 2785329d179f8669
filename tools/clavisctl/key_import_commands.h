// `clavisctl key import-params` and `clavisctl key import`: bringing your
// own key material into a key of origin EXTERNAL (docs/BYOK.md).
//
//   import-params  asks clavisd for a fresh RSA wrapping key and an import
//                  token; writes DIR/wrapping-key.pem and DIR/import-token
//   import         sends material wrapped (with OpenSSL, on the customer's
//                  side) to that key, with the token
#ifndef CLAVIS_TOOLS_CLAVISCTL_KEY_IMPORT_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_KEY_IMPORT_COMMANDS_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct ImportParamsArgs {
  std::string name;  // tenants/{t}/keys/{k}
  std::string algorithm = "RSA_AES_KEY_WRAP_SHA_256";
  std::string wrapping_key_spec = "RSA_4096";
  std::string out_dir = ".";
  bool force = false;  // overwrite existing files
};
absl::Status GetImportParameters(Session& session, const ImportParamsArgs& args);

struct ImportArgs {
  std::string name;
  std::string import_token_file;  // the file import-params wrote
  std::string algorithm = "RSA_AES_KEY_WRAP_SHA_256";
  std::string wrapped_file;  // raw bytes; "-" reads stdin
  std::string valid_to;      // RFC 3339; empty: never expires
  bool new_version = false;
  uint32_t version = 0;
};
absl::Status ImportKeyMaterial(Session& session, const ImportArgs& args);

// Adds "import-params" and "import" under `key`.
void RegisterKeyImportCommands(CommandRegistry& registry, CLI::App& key);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_KEY_IMPORT_COMMANDS_H_
