// clavisctl: the admin CLI of Clavis. Full reference: docs/clavisctl.md.
//
// Commands (every one has --help with an example):
//   key create <tenants/T/keys/K> [--description D] [--label k=v]...
//              [--rotation-period 90d] [--require-explicit-segments]
//   key list <tenants/T> [--page-size N] [--page-token P] [--all]
//   key get|rotate|enable|disable|cancel-destroy|destroy <tenants/T/keys/K>
//   key schedule-destroy <tenants/T/keys/K> [--pending-window 30d]
//   key set-rotation <tenants/T/keys/K> [--period 90d] [--next 2026-12-01T00:00:00Z]
//                    [--segment-period 30d] [--retire-unused keep|disable|destroy]
//   key rewrap <tenants/T/keys/K> [--batch-size N] [--page-token P]
//   key version enable|disable|cancel-destroy|destroy|compromise <tenants/T/keys/K/versions/N>
//   key version schedule-destroy <tenants/T/keys/K/versions/N> [--pending-window 30d]
//   segment create|get|rotate|revoke|enable|cancel-destroy|destroy
//           <tenants/T/keys/K/segments/S>
//   segment schedule-destroy <tenants/T/keys/K/segments/S> [--pending-window 30d]
//   segment list <tenants/T/keys/K> [--prefix P] [--page-size N] [--page-token P] [--all]
//   datakey <tenants/T/keys/K> --segment S [--context k=v]...
//   encrypt <tenants/T/keys/K> --segment S [--context k=v]... [--plaintext-file F]
//   decrypt [--context k=v]... (--blob-base64 B | --blob-file F) [--key K] [--base64]
//   policy get <tenants/T/keys/K>
//   policy set|validate <tenants/T/keys/K> --file F [--approvals M]
//                         (validate: what set would say, changing nothing)
//   policy simulate <tenants/T/keys/K> --principal P --action A [...] [--draft-file F]
//   approval list <tenants/T/keys/K> [--all]
//   approval get|approve <tenants/T/approvals/ID>
//   approval deny <tenants/T/approvals/ID> [--reason TEXT]
//   pki init-ca --out DIR [--common-name CN] [--validity-days N] [--force]
//   pki issue-server --ca DIR --out PREFIX [--dns NAME]... [--ip ADDR]... [...]
//   pki issue-client --ca DIR --principal P [--group G]... --out PREFIX [...]
//   token keygen --out PREFIX --key-id ID [--force]
//   token issue --issuer-seed FILE --key-id ID --principal P [--group G]...
//               --audience AUD [--ttl 1h] [--token-id ID] [--out FILE] [--force]
//   whoami                principal, groups, method, peer, clavisd's version
//   status                reachable? healthy? who am I? (exit 7: unreachable)
//   completion bash       the bash completion script:
//                         source <(clavisctl completion bash)
// (pki, token, audit and completion run locally and call no server;
// `certs` is an alias of `pki`, `bootstrap` one of `init-ca`.)
//
// Counts and sizes (--page-size, --batch-size, --version N, --limit, -n) are
// whole numbers >= 1 (cli_checks.h CountCheck).
//
// Global options (before or after the command words):
//   --endpoint HOST:PORT  (default $CLAVIS_ENDPOINT, else the profile's,
//                          else 127.0.0.1:7370)
//   --timeout 10s         (deadline of each RPC)   --json   -v/--verbose
//   --ca-cert FILE        TLS ($CLAVIS_CA_CERT)
//   --cert FILE --key FILE  mTLS client certificate ($CLAVIS_CLIENT_CERT/_KEY)
//   --token-file FILE     bearer service token ($CLAVIS_TOKEN_FILE)
//   --profile NAME        a profile of the profile file ($CLAVIS_PROFILE)
//   --profile-file FILE   ($CLAVIS_PROFILE_FILE, else
//                          $XDG_CONFIG_HOME/clavis/clavisctl.json, else
//                          ~/.config/clavis/clavisctl.json)
// Each option: command line > environment > profile > built-in default.
//
// Exit codes (exit_codes.h; scripts rely on them, never renumber):
//   0 ok; 1 other error; 2 usage error; 3 NOT_FOUND; 4 FAILED_PRECONDITION;
//   5 INVALID_ARGUMENT; 6 PERMISSION_DENIED/UNAUTHENTICATED;
//   7 UNAVAILABLE/DEADLINE_EXCEEDED; 8 ALREADY_EXISTS.
//
// main() stays thin on purpose: all logic is in run.cc and below, which the
// tests call directly.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "grpc/grpc.h"

#include "crypto/openssl_process.h"
#include "spdlog/spdlog.h"
#include "tools/clavisctl/channel.h"
#include "tools/clavisctl/run.h"

int main(int argc, char** argv) {
  // A library reference across Run, and waiting for gRPC's shutdown after
  // it, let most of gRPC's threads finish before the process ends.
  grpc_init();
  clavis::clavisctl::Io io;
  io.in_is_terminal = isatty(STDIN_FILENO) == 1;
  const int code =
      clavis::clavisctl::Run(argc, argv, io, std::getenv(clavis::clavisctl::kEndpointEnvVar));
  grpc_shutdown_blocking();
  spdlog::shutdown();
  // Not exit(): OpenSSL's exit handler would race gRPC threads still ending
  // (crypto/openssl_process.h says why).
  clavis::crypto::ExitWithoutLibraryCleanUp(code);
}
