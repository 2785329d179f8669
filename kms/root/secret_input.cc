#include "kms/root/secret_input.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clavis::kms {
namespace {

// No passphrase or PIN is anywhere near this long; a file that has no
// newline by then is not such a secret.
constexpr size_t kMaxLine = 64 * 1024;

absl::StatusOr<crypto::SecretBytes> ReadFirstLine(const StartupSecretSource& source) {
  const int fd = ::open(source.file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot read ", source.what, " file ", source.file,
                                            ": ", std::strerror(errno)));
  }
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  // Byte by byte into secure memory: no stdio buffer keeps a copy, and a
  // pipe is read no further than the line.
  crypto::SecretBytes buffer(kMaxLine);
  size_t size = 0;
  while (true) {
    if (size == buffer.size()) {
      return absl::InvalidArgumentError(absl::StrCat(source.what, " file ", source.file,
                                                     " has no line end in its first ", kMaxLine,
                                                     " bytes"));
    }
    const ssize_t n = ::read(fd, buffer.data() + size, 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::NotFoundError(absl::StrCat("cannot read ", source.what, " file ", source.file,
                                              ": ", std::strerror(errno)));
    }
    if (n == 0 || buffer.data()[size] == '\n') break;
    ++size;
  }
  return crypto::SecretBytes::CopyOf(buffer.view().substr(0, size));
}

}  // namespace

absl::StatusOr<crypto::SecretBytes> ReadStartupSecret(const StartupSecretSource& source) {
  if (!source.file.empty()) return ReadFirstLine(source);
  const std::string env = source.env.empty() ? source.default_env : source.env;
  const char* value = std::getenv(env.c_str());
  if (value == nullptr || *value == '\0') {
    return absl::FailedPreconditionError(absl::StrCat(source.needed_by, " needs a ", source.what,
                                                      ": set ", env, " or ", source.file_setting));
  }
  crypto::SecretBytes out = crypto::SecretBytes::CopyOf(absl::string_view(value));
  // Wipe the value in place first: unsetenv alone leaves it in memory (and
  // in /proc/self/environ); then child processes must not inherit it.
  crypto::SecureWipe(const_cast<char*>(value), std::strlen(value));
  ::unsetenv(env.c_str());
  return out;
}

}  // namespace clavis::kms
