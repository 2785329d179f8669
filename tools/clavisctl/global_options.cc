#include "tools/clavisctl/global_options.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kms/auth/service_token.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/channel.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/input.h"
#include "tools/clavisctl/profile.h"
#include "tools/clavisctl/wipe.h"

namespace clavis::clavisctl {
namespace {

// Reads a PEM file given with `option` and checks that it holds a block
// whose label ends with `label_suffix` ("CERTIFICATE", "PRIVATE KEY"), so a
// swapped --cert/--key is a clear usage error rather than a failed handshake.
absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view option,
                                    absl::string_view label_suffix) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) {
    return UsageError(absl::StrCat(option, ": ", contents.status().message()));
  }
  if (!absl::StrContains(*contents, absl::StrCat(label_suffix, "-----"))) {
    WipeString(&*contents);
    return UsageError(absl::StrCat(option, " ", absl::CHexEscape(path), " is not a PEM ",
                                   absl::AsciiStrToLower(label_suffix), " file"));
  }
  return contents;
}

// The token file holds one token (surrounding whitespace, e.g. the newline
// `clavisctl token issue --out` writes, is ignored).
absl::StatusOr<std::string> ReadToken(const std::string& path, absl::string_view option) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) {
    return UsageError(absl::StrCat(option, ": ", contents.status().message()));
  }
  std::string token(absl::StripAsciiWhitespace(*contents));
  WipeString(&*contents);
  const std::string where = absl::StrCat(option, " ", absl::CHexEscape(path));
  absl::Status problem;
  if (!absl::StartsWith(token, kms::auth::kTokenPrefix)) {
    // Also what keeps an issuer seed file given here by mistake from being
    // sent to the server.
    problem = UsageError(absl::StrCat(where, " does not hold a Clavis service token (",
                                      kms::auth::kTokenPrefix, "...)"));
  } else if (token.size() > kms::auth::kMaxTokenBytes) {
    problem = UsageError(
        absl::StrCat(where, " holds a token longer than ", kms::auth::kMaxTokenBytes, " bytes"));
  } else {
    for (char c : token) {
      // Metadata values must be printable ASCII; a token has no spaces.
      if (c <= ' ' || c > '~') {
        problem = UsageError(absl::StrCat(where,
                                          " holds more than one line or a character that "
                                          "cannot be in a token"));
        break;
      }
    }
  }
  if (!problem.ok()) {
    WipeString(&token);
    return problem;
  }
  return token;
}

// The option's name in messages, and where its value came from when that was
// the profile: a bad path in a profile file is not on the command line.
std::string Label(const GlobalOptions& options, absl::string_view option, bool from_profile) {
  if (!from_profile) return std::string(option);
  return absl::StrCat(option, " (from profile \"", absl::CHexEscape(options.profile_used), "\")");
}

absl::StatusOr<Credentials> ReadCredentials(const GlobalOptions& options,
                                            const std::string& endpoint) {
  if (options.client_cert_file.empty() != options.client_key_file.empty()) {
    return UsageError("--cert and --key go together: give both or neither");
  }
  if (!options.client_cert_file.empty() && options.ca_cert_file.empty()) {
    return UsageError(
        "--cert and --key need --ca-cert: a client certificate is only sent over TLS");
  }
  if (!options.token_file.empty() && options.ca_cert_file.empty() &&
      !IsLoopbackEndpoint(endpoint)) {
    return UsageError(absl::StrCat("refusing to send a service token in clear to ", endpoint,
                                   ", which is not a loopback address; give --ca-cert to use TLS"));
  }
  Credentials credentials;
  if (!options.ca_cert_file.empty()) {
    absl::StatusOr<std::string> pem =
        ReadPem(options.ca_cert_file, Label(options, "--ca-cert", options.from_profile.ca_cert),
                "CERTIFICATE");
    if (!pem.ok()) return pem.status();
    credentials.root_certificates_pem = *std::move(pem);
  }
  if (!options.client_cert_file.empty()) {
    absl::StatusOr<std::string> pem =
        ReadPem(options.client_cert_file, Label(options, "--cert", options.from_profile.cert),
                "CERTIFICATE");
    if (!pem.ok()) return pem.status();
    credentials.client_certificate_pem = *std::move(pem);
  }
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadToken(
        options.token_file, Label(options, "--token-file", options.from_profile.token_file));
    if (!token.ok()) return token.status();
    credentials.token = *std::move(token);
  }
  // The key last, so that no later failure drops it unwiped.
  if (!options.client_key_file.empty()) {
    absl::StatusOr<std::string> key = ReadPem(
        options.client_key_file, Label(options, "--key", options.from_profile.key), "PRIVATE KEY");
    if (!key.ok()) {
      WipeString(&credentials.token);
      return key.status();
    }
    credentials.client_key_pem = *std::move(key);
  }
  return credentials;
}

}  // namespace

void AddGlobalOptions(CLI::App& root, const char* endpoint_env, GlobalOptions* options) {
  root.fallthrough();
  // The environment's value is the starting point the command line
  // overwrites, which gives command line > environment.
  if (endpoint_env != nullptr) options->endpoint = endpoint_env;
  root.add_option("--endpoint", options->endpoint,
                  "clavisd address (default: $CLAVIS_ENDPOINT, else the profile's, else "
                  "127.0.0.1:7370)")
      ->type_name("HOST:PORT")
      ->each([options](const std::string&) { options->endpoint_given = true; })
      ->group("Global options");
  root.add_option("--timeout", options->timeout,
                  "Deadline of each RPC, e.g. 10s, 2m (default: the profile's, else 10s)")
      ->type_name("DURATION")
      ->check(TimeoutCheck())
      ->group("Global options");
  root.add_flag("--json", options->json, "Print the response as JSON (proto3 JSON mapping)")
      ->group("Global options");
  root.add_flag("-v,--verbose", options->verbose,
                "Log each RPC (request type, outcome, latency) to stderr")
      ->group("Global options");
  root.add_option("--ca-cert", options->ca_cert_file,
                  "Use TLS and trust this CA certificate (PEM) for clavisd's certificate")
      ->type_name("FILE")
      ->envname(kCaCertEnvVar)
      ->group("Credentials");
  root.add_option("--cert", options->client_cert_file,
                  "Client certificate (PEM) for mutual TLS; needs --key and --ca-cert")
      ->type_name("FILE")
      ->envname(kClientCertEnvVar)
      ->group("Credentials");
  root.add_option("--key", options->client_key_file, "Private key (PEM) of --cert")
      ->type_name("FILE")
      ->envname(kClientKeyEnvVar)
      ->group("Credentials");
  root.add_option("--token-file", options->token_file,
                  "Send the service token in FILE (clavisctl token issue) as a bearer credential; "
                  "needs --ca-cert unless the endpoint is loopback")
      ->type_name("FILE")
      ->envname(kTokenFileEnvVar)
      ->group("Credentials");
  root.add_option("--profile", options->profile,
                  "Use this profile of the profile file for the options not given otherwise")
      ->type_name("NAME")
      ->envname(kProfileEnvVar)
      ->group("Profile");
  root.add_option("--profile-file", options->profile_file,
                  "The profile file (default: $XDG_CONFIG_HOME/clavis/clavisctl.json, else "
                  "~/.config/clavis/clavisctl.json)")
      ->type_name("FILE")
      ->envname(kProfileFileEnvVar)
      ->group("Profile");
}

absl::Status ResolveProfile(const std::string& default_file, GlobalOptions* options) {
  const bool explicit_file = !options->profile_file.empty();
  const std::string path = explicit_file ? options->profile_file : default_file;
  std::optional<SelectedProfile> selected;
  if (!path.empty()) {
    absl::StatusOr<ClavisctlProfiles> profiles = ReadProfileFile(path);
    if (profiles.ok()) {
      absl::StatusOr<std::optional<SelectedProfile>> chosen =
          SelectProfile(*profiles, options->profile, path);
      if (!chosen.ok()) return chosen.status();
      selected = *std::move(chosen);
    } else if (!absl::IsNotFound(profiles.status())) {
      return profiles.status();
    } else if (explicit_file || !options->profile.empty()) {
      // Only a default file that does not exist may be ignored, and only when
      // no profile is asked for: that is clavisctl without profiles.
      return AsUsageError(profiles.status());
    }
  } else if (!options->profile.empty()) {
    return UsageError(absl::StrCat("--profile ", absl::CHexEscape(options->profile),
                                   ": no profile file (neither $XDG_CONFIG_HOME nor $HOME is "
                                   "set); give --profile-file"));
  }

  if (selected.has_value()) {
    const Profile& p = selected->profile;
    options->profile_used = selected->name;
    if (!options->endpoint_given && options->endpoint.empty()) options->endpoint = p.endpoint();
    if (options->timeout.empty()) options->timeout = p.timeout();
    auto fill = [](std::string* option, const std::string& value, bool* from_profile) {
      if (!option->empty() || value.empty()) return;
      *option = value;
      *from_profile = true;
    };
    fill(&options->ca_cert_file, p.ca_cert(), &options->from_profile.ca_cert);
    fill(&options->client_cert_file, p.cert(), &options->from_profile.cert);
    fill(&options->client_key_file, p.key(), &options->from_profile.key);
    fill(&options->token_file, p.token_file(), &options->from_profile.token_file);
  }
  if (!options->endpoint_given && options->endpoint.empty()) {
    options->endpoint = std::string(kDefaultEndpoint);
  }
  if (options->timeout.empty()) options->timeout = "10s";
  return absl::OkStatus();
}

absl::StatusOr<SessionSettings> ToSessionSettings(const GlobalOptions& options) {
  SessionSettings settings;
  if (options.endpoint.empty()) return UsageError("--endpoint is empty");
  settings.endpoint = options.endpoint;
  absl::StatusOr<absl::Duration> timeout = ParseDuration(options.timeout);
  if (!timeout.ok()) return AsUsageError(timeout.status());
  settings.timeout = *timeout;
  settings.json = options.json;
  settings.profile = options.profile_used;
  absl::StatusOr<Credentials> credentials = ReadCredentials(options, settings.endpoint);
  if (!credentials.ok()) return credentials.status();
  settings.credentials = *std::move(credentials);
  return settings;
}

}  // namespace clavis::clavisctl
