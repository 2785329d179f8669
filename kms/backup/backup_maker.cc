#include "kms/backup/backup_maker.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace clavis::kms {
namespace {

absl::Status SpoolError(absl::string_view what, int err) {
  const std::string message =
      absl::StrCat("backup spool file: cannot ", what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

absl::Status WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return SpoolError("write", errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

PreparedBackup::~PreparedBackup() {
  ::close(fd_);
  running_->store(false, std::memory_order_release);
}

absl::Status PreparedBackup::Stream(const std::function<absl::Status(absl::string_view)>& emit,
                                    size_t piece_size) const {
  std::string piece(piece_size, '\0');
  uint64_t offset = 0;
  while (offset < size_) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(piece_size, size_ - offset));
    const ssize_t n = ::pread(fd_, piece.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return SpoolError("read", n < 0 ? errno : EIO);
    if (absl::Status s = emit(absl::string_view(piece.data(), static_cast<size_t>(n))); !s.ok()) {
      return s;
    }
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

BackupMaker::BackupMaker(Store* store, RootKeyProvider* root, const Clock* clock,
                         std::string spool_dir, std::string source)
    : store_(store),
      root_(root),
      clock_(clock),
      spool_dir_(std::move(spool_dir)),
      source_(std::move(source)) {}

absl::StatusOr<std::unique_ptr<PreparedBackup>> BackupMaker::Prepare(
    const std::function<bool()>& cancelled) {
  if (running_.exchange(true, std::memory_order_acquire)) {
    return absl::ResourceExhaustedError(
        "a backup is already running; try again when it has finished");
  }
  bool handed_over = false;
  absl::Cleanup release_on_error = [&] {
    if (!handed_over) running_.store(false, std::memory_order_release);
  };
  if (cancelled && cancelled()) return absl::CancelledError("the backup was cancelled");

  std::string name = spool_dir_ + "/.backup-spool-XXXXXX";
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return SpoolError(absl::StrCat("create it in ", spool_dir_), errno);
  // Nameless from here on: nothing to clean up after a crash.
  ::unlink(name.c_str());
  bool keep = false;
  absl::Cleanup close_on_error = [&] {
    if (!keep) ::close(fd);
  };

  auto writer = BackupWriter::New(root_, source_, clock_->Now(),
                                  [fd](absl::string_view bytes) { return WriteAll(fd, bytes); });
  if (!writer.ok()) return writer.status();
  absl::Status exported =
      store_->ExportSnapshot([&](absl::string_view key, absl::string_view value) {
        if (cancelled && cancelled()) return absl::CancelledError("the backup was cancelled");
        return (*writer)->Add(key, value);
      });
  if (!exported.ok()) return exported;
  if (absl::Status s = (*writer)->Finish(); !s.ok()) return s;
  keep = true;
  handed_over = true;
  return std::unique_ptr<PreparedBackup>(new PreparedBackup(
      fd, (*writer)->header(), (*writer)->entries(), (*writer)->bytes_written(), &running_));
}

}  // namespace clavis::kms
