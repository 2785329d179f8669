// Process hardening shared by clavisd and clavis-rotator, run at start-up
// before any secret is read:
//
//  - DisableCoreDumps: no core file, and no ptrace or /proc/PID/mem access
//    by other processes of the same (non-root) user.
//  - CheckPrivateDirectory / CheckSecretFile: refuse a data directory that
//    group or others can enter, and a key or secret file that group or
//    others can read or that someone else owns. Messages name the path, the
//    mode or owner found and the command that fixes it; never any contents.
//
// These are start-up checks by path (stat, following symbolic links, since
// that is what the readers open). Whoever can swap a file between the check
// and the read can write the directory holding it, and so could replace
// the secret anyway: the checks catch mistakes, not an attacker on the host.
//
// Thread safety: DisableCoreDumps changes process-wide state; call it from
// main() before other threads start. The checks hold no state.
#ifndef CLAVIS_KMS_SERVER_PROCESS_HARDENING_H_
#define CLAVIS_KMS_SERVER_PROCESS_HARDENING_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace clavis::hardening {

// Makes the process non-dumpable (prctl PR_SET_DUMPABLE 0: no core dump,
// and other processes of the same user can no longer ptrace it or read its
// /proc/PID/mem, environ, fd/) and sets RLIMIT_CORE to 0 for both the soft
// and the hard limit, so no later code can raise it again. Internal, naming
// the call and errno, if either call fails; the caller must then refuse to
// start. Irreversible for the process.
absl::Status DisableCoreDumps();

// Who may own what is checked. Defaults: the effective user of this process.
struct PermissionOptions {
  uid_t expected_owner = static_cast<uid_t>(-1);  // -1: geteuid()
  // Containers often mount secrets 0440 with a group, or 0644 owned by
  // root, and offer no way to change that. With this set, CheckSecretFile
  // logs a warning (naming the file and what is wrong) instead of failing.
  // Directories are never relaxed: clavisd can create its own inside.
  bool allow_shared_secret_files = false;
};

// `path` (a directory `what` names, e.g. "data directory") is fine if it
// does not exist yet (the caller creates it 0700), or is a directory owned
// by the expected user with no group or other permission bits.
// FailedPrecondition otherwise, e.g.
//   "data directory /var/lib/clavis is accessible by group or others (mode
//    0755); run `chmod 700 /var/lib/clavis`".
// Internal if stat fails for another reason than a missing path.
absl::Status CheckPrivateDirectory(const std::string& path, absl::string_view what,
                                   const PermissionOptions& options = {});

// `path` (a key or secret file `what` names, e.g. "TLS private key file") is
// fine if it does not exist (its reader reports that, or creates it 0600),
// or is not a regular file (a pipe, /dev/fd/N, /dev/stdin: nothing stays
// on disk), or is a regular file that
//   - is owned by the expected user or by root (root can read it anyway;
//     systemd credentials are root-owned), and
//   - grants no access at all to its group or others, whether by mode bits
//     or by POSIX ACL entries. A named-user ACL entry for the expected user
//     is fine: that is how systemd's LoadCredential= on tmpfs hands a
//     root-owned credential to the service.
// Otherwise FailedPrecondition naming the path, the mode or owner found and
// the fix (`chmod 600 PATH`, `chown USER PATH`), unless
// options.allow_shared_secret_files, which turns that into a warning.
absl::Status CheckSecretFile(const std::string& path, absl::string_view what,
                             const PermissionOptions& options = {});

// `path` (a file clavisd trusts but that holds no secret, e.g. the client
// CA bundle, the token issuers file, the revocation list or the config file)
// is fine if it does not exist or is not a regular file (as above), or is a
// regular file owned by the expected user or by root that group and others
// cannot WRITE (mode bits; with an ACL the group bits are its mask, which
// bounds every named entry). Reading is fine: nothing in it is secret; but
// whoever can write the issuers file can mint tokens for any principal, and
// whoever can write the revocation list can un-revoke a token.
// FailedPrecondition naming the path, the mode or owner and the fix
// (`chmod go-w PATH`), unless options.allow_shared_secret_files, which turns
// that into a warning.
absl::Status CheckTrustFile(const std::string& path, absl::string_view what,
                            const PermissionOptions& options = {});

}  // namespace clavis::hardening

#endif  // CLAVIS_KMS_SERVER_PROCESS_HARDENING_H_
