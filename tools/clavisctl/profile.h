// clavisctl's profile file: named sets of connection options (endpoint, TLS
// and credential files, timeout) so that `clavisctl --profile prod key list
// tenants/acme` replaces five options. The file is protobuf JSON of
// ClavisctlProfiles (profiles.proto); docs/clavisctl.md, "Profiles", is the
// user's reference.
//
// The file is checked like a credential: it names the files clavisctl
// authenticates with, so one that others can write is refused, as is one
// that is not a regular file or is larger than kMaxProfileFileBytes. Every
// problem is a usage error (exit 2) naming the file and, for bad JSON, where.
#ifndef CLAVIS_TOOLS_CLAVISCTL_PROFILE_H_
#define CLAVIS_TOOLS_CLAVISCTL_PROFILE_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tools/clavisctl/profiles.pb.h"

namespace clavis::clavisctl {

constexpr char kProfileEnvVar[] = "CLAVIS_PROFILE";
constexpr char kProfileFileEnvVar[] = "CLAVIS_PROFILE_FILE";
// Far above any real file (a profile is a few hundred bytes): a bound so a
// path to a device or a log by mistake fails fast.
constexpr size_t kMaxProfileFileBytes = 1 << 20;

// Where the profile file is when --profile-file and $CLAVIS_PROFILE_FILE are
// not given: $XDG_CONFIG_HOME/clavis/clavisctl.json if XDG_CONFIG_HOME is an
// absolute path (the XDG spec says to ignore a relative one), else
// $HOME/.config/clavis/clavisctl.json, else "" (no default file). The
// arguments are getenv's results (may be null).
std::string DefaultProfileFile(const char* xdg_config_home, const char* home);

// Parses a profile file's contents (`path` only names the file in errors).
// Usage errors: malformed JSON (with the place), a field that is not in
// ClavisctlProfiles/Profile (named), a value of the wrong type, an empty
// profile name, an invalid timeout.
absl::StatusOr<ClavisctlProfiles> ParseProfiles(absl::string_view json, absl::string_view path);

// Reads and parses the file at `path`. NotFound (not a usage error) if it does
// not exist, so that a missing default file can be ignored; every other
// problem is a usage error: unreadable, not a regular file, writable by group
// or others, larger than kMaxProfileFileBytes, or what ParseProfiles refuses.
absl::StatusOr<ClavisctlProfiles> ReadProfileFile(const std::string& path);

struct SelectedProfile {
  std::string name;
  // Relative paths already resolved against the profile file's directory.
  Profile profile;
};

// The profile to use from the file at `path`: `name` if non-empty (a usage
// error listing the known names if the file has no such profile), else the
// file's default_profile, else none.
absl::StatusOr<std::optional<SelectedProfile>> SelectProfile(const ClavisctlProfiles& profiles,
                                                             const std::string& name,
                                                             const std::string& path);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_PROFILE_H_
