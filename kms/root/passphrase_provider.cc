#include "kms/root/passphrase_provider.h"

#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "crypto/encoding.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "kms/root/root_file_util.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {
namespace {

constexpr absl::string_view kWhat = "root passphrase params file";
// "clavis-root-passphrase v<version>": the part before the version.
constexpr absl::string_view kMagic = "clavis-root-passphrase v";
constexpr absl::string_view kKdfArgon2id = "argon2id";
constexpr absl::string_view kChecksumKey = "sha256=";
constexpr size_t kChecksumHexSize = 64;
constexpr size_t kMaxFileSize = 4096;
// Below these a new params file gets a warning: fine for tests, weak for a
// production root key.
constexpr uint64_t kRecommendedOps = 3;
constexpr uint64_t kRecommendedMemBytes = 256ull << 20;
// Above these a params file is refused: the file is only checksummed, not
// authenticated, so someone who can write the data directory could
// otherwise make every start hang in Argon2id or run out of memory.
// libsodium's "sensitive" profile is ops 4, 1 GiB.
constexpr uint64_t kMaxOps = 32;
constexpr uint64_t kMaxMemBytes = 4ull << 30;

struct ParamsFile {
  std::string salt;
  crypto::Argon2idParams params;
  std::string kcv;
};

std::string FormatMemory(uint64_t bytes) {
  if (bytes % (1ull << 20) == 0) return absl::StrCat(bytes >> 20, "MiB");
  if (bytes % (1ull << 10) == 0) return absl::StrCat(bytes >> 10, "KiB");
  return absl::StrCat(bytes, "B");
}

std::string FormatParams(const crypto::Argon2idParams& params) {
  return absl::StrCat("argon2id(ops=", params.ops_limit,
                      ",mem=", FormatMemory(params.mem_limit_bytes), ")");
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A canonical unsigned decimal: digits only, no sign, no leading zero, no
// whitespace (absl::SimpleAtoi alone would accept some of those).
bool ParseCanonicalUint64(absl::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(s, out);
}

std::string PrintableVersion(absl::string_view version) {
  if (version.empty() || version.size() > 8) return "(unreadable)";
  for (char c : version) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return "(unreadable)";
  }
  return absl::StrCat("'v", version, "'");
}

std::string Serialize(const ParamsFile& file) {
  std::string body = absl::StrCat(
      PassphraseRootKeyProvider::kHeaderV1, "\n", "kdf=", kKdfArgon2id, "\n",
      "salt=", crypto::Base64Encode(file.salt), "\n", "ops_limit=", file.params.ops_limit, "\n",
      "mem_limit_bytes=", file.params.mem_limit_bytes, "\n", "kcv=", file.kcv, "\n");
  return absl::StrCat(body, kChecksumKey, crypto::HexEncode(crypto::Sha256(body)), "\n");
}

absl::Status Damaged(const std::string& path, absl::string_view why) {
  return absl::DataLossError(
      absl::StrCat(kWhat, " ", path, " is damaged: ", why, "; restore it from backup"));
}

// Parses and checks a whole params file. Its contents are not secret, but
// messages still quote nothing from the file except a well-formed version.
absl::StatusOr<ParamsFile> Parse(absl::string_view contents, const std::string& path) {
  const size_t header_end = contents.find('\n');
  const absl::string_view header = contents.substr(0, header_end);
  if (header_end == absl::string_view::npos &&
      absl::StartsWith(PassphraseRootKeyProvider::kHeaderV1, header)) {
    return Damaged(path, "it is truncated");
  }
  if (!absl::StartsWith(header, kMagic)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a Clavis root passphrase params file: its first line must be '",
                     PassphraseRootKeyProvider::kHeaderV1, "'"));
  }
  if (absl::EndsWith(header, "\r")) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, " ", path, " has CRLF line endings; lines must end with a single LF"));
  }
  if (header != PassphraseRootKeyProvider::kHeaderV1) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, " ", path, " has unsupported format version ",
        PrintableVersion(header.substr(kMagic.size())), "; this build of Clavis reads v1"));
  }

  // The checksum line comes last and covers every byte before it.
  if (!absl::EndsWith(contents, "\n")) return Damaged(path, "it is truncated");
  const absl::string_view without_final_newline = contents.substr(0, contents.size() - 1);
  const size_t last_line_start = without_final_newline.rfind('\n') + 1;  // > 0: header has '\n'
  const absl::string_view body = contents.substr(0, last_line_start);
  absl::string_view checksum = without_final_newline.substr(last_line_start);
  if (!absl::ConsumePrefix(&checksum, kChecksumKey) || checksum.size() != kChecksumHexSize ||
      !IsLowerHex(checksum)) {
    return Damaged(path, "it is truncated or its last line is not the sha256 checksum");
  }
  if (crypto::HexEncode(crypto::Sha256(body)) != checksum) {
    return Damaged(path, "its sha256 checksum does not match its contents");
  }

  // Fields: exactly these keys, in this order, once each.
  static constexpr absl::string_view kKeys[] = {"kdf", "salt", "ops_limit", "mem_limit_bytes",
                                                "kcv"};
  // `body` is the header line, the field lines, each ending in '\n'.
  absl::string_view fields = body.substr(header_end + 1);
  std::vector<absl::string_view> lines;
  if (!fields.empty()) {
    fields.remove_suffix(1);
    lines = absl::StrSplit(fields, '\n');
  }
  if (lines.size() != std::size(kKeys)) {
    return Damaged(path, absl::StrCat("expected ", std::size(kKeys),
                                      " fields after the header, found ", lines.size()));
  }
  absl::string_view values[std::size(kKeys)];
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    if (!absl::ConsumePrefix(&line, kKeys[i]) || !absl::ConsumePrefix(&line, "=")) {
      return Damaged(path, absl::StrCat("line ", i + 2, " should be the '", kKeys[i], "' field"));
    }
    values[i] = line;
  }

  ParamsFile file;
  if (values[0] != kKdfArgon2id) {
    return Damaged(path, "the kdf field must be 'argon2id'");
  }
  absl::StatusOr<std::string> salt = crypto::Base64Decode(values[1]);
  if (!salt.ok() || salt->size() != crypto::Argon2idParams::kSaltSize) {
    return Damaged(path, absl::StrCat("the salt field must be ", crypto::Argon2idParams::kSaltSize,
                                      " bytes in standard base64"));
  }
  file.salt = *std::move(salt);
  if (!ParseCanonicalUint64(values[2], &file.params.ops_limit) || file.params.ops_limit == 0 ||
      file.params.ops_limit > kMaxOps) {
    return Damaged(
        path, absl::StrCat("the ops_limit field must be a decimal integer from 1 to ", kMaxOps));
  }
  if (!ParseCanonicalUint64(values[3], &file.params.mem_limit_bytes) ||
      file.params.mem_limit_bytes == 0 || file.params.mem_limit_bytes > kMaxMemBytes) {
    return Damaged(path, absl::StrCat("the mem_limit_bytes field must be a decimal integer from 1 "
                                      "to ",
                                      kMaxMemBytes, " (4 GiB)"));
  }
  if (values[4].size() != 2 * kKeyCheckValueBytes || !IsLowerHex(values[4])) {
    return Damaged(path, absl::StrCat("the kcv field must be ", 2 * kKeyCheckValueBytes,
                                      " lower-case hex digits"));
  }
  file.kcv = std::string(values[4]);
  // Only the canonical serialisation is accepted, so a file means one thing.
  if (Serialize(file) != contents) {
    return Damaged(path, "it is not in canonical form");
  }
  return file;
}

// Argon2id with the error reworded for the operator.
absl::StatusOr<crypto::SecretBytes> DeriveRootKey(const crypto::SecretBytes& passphrase,
                                                  absl::string_view salt,
                                                  const crypto::Argon2idParams& params,
                                                  const std::string& path) {
  absl::StatusOr<crypto::SecretBytes> key =
      crypto::Argon2id(passphrase, salt, params, kRootKeySize);
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("deriving the root key with ", FormatParams(params), " (from ",
                                     path, ") failed: ", key.status().message()));
  }
  return key;
}

}  // namespace

std::string PassphraseRootKeyProvider::ParamsPathIn(absl::string_view data_dir) {
  if (data_dir.empty()) return std::string(kParamsFileName);
  if (absl::EndsWith(data_dir, "/")) return absl::StrCat(data_dir, kParamsFileName);
  return absl::StrCat(data_dir, "/", kParamsFileName);
}

absl::StatusOr<std::unique_ptr<PassphraseRootKeyProvider>> PassphraseRootKeyProvider::Open(
    const std::string& params_path, const crypto::SecretBytes& passphrase,
    const PassphraseRootKeyOptions& options) {
  if (passphrase.empty()) {
    return absl::InvalidArgumentError("the root passphrase is empty");
  }
  root_internal::ReadFileOptions read_options;
  read_options.max_size = kMaxFileSize;

  absl::StatusOr<crypto::SecretBytes> contents =
      root_internal::ReadSmallFile(params_path, read_options, kWhat);
  if (absl::IsNotFound(contents.status()) && options.create_if_missing) {
    const crypto::Argon2idParams& params = options.new_file_params;
    if (params.ops_limit > kMaxOps || params.mem_limit_bytes > kMaxMemBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("Argon2id cost ", FormatParams(params), " is above the most a ", kWhat,
                       " may hold (ops ", kMaxOps, ", memory 4 GiB)"));
    }
    ParamsFile file;
    file.salt = crypto::RandomBytes(crypto::Argon2idParams::kSaltSize);
    file.params = params;
    absl::StatusOr<crypto::SecretBytes> key =
        DeriveRootKey(passphrase, file.salt, params, params_path);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> kcv = RootKeyCheckValue(*key);
    if (!kcv.ok()) return kcv.status();
    file.kcv = *std::move(kcv);

    absl::Status s = root_internal::EnsureParentDirectory(params_path);
    if (s.ok())
      s = root_internal::WriteNewFileAtomically(params_path, Serialize(file), 0600, kWhat);
    if (s.ok()) {
      absl::StatusOr<RootKeyWrapper> wrapper = RootKeyWrapper::New(*std::move(key));
      if (!wrapper.ok()) return wrapper.status();
      spdlog::warn(
          "Created root passphrase params file {} ({}, kcv={}): the root key is derived from the "
          "passphrase and this file. Back up this file and keep the passphrase safe: losing "
          "either loses every key this Clavis instance holds.",
          params_path, FormatParams(params), wrapper->key_check_value());
      if (params.ops_limit < kRecommendedOps || params.mem_limit_bytes < kRecommendedMemBytes) {
        spdlog::warn(
            "Root passphrase params {} are weaker than the recommended {}; fine for "
            "tests, not for production",
            FormatParams(params), FormatParams({kRecommendedOps, kRecommendedMemBytes}));
      }
      return std::unique_ptr<PassphraseRootKeyProvider>(
          new PassphraseRootKeyProvider(params_path, params, *std::move(wrapper)));
    }
    if (!absl::IsAlreadyExists(s)) return s;
    // Another process created the file a moment ago: its salt is the one.
    contents = root_internal::ReadSmallFile(params_path, read_options, kWhat);
  }
  if (!contents.ok()) return contents.status();

  absl::StatusOr<ParamsFile> file = Parse(contents->view(), params_path);
  if (!file.ok()) return file.status();
  absl::StatusOr<crypto::SecretBytes> key =
      DeriveRootKey(passphrase, file->salt, file->params, params_path);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> kcv = RootKeyCheckValue(*key);
  if (!kcv.ok()) return kcv.status();
  // Constant time, though the kcv is no secret: it costs nothing and keeps
  // the comparison out of any timing argument.
  if (!crypto::ConstantTimeEquals(*kcv, file->kcv)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "wrong root passphrase: the key it derives does not match the key check value recorded "
        "in ",
        params_path));
  }
  absl::StatusOr<RootKeyWrapper> wrapper = RootKeyWrapper::New(*std::move(key));
  if (!wrapper.ok()) return wrapper.status();
  return std::unique_ptr<PassphraseRootKeyProvider>(
      new PassphraseRootKeyProvider(params_path, file->params, *std::move(wrapper)));
}

absl::StatusOr<std::string> PassphraseRootKeyProvider::Wrap(const crypto::SecretBytes& plaintext,
                                                            absl::string_view associated_data) {
  return wrapper_.Wrap(plaintext, associated_data);
}

absl::StatusOr<crypto::SecretBytes> PassphraseRootKeyProvider::Unwrap(
    absl::string_view wrapped, absl::string_view associated_data) {
  return wrapper_.Unwrap(wrapped, associated_data);
}

std::string PassphraseRootKeyProvider::Describe() const {
  return absl::StrCat("passphrase:", params_path_, " ", FormatParams(params_),
                      " kcv=", wrapper_.key_check_value());
}

}  // namespace clavis::kms
