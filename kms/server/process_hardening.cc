#include "kms/server/process_hardening.h"

#include <errno.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace clavis::hardening {
namespace {

uid_t ExpectedOwner(const PermissionOptions& options) {
  return options.expected_owner == static_cast<uid_t>(-1) ? ::geteuid() : options.expected_owner;
}

// "clavis (uid 998)", or "uid 998" when the name is unknown (containers).
std::string UserName(uid_t uid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return absl::StrCat(found->pw_name, " (uid ", uid, ")");
  }
  return absl::StrCat("uid ", uid);
}

// What chown takes: the name, or the number when there is no name.
std::string ChownTarget(uid_t uid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return absl::StrCat(uid);
}

// The POSIX access ACL as the kernel stores it in the system.posix_acl_access
// extended attribute (linux/posix_acl_xattr.h): a little-endian version 2
// header, then {tag, perm, id} entries.
constexpr uint32_t kAclVersion = 2;
constexpr uint16_t kAclUserObj = 0x01, kAclUser = 0x02, kAclGroupObj = 0x04, kAclGroup = 0x08,
                   kAclMask = 0x10, kAclOther = 0x20;
constexpr size_t kAclHeaderSize = 4, kAclEntrySize = 8;

uint32_t LittleEndian(const unsigned char* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = n; i > 0; --i) v = (v << 8) | p[i - 1];
  return v;
}

// Who besides the owner (and `allowed_user`) the file's ACL lets in at all,
// in words; empty if nobody. `mode` decides alone when the file has no
// extended ACL.
absl::StatusOr<std::string> SharedAccess(const std::string& path, mode_t mode, uid_t allowed_user) {
  unsigned char acl[4096];
  const ssize_t size = ::getxattr(path.c_str(), "system.posix_acl_access", acl, sizeof(acl));
  if (size < 0) {
    // No ACL (or a file system without them): the mode bits are the truth.
    if (errno != ENODATA && errno != ENOTSUP && errno != EOPNOTSUPP) {
      return absl::InternalError(
          absl::StrCat("reading the ACL of ", path, ": ", std::strerror(errno)));
    }
    return (mode & 077) == 0 ? std::string() : absl::StrFormat("mode %04o", mode & 07777);
  }
  if (static_cast<size_t>(size) < kAclHeaderSize || LittleEndian(acl, 4) != kAclVersion ||
      (static_cast<size_t>(size) - kAclHeaderSize) % kAclEntrySize != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " has an ACL this check cannot read; remove it (`setfacl -b ", path,
                     "`) and run `chmod 600 ", path, "`"));
  }
  // With an ACL, the mode's group bits are the mask: read the entries.
  uint16_t mask = 07;
  struct Entry {
    uint16_t tag, perm;
    uint32_t id;
  };
  std::vector<Entry> entries;
  for (size_t at = kAclHeaderSize; at < static_cast<size_t>(size); at += kAclEntrySize) {
    const Entry e{static_cast<uint16_t>(LittleEndian(acl + at, 2)),
                  static_cast<uint16_t>(LittleEndian(acl + at + 2, 2) & 07),
                  LittleEndian(acl + at + 4, 4)};
    if (e.tag == kAclMask) mask = e.perm;
    entries.push_back(e);
  }
  std::vector<std::string> who;
  for (const Entry& e : entries) {
    switch (e.tag) {
      case kAclUser:
        if ((e.perm & mask) != 0 && e.id != allowed_user) {
          who.push_back(absl::StrCat("ACL entry for ", UserName(e.id)));
        }
        break;
      case kAclGroupObj:
        if ((e.perm & mask) != 0) who.push_back("ACL entry for the file's group");
        break;
      case kAclGroup:
        if ((e.perm & mask) != 0) who.push_back(absl::StrCat("ACL entry for gid ", e.id));
        break;
      case kAclOther:
        if (e.perm != 0) who.push_back("other users");
        break;
      case kAclUserObj:
      case kAclMask:
        break;
      default:
        who.push_back(absl::StrFormat("ACL entry of unknown kind 0x%x", e.tag));
    }
  }
  return absl::StrJoin(who, ", ");
}

}  // namespace

absl::Status DisableCoreDumps() {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return absl::InternalError(absl::StrCat(
        "cannot disable core dumps: prctl(PR_SET_DUMPABLE, 0): ", std::strerror(errno)));
  }
  const struct rlimit none = {0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return absl::InternalError(absl::StrCat(
        "cannot disable core dumps: setrlimit(RLIMIT_CORE, 0): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status CheckPrivateDirectory(const std::string& path, absl::string_view what,
                                   const PermissionOptions& options) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();  // the caller creates it 0700
    return absl::InternalError(
        absl::StrCat("cannot stat ", what, " ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(what, " ", path, " is not a directory"));
  }
  const uid_t owner = ExpectedOwner(options);
  if (st.st_uid != owner) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " ", path, " is owned by ", UserName(st.st_uid), ", not by ", UserName(owner),
        " which runs this process; run `chown -R ", ChownTarget(owner), " ", path, "`"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s %s is accessible by group or others (mode %04o); run `chmod 700 %s`",
                        what, path, st.st_mode & 07777, path));
  }
  return absl::OkStatus();
}

absl::Status CheckSecretFile(const std::string& path, absl::string_view what,
                             const PermissionOptions& options) {
  if (path.empty()) return absl::OkStatus();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();  // its reader says so, or creates it
    return absl::InternalError(
        absl::StrCat("cannot stat ", what, " ", path, ": ", std::strerror(errno)));
  }
  // Pipes, /dev/fd/N and terminals hand the secret over once; nothing stays
  // behind for others to read.
  if (!S_ISREG(st.st_mode)) return absl::OkStatus();
  const uid_t owner = ExpectedOwner(options);
  std::string problem;
  if (st.st_uid != owner && st.st_uid != 0) {
    problem = absl::StrCat(what, " ", path, " is owned by ", UserName(st.st_uid), ", not by ",
                           UserName(owner), " which runs this process (or root); run `chown ",
                           ChownTarget(owner), " ", path, "`");
  } else {
    absl::StatusOr<std::string> shared = SharedAccess(path, st.st_mode, owner);
    if (!shared.ok()) {
      if (!absl::IsFailedPrecondition(shared.status())) return shared.status();
      problem = absl::StrCat(what, " ", shared.status().message());
    } else if (!shared->empty()) {
      problem = absl::StrFormat(
          "%s %s is accessible by group or others (%s); it holds a secret and must be private "
          "to the service user: run `chmod 600 %s`",
          what, path, *shared, path);
    }
  }
  if (problem.empty()) return absl::OkStatus();
  if (options.allow_shared_secret_files) {
    spdlog::warn("INSECURE: {} (accepted because of insecure_allow_shared_secret_files)", problem);
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat(problem,
                   " (a container platform that can only mount secrets this way: see "
                   "insecure_allow_shared_secret_files)"));
}

absl::Status CheckTrustFile(const std::string& path, absl::string_view what,
                            const PermissionOptions& options) {
  if (path.empty()) return absl::OkStatus();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();  // its reader says so
    return absl::InternalError(
        absl::StrCat("cannot stat ", what, " ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return absl::OkStatus();
  const uid_t owner = ExpectedOwner(options);
  std::string problem;
  if (st.st_uid != owner && st.st_uid != 0) {
    problem = absl::StrCat(what, " ", path, " is owned by ", UserName(st.st_uid), ", not by ",
                           UserName(owner), " which runs this process (or root); run `chown ",
                           ChownTarget(owner), " ", path, "`");
  } else if ((st.st_mode & 022) != 0) {
    problem = absl::StrFormat(
        "%s %s can be written by group or others (mode %04o); whoever can change it changes "
        "whom clavisd trusts: run `chmod go-w %s`",
        what, path, st.st_mode & 07777, path);
  }
  if (problem.empty()) return absl::OkStatus();
  if (options.allow_shared_secret_files) {
    spdlog::warn("INSECURE: {} (accepted because of insecure_allow_shared_secret_files)", problem);
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(problem);
}

}  // namespace clavis::hardening
