// The root key's files in the data directory (docs/FORMAT.md "Root key file
// (v1)" and "Root passphrase params file (v1)"), read at every start.
//
// Input: one byte choosing the file (low bit: params file, else key file),
// then its contents, written with mode 0600 and opened as clavisd would
// (never created). Open must not crash and must answer with the documented
// codes; a provider it returns must wrap and unwrap.
//
// The params file's sha256 line keeps mutations from reaching Argon2id with
// arbitrary costs (the seeds carry libsodium's minimum cost); the
// passphrase is the one the seed generator used.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "kms/root/key_file_provider.h"
#include "kms/root/passphrase_provider.h"
#include "spdlog/spdlog.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {
namespace {

std::string WriteFile(const std::string& name, absl::string_view contents) {
  const std::string path = ScratchDir() + "/" + name;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    FUZZ_CHECK(out.good());
  }
  FUZZ_CHECK(::chmod(path.c_str(), 0600) == 0);
  return path;
}

void CheckProvider(kms::RootKeyProvider& provider) {
  auto wrapped = provider.Wrap(crypto::SecretBytes::CopyOf("material"), "ad");
  FUZZ_CHECK(wrapped.ok());
  auto unwrapped = provider.Unwrap(*wrapped, "ad");
  FUZZ_CHECK(unwrapped.ok() && unwrapped->view() == "material");
  (void)provider.Describe();
}

bool IsOneOf(absl::StatusCode code, std::initializer_list<absl::StatusCode> codes) {
  for (absl::StatusCode c : codes) {
    if (c == code) return true;
  }
  return false;
}

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // the key file provider warns on every open
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clavis::fuzz;
  using absl::StatusCode;
  if (size == 0) return 0;
  const absl::string_view contents = AsView(data + 1, size - 1);
  if (data[0] & 1) {
    const std::string path = WriteFile("root-passphrase.params", contents);
    clavis::kms::PassphraseRootKeyOptions options;  // create_if_missing = false
    auto provider = clavis::kms::PassphraseRootKeyProvider::Open(
        path, clavis::crypto::SecretBytes::CopyOf("fuzz passphrase"), options);
    if (provider.ok()) {
      CheckProvider(**provider);
    } else {
      FUZZ_CHECK(IsOneOf(provider.status().code(),
                         {StatusCode::kInvalidArgument, StatusCode::kDataLoss,
                          StatusCode::kPermissionDenied, StatusCode::kResourceExhausted}));
    }
  } else {
    const std::string path = WriteFile("root.key", contents);
    auto provider = clavis::kms::KeyFileRootKeyProvider::Open(path, /*create_if_missing=*/false);
    if (provider.ok()) {
      CheckProvider(**provider);
    } else {
      FUZZ_CHECK(
          IsOneOf(provider.status().code(), {StatusCode::kInvalidArgument, StatusCode::kDataLoss}));
    }
  }
  return 0;
}
