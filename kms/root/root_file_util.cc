#include "kms/root/root_file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "crypto/encoding.h"
#include "crypto/random.h"

namespace clavis::kms::root_internal {
namespace {

// close(2) that keeps errno of the failure being reported.
void CloseQuietly(int fd) {
  const int saved = errno;
  ::close(fd);
  errno = saved;
}

std::string DirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? std::string(".") : dir;
}

absl::Status WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FsyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("opening directory ", dir));
  if (::fsync(fd) != 0) {
    CloseQuietly(fd);
    return absl::ErrnoToStatus(errno, absl::StrCat("fsync of directory ", dir));
  }
  ::close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::Status EnsureParentDirectory(const std::string& file_path) {
  const std::filesystem::path parent = std::filesystem::path(file_path).parent_path();
  if (parent.empty()) return absl::OkStatus();  // the working directory
  struct stat st;
  if (::stat(parent.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat(parent.string(), " exists and is not a directory"));
  }
  // Walk down from the root so every missing level is created 0700: a
  // directory holding a root key is nobody else's business.
  std::filesystem::path prefix;
  for (const std::filesystem::path& part : parent) {
    prefix /= part;
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      // mkdir's mode is filtered by the umask; state the intended mode.
      if (::chmod(prefix.c_str(), 0700) != 0) {
        return absl::ErrnoToStatus(errno, absl::StrCat("chmod 700 ", prefix.string()));
      }
      continue;
    }
    if (errno != EEXIST) {
      return absl::ErrnoToStatus(errno, absl::StrCat("creating directory ", prefix.string()));
    }
    if (::stat(prefix.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(prefix.string(), " exists and is not a directory"));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteNewFileAtomically(const std::string& path, absl::string_view contents,
                                    mode_t mode, absl::string_view what) {
  const std::string dir = DirectoryOf(path);
  const std::string tmp = absl::StrCat(path, ".tmp-", crypto::HexEncode(crypto::RandomBytes(8)));
  // O_EXCL | O_NOFOLLOW: never write through a file or link someone planted.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("creating temporary ", what, " ", tmp));
  }
  // The temporary name goes on every path out: after a successful link(2)
  // the file lives on under `path`.
  absl::Cleanup remove_tmp = [&tmp] { ::unlink(tmp.c_str()); };
  // open's mode is filtered by the umask; set exactly what was asked for.
  if (::fchmod(fd, mode) != 0) {
    CloseQuietly(fd);
    return absl::ErrnoToStatus(errno, absl::StrCat("chmod of temporary ", what, " ", tmp));
  }
  if (absl::Status s = WriteAll(fd, contents); !s.ok()) {
    CloseQuietly(fd);
    return absl::Status(s.code(), absl::StrCat("writing ", what, " ", tmp, ": ", s.message()));
  }
  if (::fsync(fd) != 0) {
    CloseQuietly(fd);
    return absl::ErrnoToStatus(errno, absl::StrCat("fsync of ", what, " ", tmp));
  }
  if (::close(fd) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("closing ", what, " ", tmp));
  }
  // link(2), not rename(2): it refuses to replace an existing file, so a
  // concurrent creator's key is never overwritten.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(what, " ", path, " already exists"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("linking ", what, " into place at ", path));
  }
  std::move(remove_tmp).Invoke();
  return FsyncDirectory(dir);
}

absl::StatusOr<crypto::SecretBytes> ReadSmallFile(const std::string& path,
                                                  const ReadFileOptions& options,
                                                  absl::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("opening ", what, " ", path));
  }
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  // fstat on the open descriptor: the checks apply to the file actually read,
  // not to whatever the path named a moment earlier.
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("stat of ", what, " ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(what, " ", path, " is not a regular file"));
  }
  if (options.require_owner_only && (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s %s is accessible by group or others (mode %04o); it holds a plaintext key and "
        "must be private to the service user: run `chmod 600 %s`",
        what, path, st.st_mode & 07777, path));
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > options.max_size) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is ", st.st_size,
                                                   " bytes, too large to be a Clavis ", what,
                                                   " (at most ", options.max_size, ")"));
  }
  // Read into secure memory; one spare byte detects a file that grew.
  crypto::SecretBytes buffer(options.max_size + 1);
  size_t total = 0;
  while (total < buffer.size()) {
    const ssize_t n = ::read(fd, buffer.data() + total, buffer.size() - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("reading ", what, " ", path));
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  if (total > options.max_size) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is too large to be a Clavis ",
                                                   what, " (at most ", options.max_size,
                                                   " bytes)"));
  }
  // `buffer` is wiped when it goes out of scope.
  return crypto::SecretBytes::CopyOf(buffer.view().substr(0, total));
}

}  // namespace clavis::kms::root_internal
