#include "kms/root/key_file_provider.h"

#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "kms/root/root_file_util.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {
namespace {

constexpr absl::string_view kWhat = "root key file";
// "clavis-root-key v<version>": the part before the version.
constexpr absl::string_view kMagic = "clavis-root-key v";
// Standard base64 of kRootKeySize bytes, with its one '=' of padding.
constexpr size_t kBase64KeySize = 4 * ((kRootKeySize + 2) / 3);
constexpr size_t kV1FileSize = KeyFileRootKeyProvider::kHeaderV1.size() + 1 + kBase64KeySize + 1;
// Anything larger is certainly not a key file; don't read it all.
constexpr size_t kMaxFileSize = 4096;

// The version token from a header line, shown back to the user only if it
// looks like one (a short alphanumeric word), so no file bytes of unknown
// meaning end up in messages or logs.
std::string PrintableVersion(absl::string_view version) {
  if (version.empty() || version.size() > 8) return "(unreadable)";
  for (char c : version) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return "(unreadable)";
  }
  return absl::StrCat("'v", version, "'");
}

// Parses a whole key file. `contents` is secret; every message names only
// the path and the shape of what is wrong.
absl::StatusOr<crypto::SecretBytes> ParseKeyFile(absl::string_view contents,
                                                 const std::string& path) {
  const size_t header_end = contents.find('\n');
  const absl::string_view header = contents.substr(0, header_end);
  if (header_end == absl::string_view::npos &&
      absl::StartsWith(KeyFileRootKeyProvider::kHeaderV1, header)) {
    return absl::DataLossError(absl::StrCat(kWhat, " ", path, " is truncated (", contents.size(),
                                            " bytes; a v1 file is ", kV1FileSize, ")"));
  }
  if (!absl::StartsWith(header, kMagic)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a Clavis root key file: its first line must be '",
                     KeyFileRootKeyProvider::kHeaderV1, "'"));
  }
  if (absl::EndsWith(header, "\r")) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, " ", path, " has CRLF line endings; lines must end with a single LF"));
  }
  if (header != KeyFileRootKeyProvider::kHeaderV1) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, " ", path, " has unsupported format version ",
        PrintableVersion(header.substr(kMagic.size())), "; this build of Clavis reads v1"));
  }
  if (header_end == absl::string_view::npos) {
    return absl::DataLossError(
        absl::StrCat(kWhat, " ", path, " is truncated: the key line is missing"));
  }
  absl::string_view body = contents.substr(header_end + 1);
  if (body.empty()) {
    return absl::DataLossError(
        absl::StrCat(kWhat, " ", path, " is truncated: the key line is missing"));
  }
  const size_t body_end = body.find('\n');
  if (body_end == absl::string_view::npos) {
    return absl::DataLossError(
        absl::StrCat(kWhat, " ", path, " is truncated: the key line does not end with a newline"));
  }
  if (body_end + 1 != body.size()) {
    return absl::DataLossError(absl::StrCat(kWhat, " ", path, " has ", body.size() - body_end - 1,
                                            " unexpected bytes after the key line"));
  }
  body = body.substr(0, body_end);
  if (body.size() != kBase64KeySize) {
    return absl::DataLossError(absl::StrCat(kWhat, " ", path, " is damaged: the key line is ",
                                            body.size(), " characters, expected ", kBase64KeySize,
                                            " (base64 of ", kRootKeySize, " bytes)"));
  }
  // Decode straight into secure memory. The codec's own message is not
  // passed on: it may describe the offending character.
  absl::StatusOr<crypto::SecretBytes> key = crypto::Base64DecodeSecret(body);
  if (!key.ok()) {
    return absl::DataLossError(
        absl::StrCat(kWhat, " ", path, " is damaged: the key line is not valid base64"));
  }
  if (key->size() != kRootKeySize) {
    return absl::DataLossError(absl::StrCat(kWhat, " ", path, " is damaged: the key is ",
                                            key->size(), " bytes, expected ", kRootKeySize));
  }
  return key;
}

// Makes a fresh key and writes it to `path` (which must not exist yet).
// AlreadyExists if another process created the file first.
absl::Status CreateKeyFile(const std::string& path) {
  const crypto::SecretBytes key = crypto::RandomSecret(kRootKeySize);
  crypto::SecretBytes contents(kV1FileSize);
  {
    std::string encoded = crypto::Base64Encode(key.view());
    if (encoded.size() != kBase64KeySize) {
      crypto::SecureWipe(encoded.data(), encoded.size());
      return absl::InternalError("base64 encoding of the new root key has an unexpected size");
    }
    char* out = reinterpret_cast<char*>(contents.data());
    const absl::string_view header = KeyFileRootKeyProvider::kHeaderV1;
    std::memcpy(out, header.data(), header.size());
    out += header.size();
    *out++ = '\n';
    std::memcpy(out, encoded.data(), encoded.size());
    out += encoded.size();
    *out = '\n';
    // The encoded key sat in ordinary memory; wipe it before it is freed.
    crypto::SecureWipe(encoded.data(), encoded.size());
  }
  if (absl::Status s = root_internal::EnsureParentDirectory(path); !s.ok()) return s;
  return root_internal::WriteNewFileAtomically(path, contents.view(), 0600, kWhat);
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeyFileRootKeyProvider>> KeyFileRootKeyProvider::Open(
    const std::string& path, bool create_if_missing) {
  root_internal::ReadFileOptions options;
  options.require_owner_only = true;
  options.max_size = kMaxFileSize;

  bool created = false;
  absl::StatusOr<crypto::SecretBytes> contents = root_internal::ReadSmallFile(path, options, kWhat);
  if (absl::IsNotFound(contents.status()) && create_if_missing) {
    absl::Status s = CreateKeyFile(path);
    if (s.ok()) {
      created = true;
    } else if (!absl::IsAlreadyExists(s)) {
      return s;
    }
    // Created here, or by a concurrent process a moment ago: either way the
    // key to use is the one now on disk.
    contents = root_internal::ReadSmallFile(path, options, kWhat);
  }
  if (!contents.ok()) return contents.status();

  absl::StatusOr<crypto::SecretBytes> key = ParseKeyFile(contents->view(), path);
  if (!key.ok()) return key.status();
  absl::StatusOr<RootKeyWrapper> wrapper = RootKeyWrapper::New(*std::move(key));
  if (!wrapper.ok()) return wrapper.status();

  if (created) {
    spdlog::warn(
        "*** Created root key file {} (kcv={}). A KEY-FILE ROOT KEY IS FOR DEVELOPMENT ONLY: the "
        "root key is stored in PLAINTEXT on disk, and anyone who can read this file, or any "
        "backup of it, can unwrap every key this Clavis instance holds. Use the passphrase or "
        "PKCS#11 root key provider in production. ***",
        path, wrapper->key_check_value());
  } else {
    spdlog::warn(
        "Using key-file root key {} (kcv={}): development only, the root key is a plaintext "
        "file on disk.",
        path, wrapper->key_check_value());
  }
  return std::unique_ptr<KeyFileRootKeyProvider>(
      new KeyFileRootKeyProvider(path, *std::move(wrapper)));
}

absl::StatusOr<std::string> KeyFileRootKeyProvider::Wrap(const crypto::SecretBytes& plaintext,
                                                         absl::string_view associated_data) {
  return wrapper_.Wrap(plaintext, associated_data);
}

absl::StatusOr<crypto::SecretBytes> KeyFileRootKeyProvider::Unwrap(
    absl::string_view wrapped, absl::string_view associated_data) {
  return wrapper_.Unwrap(wrapped, associated_data);
}

std::string KeyFileRootKeyProvider::Describe() const {
  return absl::StrCat("key-file:", path_, " kcv=", wrapper_.key_check_value());
}

}  // namespace clavis::kms
