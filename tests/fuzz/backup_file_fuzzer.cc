// The backup file (docs/BACKUP.md), read by `clavisd --restore_from` from a
// file that travelled through backup storage: hostile input.
//
// The first byte picks one of two modes:
//  - raw: the rest is a whole backup file for BackupReader. It must not
//    crash, and reports only the documented error codes. (The root key is
//    the process' own, so this mode mostly reaches the header checks.)
//  - altered: the rest is split into entries, which are written as a real
//    backup under the process' root key (so every chunk authenticates), and
//    the file is then altered as the input says: one byte XORed and/or cut
//    short. The reader must return exactly the written entries when nothing
//    was altered, and otherwise never finish successfully; the entries it
//    returns before its error are always a prefix of those written (each
//    chunk is authenticated before its records are used).
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "kms/backup/backup_reader.h"
#include "kms/backup/backup_writer.h"
#include "tests/fuzz/fuzz_domain.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {
namespace {

using Entries = std::vector<std::pair<std::string, std::string>>;

bool ExpectedError(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument ||
         code == absl::StatusCode::kFailedPrecondition || code == absl::StatusCode::kDataLoss;
}

// Reads the whole file; the entries read before an error or the end.
absl::Status ReadAll(const std::string& file, Entries* read) {
  std::istringstream in(file);
  auto reader = kms::BackupReader::Open(&in, FuzzRootKey());
  if (!reader.ok()) return reader.status();
  std::string key, value;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&key, &value);
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
    read->emplace_back(key, value);
    FUZZ_CHECK(read->size() <= 100000);
  }
}

// Entries from the input: a length byte, then that many bytes of key, a
// length byte, then that many bytes of value, until the input runs out.
Entries SplitEntries(absl::string_view in) {
  Entries out;
  size_t i = 0;
  while (i < in.size()) {
    const size_t key_len = static_cast<uint8_t>(in[i++]);
    const std::string key(in.substr(i, key_len));
    i += std::min(key_len, in.size() - i);
    const size_t value_len = i < in.size() ? static_cast<uint8_t>(in[i++]) * 4 : 0;
    const std::string value(in.substr(i, value_len));
    i += std::min(value_len, in.size() - i);
    out.emplace_back(key, value);
  }
  return out;
}

void Altered(absl::string_view in) {
  if (in.size() < 6) return;
  // Where to alter: a position (2 bytes), an XOR mask and a cut (2 bytes).
  const size_t position = (static_cast<uint8_t>(in[0]) << 8) | static_cast<uint8_t>(in[1]);
  const uint8_t mask = static_cast<uint8_t>(in[2]);
  const size_t cut = (static_cast<uint8_t>(in[3]) << 8) | static_cast<uint8_t>(in[4]);
  const Entries written = SplitEntries(in.substr(5));

  std::string file;
  auto writer = kms::BackupWriter::New(FuzzRootKey(), "fuzz", absl::FromUnixSeconds(1800000000),
                                       [&file](absl::string_view bytes) {
                                         file.append(bytes.data(), bytes.size());
                                         return absl::OkStatus();
                                       });
  FUZZ_CHECK(writer.ok());
  for (const auto& [key, value] : written) FUZZ_CHECK((*writer)->Add(key, value).ok());
  FUZZ_CHECK((*writer)->Finish().ok());

  bool altered = false;
  if (mask != 0 && position < file.size()) {
    file[position] = static_cast<char>(file[position] ^ mask);
    altered = true;
  }
  if (cut != 0 && cut < file.size()) {
    file.resize(file.size() - cut);
    altered = true;
  }

  Entries read;
  const absl::Status status = ReadAll(file, &read);
  if (!altered) {
    FUZZ_CHECK(status.ok());
    FUZZ_CHECK(read == written);
    return;
  }
  FUZZ_CHECK(!status.ok());
  FUZZ_CHECK(ExpectedError(status.code()));
  FUZZ_CHECK(read.size() <= written.size());
  for (size_t n = 0; n < read.size(); ++n) FUZZ_CHECK(read[n] == written[n]);
}

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view in = clavis::fuzz::AsView(data + 1, size - 1);
  if (data[0] & 1) {
    clavis::fuzz::Altered(in);
  } else {
    clavis::fuzz::Entries read;
    const absl::Status status = clavis::fuzz::ReadAll(std::string(in), &read);
    FUZZ_CHECK(status.ok() || clavis::fuzz::ExpectedError(status.code()));
  }
  return 0;
}
