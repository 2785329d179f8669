#include "tools/clavisctl/backup_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "clavis/v1/operations.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/resource_format.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

absl::Status WriteError(const std::string& path, int err) {
  return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
}

absl::Status WriteAll(int fd, const std::string& path, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return WriteError(path, errno);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CreateBackup(Session& session, const BackupCreateArgs& args) {
  if (session.operations() == nullptr) return absl::InternalError("no connection to clavisd");
  if (!args.force && std::filesystem::exists(args.out)) {
    return UsageError(absl::StrCat(args.out, " exists; remove it or pass --force"));
  }
  // Written to a new private temporary file beside --out (mkstemp: created
  // exclusively, mode 0600, never an existing file or a planted symlink),
  // synced and published at the end, so a failed or interrupted backup never
  // sits under the expected name, and the file is never readable by others
  // (it is as sensitive as the data directory).
  std::string partial = args.out + ".partial-XXXXXX";
  const int fd = ::mkstemp(partial.data());
  if (fd < 0) {
    return UsageError(
        absl::StrCat("cannot create a file beside ", args.out, ": ", std::strerror(errno)));
  }
  bool complete = false;
  absl::Cleanup cleanup = [&] {
    ::close(fd);
    if (!complete) ::unlink(partial.c_str());
  };

  clavis::v1::BackupSummary summary;
  uint64_t bytes = 0;
  absl::Status streamed =
      session.Stream(*session.operations(), &clavis::v1::Operations::StubInterface::CreateBackup,
                     clavis::v1::CreateBackupRequest(),
                     std::function<absl::Status(const clavis::v1::BackupChunk&)>(
                         [&](const clavis::v1::BackupChunk& chunk) -> absl::Status {
                           if (chunk.has_summary()) summary = chunk.summary();
                           if (absl::Status s = WriteAll(fd, partial, chunk.data()); !s.ok())
                             return s;
                           bytes += chunk.data().size();
                           if (!session.json()) session.err() << "backup: " << bytes << " bytes\r";
                           return absl::OkStatus();
                         }));
  if (!session.json() && bytes > 0) session.err() << "\n";
  if (!streamed.ok()) return streamed;
  if (bytes != summary.size_bytes()) {
    return absl::DataLossError(absl::StrCat("backup stream ended after ", bytes,
                                            " bytes; clavisd announced ", summary.size_bytes()));
  }
  if (::fsync(fd) != 0) return WriteError(partial, errno);
  if (args.force) {
    if (::rename(partial.c_str(), args.out.c_str()) != 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot rename ", partial, " to ", args.out, ": ", std::strerror(errno)));
    }
  } else {
    // link() fails if --out appeared meanwhile: never overwritten without --force.
    if (::link(partial.c_str(), args.out.c_str()) != 0) {
      const int err = errno;
      if (err == EEXIST) {
        return UsageError(absl::StrCat(args.out, " exists; remove it or pass --force"));
      }
      return absl::UnavailableError(
          absl::StrCat("cannot create ", args.out, ": ", std::strerror(err)));
    }
    ::unlink(partial.c_str());
  }
  complete = true;
  // The new name itself survives a power loss only once its directory is synced.
  const std::string dir = std::filesystem::path(args.out).parent_path().string();
  if (const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }

  google::protobuf::Struct fields;
  (*fields.mutable_fields())["file"].set_string_value(args.out);
  (*fields.mutable_fields())["backupId"].set_string_value(summary.backup_id());
  (*fields.mutable_fields())["createTime"].set_string_value(FormatTimestamp(summary.create_time()));
  (*fields.mutable_fields())["entries"].set_number_value(static_cast<double>(summary.entries()));
  (*fields.mutable_fields())["bytes"].set_number_value(static_cast<double>(bytes));
  (*fields.mutable_fields())["source"].set_string_value(summary.source());
  return session.Print(fields,
                       FormatTable({{"backup", args.out},
                                    {"backup id", summary.backup_id()},
                                    {"created", FormatTimestamp(summary.create_time())},
                                    {"store entries", absl::StrCat(summary.entries())},
                                    {"bytes", absl::StrCat(bytes)},
                                    {"made by", summary.source()},
                                    {"restore",
                                     "clavisd --restore_from FILE --data_dir NEW_DIR with the "
                                     "same root key (docs/BACKUP.md)"}}));
}

void RegisterBackupCommands(CommandRegistry& registry) {
  CLI::App* backup = registry.AddNoun(
      registry.root(), "backup",
      "Online, consistent, encrypted backups of clavisd's whole store (docs/BACKUP.md)",
      {"clavisctl backup create --out clavis-2026-11-24.backup"});
  auto args = std::make_shared<BackupCreateArgs>();
  CLI::App* c = registry.AddCommand(
      *backup, "create",
      "Take a backup of every tenant's keys, policies and approvals while clavisd runs, "
      "encrypted under a key wrapped by clavisd's root key, into --out (mode 0600). Needs a "
      "principal in clavisd's --backup_operator list. Large stores: raise --timeout",
      {"clavisctl backup create --out clavis-2026-11-24.backup",
       "clavisctl --timeout 10m backup create --out /backups/clavis.backup --force"},
      [args](Session& s) { return CreateBackup(s, *args); });
  c->add_option("--out", args->out, "Where to write the backup file")
      ->required()
      ->type_name("FILE");
  c->add_flag("--force", args->force, "Overwrite an existing --out file");
}

}  // namespace clavis::clavisctl
