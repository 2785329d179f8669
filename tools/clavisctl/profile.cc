#include "tools/clavisctl/profile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/exit_codes.h"

namespace clavis::clavisctl {
namespace {

std::string Where(absl::string_view path) {
  return absl::StrCat("profile file ", absl::CHexEscape(path));
}

absl::Status ProfileError(absl::string_view path, absl::string_view problem) {
  return UsageError(absl::StrCat(Where(path), ": ", problem));
}

// nlohmann's message without its "[json.exception...] " tag and without the
// "; last read: '...'" tail, which would echo the file's text.
std::string JsonSyntaxProblem(const nlohmann::json::parse_error& e) {
  absl::string_view what = e.what();
  if (absl::ConsumePrefix(&what, "[json.exception.")) {
    const size_t end = what.find("] ");
    if (end != absl::string_view::npos) what.remove_prefix(end + 2);
  }
  const size_t last_read = what.find("; last read:");
  if (last_read != absl::string_view::npos) what = what.substr(0, last_read);
  return std::string(what);
}

// Protobuf names a map entry "profiles[0].value"; parsing each profile on its
// own lets the message say "profiles.prod" instead.
absl::Status ParseEachProfile(const nlohmann::json& root, absl::string_view path) {
  if (!root.is_object()) return ProfileError(path, "the top level must be a JSON object");
  auto profiles = root.find("profiles");
  if (profiles == root.end() || !profiles->is_object()) return absl::OkStatus();
  for (auto it = profiles->begin(); it != profiles->end(); ++it) {
    const std::string where = absl::StrCat("profiles.", absl::CHexEscape(it.key()));
    if (it.key().empty()) return ProfileError(path, "a profile name is empty");
    if (!it->is_object()) return ProfileError(path, absl::StrCat(where, " must be a JSON object"));
    Profile profile;
    const auto parsed = google::protobuf::util::JsonStringToMessage(it->dump(), &profile);
    if (!parsed.ok()) {
      return ProfileError(path, absl::StrCat(where, ": ", parsed.message().ToString()));
    }
  }
  return absl::OkStatus();
}

std::string Resolve(const std::string& file, const std::string& dir) {
  if (file.empty() || file.front() == '/' || dir.empty()) return file;
  return absl::StrCat(dir, "/", file);
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string DefaultProfileFile(const char* xdg_config_home, const char* home) {
  if (xdg_config_home != nullptr && xdg_config_home[0] == '/') {
    return absl::StrCat(xdg_config_home, "/clavis/clavisctl.json");
  }
  if (home != nullptr && home[0] != '\0') {
    return absl::StrCat(home, "/.config/clavis/clavisctl.json");
  }
  return "";
}

absl::StatusOr<ClavisctlProfiles> ParseProfiles(absl::string_view json, absl::string_view path) {
  // A syntax check first, for the line and column protobuf's parser does
  // not give.
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json.begin(), json.end());
  } catch (const nlohmann::json::parse_error& e) {
    return ProfileError(path, absl::StrCat("invalid JSON: ", JsonSyntaxProblem(e)));
  }
  if (absl::Status s = ParseEachProfile(root, path); !s.ok()) return s;

  ClavisctlProfiles profiles;
  // protobuf's own Status type (3.21), not absl's.
  const auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json), &profiles);
  if (!parsed.ok()) return ProfileError(path, parsed.message().ToString());
  for (const auto& [name, profile] : profiles.profiles()) {
    if (profile.timeout().empty()) continue;
    std::string timeout = profile.timeout();
    const std::string problem = TimeoutCheck()(timeout);
    if (!problem.empty()) {
      return ProfileError(path, absl::StrCat("profiles.", absl::CHexEscape(name), ".timeout \"",
                                             absl::CHexEscape(profile.timeout()), "\": ", problem));
    }
  }
  return profiles;
}

absl::StatusOr<ClavisctlProfiles> ReadProfileFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const std::string problem = absl::StrCat("cannot open: ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(absl::StrCat(Where(path), ": ", problem));
    return ProfileError(path, problem);
  }
  // The checks are on the opened file, so a swap after them changes nothing.
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return ProfileError(path, absl::StrCat("cannot stat: ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return ProfileError(path, "is not a regular file");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    // It says which certificate, key and token clavisctl sends: whoever can
    // write it can point clavisctl at their own server or credentials.
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return ProfileError(
        path, absl::StrCat("is writable by ", (st.st_mode & S_IWOTH) != 0 ? "others" : "its group",
                           " (mode ", mode,
                           "); it names credential files, so clavisctl refuses it: chmod go-w it"));
  }
  if (static_cast<unsigned long long>(st.st_size) > kMaxProfileFileBytes) {
    return ProfileError(path, absl::StrCat("is larger than ", kMaxProfileFileBytes, " bytes"));
  }
  std::string contents;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ProfileError(path, absl::StrCat("cannot read: ", std::strerror(errno)));
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
    // st_size can be stale (a file still being written).
    if (contents.size() > kMaxProfileFileBytes) {
      return ProfileError(path, absl::StrCat("is larger than ", kMaxProfileFileBytes, " bytes"));
    }
  }
  return ParseProfiles(contents, path);
}

absl::StatusOr<std::optional<SelectedProfile>> SelectProfile(const ClavisctlProfiles& profiles,
                                                             const std::string& name,
                                                             const std::string& path) {
  std::string chosen = name;
  absl::string_view how = "--profile";
  if (chosen.empty()) {
    chosen = profiles.default_profile();
    how = "defaultProfile";
  }
  if (chosen.empty()) return std::optional<SelectedProfile>();
  auto it = profiles.profiles().find(chosen);
  if (it == profiles.profiles().end()) {
    std::vector<std::string> known;
    for (const auto& entry : profiles.profiles()) known.push_back(absl::CHexEscape(entry.first));
    std::sort(known.begin(), known.end());
    return ProfileError(path, absl::StrCat("has no profile \"", absl::CHexEscape(chosen), "\" (",
                                           how, "); known profiles: ",
                                           known.empty() ? "none" : absl::StrJoin(known, ", ")));
  }
  SelectedProfile selected;
  selected.name = chosen;
  selected.profile = it->second;
  const std::string dir = DirectoryOf(path);
  Profile& p = selected.profile;
  p.set_ca_cert(Resolve(p.ca_cert(), dir));
  p.set_cert(Resolve(p.cert(), dir));
  p.set_key(Resolve(p.key(), dir));
  p.set_token_file(Resolve(p.token_file(), dir));
  return std::optional<SelectedProfile>(std::move(selected));
}

}  // namespace clavis::clavisctl
