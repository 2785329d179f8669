#include "kms/audit/internal/log_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clavis::kms::audit_internal {
namespace {

absl::Status ErrnoStatus(absl::string_view what, const std::string& path, int err) {
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

// "audit-000001.log" -> 1; false for any other name.
bool ParseLogFileName(absl::string_view name, uint32_t* number) {
  constexpr absl::string_view kPrefix = "audit-";
  constexpr absl::string_view kSuffix = ".log";
  if (name.size() != kPrefix.size() + 6 + kSuffix.size() || !absl::StartsWith(name, kPrefix) ||
      !absl::EndsWith(name, kSuffix)) {
    return false;
  }
  absl::string_view digits = name.substr(kPrefix.size(), 6);
  if (!std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) return false;
  return absl::SimpleAtoi(digits, number) && *number >= 1;
}

}  // namespace

std::string LogFileName(uint32_t number) { return absl::StrFormat("audit-%06u.log", number); }

absl::StatusOr<std::vector<LogFileRef>> ListLogFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("cannot open audit log directory", dir, errno);
  std::vector<LogFileRef> files;
  while (struct dirent* entry = readdir(d)) {
    uint32_t number;
    if (ParseLogFileName(entry->d_name, &number)) {
      files.push_back({number, entry->d_name, absl::StrCat(dir, "/", entry->d_name)});
    }
  }
  closedir(d);
  std::sort(files.begin(), files.end(),
            [](const LogFileRef& a, const LogFileRef& b) { return a.number < b.number; });
  return files;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus("cannot stat", path, err);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxReadableFileBytes) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is larger than ", kMaxReadableFileBytes, " bytes; not an audit log"));
  }
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoStatus("cannot read", path, err);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxReadableFileBytes) {
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(path, " grew past the read limit"));
    }
  }
  close(fd);
  return data;
}

absl::Status WriteFully(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      const std::string message = absl::StrCat("audit log write: ", std::strerror(err));
      if (err == ENOSPC || err == EDQUOT) {
        return absl::ResourceExhaustedError(absl::StrCat("storage full: ", message));
      }
      if (err == EROFS) return absl::UnavailableError(absl::StrCat("storage read-only: ", message));
      return absl::InternalError(message);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncFd(int fd) {
  if (fdatasync(fd) != 0) {
    return absl::InternalError(absl::StrCat("audit log fdatasync: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir, errno);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoStatus("cannot fsync directory", dir, err);
  return absl::OkStatus();
}

}  // namespace clavis::kms::audit_internal
