// The options every command accepts, before or after the command words:
//   --endpoint host:port   (default $CLAVIS_ENDPOINT, else the profile's,
//                           else 127.0.0.1:7370)
//   --timeout 10s          deadline of each RPC
//   --json                 print the response as JSON
//   -v, --verbose          log each RPC (type, outcome, latency) to stderr
// the credentials (each also from an environment variable):
//   --ca-cert FILE         TLS, trusting this CA            ($CLAVIS_CA_CERT)
//   --cert FILE --key FILE mTLS client certificate and key  ($CLAVIS_CLIENT_CERT,
//                                                            $CLAVIS_CLIENT_KEY)
//   --token-file FILE      a service token (bearer)         ($CLAVIS_TOKEN_FILE)
// and the profile that fills in what those leave unset (profile.h):
//   --profile NAME         ($CLAVIS_PROFILE)
//   --profile-file FILE    ($CLAVIS_PROFILE_FILE, else the XDG default)
// Precedence, option by option: command line > environment > profile >
// built-in default.
#ifndef CLAVIS_TOOLS_CLAVISCTL_GLOBAL_OPTIONS_H_
#define CLAVIS_TOOLS_CLAVISCTL_GLOBAL_OPTIONS_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

constexpr char kCaCertEnvVar[] = "CLAVIS_CA_CERT";
constexpr char kClientCertEnvVar[] = "CLAVIS_CLIENT_CERT";
constexpr char kClientKeyEnvVar[] = "CLAVIS_CLIENT_KEY";
constexpr char kTokenFileEnvVar[] = "CLAVIS_TOKEN_FILE";

struct GlobalOptions {
  // --endpoint, else $CLAVIS_ENDPOINT; empty: neither (ResolveProfile fills
  // it in from the profile or the built-in default).
  std::string endpoint;
  bool endpoint_given = false;  // on the command line (even if empty)
  std::string timeout;          // empty: not given
  bool json = false;
  bool verbose = false;
  // Paths; empty: not given.
  std::string ca_cert_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::string token_file;
  std::string profile;       // --profile / $CLAVIS_PROFILE
  std::string profile_file;  // --profile-file / $CLAVIS_PROFILE_FILE

  // Set by ResolveProfile: the profile used ("" if none) and which options
  // came from it, so error messages can say where a bad path came from.
  std::string profile_used;
  struct FromProfile {
    bool ca_cert = false;
    bool cert = false;
    bool key = false;
    bool token_file = false;
  } from_profile;
};

// Adds the options to the root app. Must run before any subcommand is added:
// subcommands inherit fallthrough from the root when they are created, which
// is what lets "clavisctl key get NAME --json" work. `endpoint_env` is
// getenv("CLAVIS_ENDPOINT") (may be null).
void AddGlobalOptions(CLI::App& root, const char* endpoint_env, GlobalOptions* options);

// After a successful parse, for commands that call clavisd: reads the profile
// file (--profile-file, else $CLAVIS_PROFILE_FILE, else `default_file`, see
// DefaultProfileFile) and fills every option still unset from the selected
// profile, then from the built-in defaults (127.0.0.1:7370, 10s). A missing
// default file is not an error unless a profile is named; every problem with
// the file or the name is a usage error (profile.h).
absl::Status ResolveProfile(const std::string& default_file, GlobalOptions* options);

// After ResolveProfile (CLI11 has validated the timeout already). Reads
// the credential files. Usage errors: --cert without --key or the reverse, a
// client certificate without --ca-cert (it is only sent over TLS), a token
// for a plaintext non-loopback endpoint (it would cross the network in
// clear), an unreadable file, or a file that does not hold what it should
// (messages never quote a key or token).
absl::StatusOr<SessionSettings> ToSessionSettings(const GlobalOptions& options);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_GLOBAL_OPTIONS_H_
