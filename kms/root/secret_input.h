// Reading a start-up secret (the root passphrase, a PKCS#11 PIN) from a
// file or from an environment variable, the two ways an operator or a
// service manager hands clavisd such a secret.
//
//  - From a file: its first line, without the newline. The file may be a
//    regular file, a pipe or /dev/fd/N (e.g. systemd credentials); it is
//    read straight into secure memory.
//  - From an environment variable: its value is copied into secure memory,
//    then overwritten in place and the variable unset, so neither
//    /proc/self/environ nor child processes keep it.
//
// Messages name the file or variable, never the secret.
//
// Thread safety: reading the environment races with any other thread's
// getenv/setenv; call this at start-up, before other threads run.
#ifndef CLAVIS_KMS_ROOT_SECRET_INPUT_H_
#define CLAVIS_KMS_ROOT_SECRET_INPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace clavis::kms {

struct StartupSecretSource {
  // Read the first line of this file, if set...
  std::string file;
  // ...else this environment variable, or `default_env` if empty.
  std::string env;
  std::string default_env;
  // For messages: what the secret is ("passphrase", "PIN"), who needs it
  // ("the passphrase root key") and the setting naming a file instead
  // ("passphrase_file").
  std::string what;
  std::string needed_by;
  std::string file_setting;
};

// The secret. NotFound if the file cannot be opened; InvalidArgument if its
// first line is longer than 64 KiB; FailedPrecondition if the variable is
// unset or empty ("<needed_by> needs a <what>: set <env> or <file_setting>").
// An empty first line is returned as an empty secret; the caller decides.
absl::StatusOr<crypto::SecretBytes> ReadStartupSecret(const StartupSecretSource& source);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ROOT_SECRET_INPUT_H_
