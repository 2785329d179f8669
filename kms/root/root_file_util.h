// File helpers for the root key providers: private directories, atomic
// no-clobber creation of small files, and reading small files straight into
// secure memory. Internal to kms/root; not a general-purpose API.
//
// Thread safety: the functions hold no state; concurrent calls on different
// paths are safe, and concurrent creation of the same path is resolved by the
// filesystem (exactly one creator wins, see WriteNewFileAtomically).
#ifndef CLAVIS_KMS_ROOT_ROOT_FILE_UTIL_H_
#define CLAVIS_KMS_ROOT_ROOT_FILE_UTIL_H_

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::kms::root_internal {

// Creates the directory that will hold `file_path`, and any missing parents,
// each with mode 0700. Existing directories are left as they are.
absl::Status EnsureParentDirectory(const std::string& file_path);

// Creates `path` holding exactly `contents` with permission bits `mode`,
// atomically and without ever replacing an existing file: the bytes go to a
// temporary file in the same directory, are fsync'ed, then hard-linked to
// `path` (link(2) fails if `path` exists, unlike rename(2), so two processes
// creating the same file cannot silently overwrite each other's key), and the
// directory is fsync'ed. Returns AlreadyExists if `path` already exists; the
// temporary file is removed on every path out. If only the final directory
// fsync fails, the file is in place but the error is still returned. `what` names the file in
// messages ("root key file").
absl::Status WriteNewFileAtomically(const std::string& path, absl::string_view contents,
                                    mode_t mode, absl::string_view what);

struct ReadFileOptions {
  // Refuse (FailedPrecondition) a file with any group or other permission bit.
  bool require_owner_only = false;
  // Refuse (InvalidArgument) a file longer than this without reading it all.
  size_t max_size = 4096;
};

// Reads the regular file `path` into secure memory, so secret contents never
// pass through an ordinary buffer. NotFound if it does not exist,
// FailedPrecondition if it is not a regular file or (see options) is
// accessible by group or others. Messages name the path, never the contents.
absl::StatusOr<crypto::SecretBytes> ReadSmallFile(const std::string& path,
                                                  const ReadFileOptions& options,
                                                  absl::string_view what);

}  // namespace clavis::kms::root_internal

#endif  // CLAVIS_KMS_ROOT_ROOT_FILE_UTIL_H_
