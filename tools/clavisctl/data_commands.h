// `clavisctl datakey | encrypt | decrypt`: the data plane (KeyManagement),
// for trying a key out, checking a blob, or scripting a one-off. These are
// the only commands that print key material or decrypted data, and they
// print it to stdout only, where it is the point of the command.
#ifndef CLAVIS_TOOLS_CLAVISCTL_DATA_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_DATA_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct DataKeyArgs {
  std::string key;  // tenants/{t}/keys/{k}
  std::string segment;
  std::vector<std::string> context;  // "k=v"
};
// Prints the plaintext data key and the ciphertext blob, both base64.
absl::Status GenerateDataKey(Session& session, const DataKeyArgs& args);

struct EncryptArgs {
  std::string key;
  std::string segment;
  std::vector<std::string> context;
  std::string plaintext_file;  // empty or "-": stdin
};
// Prints the ciphertext blob, base64, on one line.
absl::Status Encrypt(Session& session, const EncryptArgs& args);

struct DecryptArgs {
  std::vector<std::string> context;
  std::string blob_base64;
  std::string blob_file;  // "-": stdin; base64 text or raw bytes
  std::string expected_key;
  bool base64 = false;  // print the plaintext base64 instead of raw
};
// Prints the plaintext: raw bytes, or base64 and a newline.
absl::Status Decrypt(Session& session, const DecryptArgs& args);

void RegisterDataCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_DATA_COMMANDS_H_
