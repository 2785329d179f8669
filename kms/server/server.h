// Server: builds clavisd from a ServerConfig (storage, root of trust, key
// domain, gRPC services) and runs it until Shutdown().
#ifndef CLAVIS_KMS_SERVER_SERVER_H_
#define CLAVIS_KMS_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kms/server/config.pb.h"

namespace clavis::kms {

// Fills defaults and checks a config (InvalidArgument naming the field).
absl::StatusOr<clavis::server::ServerConfig> CompleteConfig(clavis::server::ServerConfig config);

// A config file's JSON (docs/clavisd.md) as a ServerConfig, not yet
// completed. Unknown fields are refused, since a misspelt option must not
// be silently ignored: InvalidArgument with protobuf's message.
absl::StatusOr<clavis::server::ServerConfig> ParseConfigJson(absl::string_view json);

// The release clavisd was built as (CMake's PROJECT_VERSION): what
// `clavisd --version` prints and WhoAmI reports.
const char* ServerVersion();

// True for 127.0.0.0/8, ::1 and "localhost" listen addresses.
bool IsLoopbackAddress(const std::string& listen_address);

// Offline restore (`clavisd --restore_from FILE`, docs/BACKUP.md): restores
// the backup at `backup_path` into config.data_dir, which must not exist yet
// or hold nothing but the root of trust's own files (root.key,
// root-passphrase.params). The root key is opened as configured but never
// created. Returns a one-line summary for the operator. Errors name what is
// wrong (not empty, wrong root key, damaged or truncated backup, ...); on
// error no store is left in the data directory.
absl::StatusOr<std::string> RestoreDataDirectory(const clavis::server::ServerConfig& config,
                                                 const std::string& backup_path);

class Server {
 public:
  // Opens the store and root key, starts listening. Errors name what failed
  // (e.g. FailedPrecondition "data directory ... is in use").
  static absl::StatusOr<std::unique_ptr<Server>> BuildAndStart(
      const clavis::server::ServerConfig& config);
  virtual ~Server() = default;

  virtual int port() const = 0;
  // Blocks until Shutdown() is called from another thread.
  virtual void Wait() = 0;
  // Stops accepting calls, ends event streams, lets in-flight calls finish
  // (up to `grace`), then closes the store.
  virtual void Shutdown(absl::Duration grace) = 0;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVER_SERVER_H_
