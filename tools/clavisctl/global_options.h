// The options every command accepts, before or after the command words:
//   --endpoint host:port   (default $CLAVIS_ENDPOINT, else 127.0.0.1:7370)
//   --timeout 10s          deadline of each RPC
//   --json                 print the response as JSON
//   -v, --verbose          log each RPC (type, outcome, latency) to stderr
// and the credentials (each also from an environment variable):
//   --ca-cert FILE         TLS, trusting this CA            ($CLAVIS_CA_CERT)
//   --cert FILE --key FILE mTLS client certificate and key  ($CLAVIS_CLIENT_CERT,
//                                                            $CLAVIS_CLIENT_KEY)
//   --token-file FILE      a service token (bearer)         ($CLAVIS_TOKEN_FILE)
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
  std::string endpoint;
  std::string timeout = "10s";
  bool json = false;
  bool verbose = false;
  // Paths; empty: not given.
  std::string ca_cert_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::string token_file;
};

// Adds the options to the root app. Must run before any subcommand is added:
// subcommands inherit fallthrough from the root when they are created, which
// is what lets "clavisctl key get NAME --json" work.
void AddGlobalOptions(CLI::App& root, const std::string& default_endpoint, GlobalOptions* options);

// After a successful parse (CLI11 has validated the timeout already). Reads
// the credential files. Usage errors: --cert without --key or the reverse, a
// client certificate without --ca-cert (it is only sent over TLS), a token
// for a plaintext non-loopback endpoint (it would cross the network in
// clear), an unreadable file, or a file that does not hold what it should
// (messages never quote a key or token).
absl::StatusOr<SessionSettings> ToSessionSettings(const GlobalOptions& options);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_GLOBAL_OPTIONS_H_
