// The files of an audit log directory: names (audit-000001.log, ...),
// listing in order, whole-file reads and the POSIX write/fsync helpers the
// writer needs. Nothing here knows the record format.
#ifndef CLAVIS_KMS_AUDIT_INTERNAL_LOG_FILES_H_
#define CLAVIS_KMS_AUDIT_INTERNAL_LOG_FILES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::kms::audit_internal {

// Files beyond 999999 are refused rather than named ambiguously.
inline constexpr uint32_t kMaxFileNumber = 999999;
// A reader refuses to load a bigger file (hostile input, or not a log).
inline constexpr uint64_t kMaxReadableFileBytes = uint64_t{1} << 30;

struct LogFileRef {
  uint32_t number = 0;
  std::string name;  // "audit-000001.log"
  std::string path;  // dir + "/" + name
};

std::string LogFileName(uint32_t number);

// The audit-NNNNNN.log files of `dir` in ascending number; other names are
// ignored. NotFound if `dir` does not exist.
absl::StatusOr<std::vector<LogFileRef>> ListLogFiles(const std::string& dir);

// The whole file. FailedPrecondition if larger than kMaxReadableFileBytes.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// write(2) until all of `data` is written (retries EINTR and short writes).
absl::Status WriteFully(int fd, absl::string_view data);
absl::Status SyncFd(int fd);
// fsync of the directory, so a newly created file's name is durable.
absl::Status SyncDir(const std::string& dir);

}  // namespace clavis::kms::audit_internal

#endif  // CLAVIS_KMS_AUDIT_INTERNAL_LOG_FILES_H_
