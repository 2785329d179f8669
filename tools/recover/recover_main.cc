// clavis-recover: decrypt SDK records and clavisd ciphertext blobs offline,
// from an escrow bundle and your own key material (docs/BYOK.md).
//
// Exit codes: 0 done; 1 the input could not be recovered (the message says
// why); 2 wrong usage or unreadable files.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "tools/recover/recover.h"

namespace {

constexpr char kFooter[] = R"(Examples:
  # a record sealed by the SDK with context customer=42
  clavis-recover --bundle escrow.jsonl --material material.bin --context customer=42 \
      --in record.bin --out record.txt
  # key rotated by a new import: give every version's material (matched by key check value)
  clavis-recover --bundle escrow.jsonl --material v1.bin --material v2.bin --kind blob --in blob.bin

No server and no store are needed. docs/BYOK.md, "Leaving with your data".)";

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "clavis-recover: %s\n", message.c_str());
  return code;
}

bool ReadAll(const std::string& path, std::string* out) {
  if (path == "-") {
    out->assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "clavis-recover: decrypt Clavis-protected data offline from an escrow bundle and your own "
      "imported key material"};
  app.footer(kFooter);
  std::string bundle_path, in_path = "-", out_path = "-", kind = "record", aad_path;
  std::vector<std::string> material_paths, context_entries;
  bool base64 = false;
  app.add_option("--bundle", bundle_path, "Escrow bundle (clavisctl escrow export)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--material", material_paths,
                 "Your key material, 32 raw bytes (material.bin of docs/BYOK.md); repeat for each "
                 "version")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--kind", kind, "record (SDK sealed record, default) or blob (clavisd ciphertext)")
      ->check(CLI::IsMember({"record", "blob"}));
  app.add_option("--context", context_entries,
                 "Encryption context entry KEY=VALUE it was sealed with; repeat for more");
  app.add_option("--aad-file", aad_path, "The application's associated data (records only)")
      ->check(CLI::ExistingFile);
  app.add_flag("--base64", base64, "The input is base64 text, not raw bytes");
  app.add_option("--in", in_path, "Input file (default - : stdin)");
  app.add_option("--out", out_path, "Plaintext output (default - : stdout); files get mode 0600");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  clavis::kms::EncryptionContext context;
  for (const std::string& entry : context_entries) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(2, absl::StrCat("--context ", entry, ": expected KEY=VALUE"));
    }
    if (!context.emplace(entry.substr(0, eq), entry.substr(eq + 1)).second) {
      return Fail(2, absl::StrCat("--context: key ", entry.substr(0, eq), " given twice"));
    }
  }
  std::string bundle_text, input, aad;
  if (!ReadAll(bundle_path, &bundle_text)) return Fail(2, "cannot read " + bundle_path);
  if (!ReadAll(in_path, &input)) return Fail(2, "cannot read " + in_path);
  if (!aad_path.empty() && !ReadAll(aad_path, &aad)) return Fail(2, "cannot read " + aad_path);
  if (base64) {
    auto decoded = clavis::crypto::Base64Decode(absl::StripAsciiWhitespace(input));
    if (!decoded.ok())
      return Fail(2, "--in is not base64: " + std::string(decoded.status().message()));
    input = *std::move(decoded);
  }
  std::vector<clavis::crypto::SecretBytes> materials;
  for (const std::string& path : material_paths) {
    std::string raw;
    if (!ReadAll(path, &raw)) return Fail(2, "cannot read " + path);
    materials.push_back(clavis::crypto::SecretBytes::CopyOf(raw));
    clavis::crypto::SecureWipe(raw.data(), raw.size());
  }

  auto bundle = clavis::kms::ParseEscrowBundle(bundle_text);
  if (!bundle.ok()) return Fail(2, std::string(bundle.status().message()));
  auto recovery = clavis::kms::OfflineRecovery::Create(*std::move(bundle), materials);
  if (!recovery.ok()) return Fail(2, std::string(recovery.status().message()));
  auto plaintext = clavis::recover::Recover(
      **recovery,
      kind == "blob" ? clavis::recover::InputKind::kBlob : clavis::recover::InputKind::kRecord,
      input, context, aad);
  if (!plaintext.ok()) return Fail(1, std::string(plaintext.status().message()));

  if (out_path == "-") {
    std::fwrite(plaintext->data(), 1, plaintext->size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : Fail(1, "cannot write the plaintext");
  }
  const mode_t old_mask = ::umask(077);
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  ::umask(old_mask);
  out.write(reinterpret_cast<const char*>(plaintext->data()),
            static_cast<std::streamsize>(plaintext->size()));
  out.close();
  if (!out) return Fail(1, "cannot write " + out_path);
  return 0;
}
