#include "tools/clavisctl/key_import_commands.h"

#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/resource_format.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

using clavis::v1::KeyAdmin;

// How long import-params waits for clavisd to make the RSA wrapping key
// pair, whatever --timeout says (documented in its --help).
constexpr absl::Duration kKeyGenerationTimeout = absl::Seconds(120);

constexpr char kKeyName[] = "tenants/T/keys/K";
constexpr char kWrappingKeyFile[] = "wrapping-key.pem";
constexpr char kImportTokenFile[] = "import-token";

clavis::v1::ImportWrappingAlgorithm AlgorithmOf(const std::string& name) {
  clavis::v1::ImportWrappingAlgorithm out = clavis::v1::IMPORT_WRAPPING_ALGORITHM_UNSPECIFIED;
  clavis::v1::ImportWrappingAlgorithm_Parse(name, &out);
  return out;
}

// Writes `content` to `path` unless it exists (and !force).
absl::Status WriteNewFile(const std::string& path, const std::string& content, bool force) {
  if (!force && std::filesystem::exists(path)) {
    return UsageError(absl::StrCat(path, " exists; remove it or pass --force"));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return UsageError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace

absl::Status GetImportParameters(Session& session, const ImportParamsArgs& args) {
  clavis::v1::GetImportParametersRequest request;
  request.set_name(args.name);
  request.set_wrapping_algorithm(AlgorithmOf(args.algorithm));
  clavis::v1::ImportWrappingKeySpec spec = clavis::v1::IMPORT_WRAPPING_KEY_SPEC_UNSPECIFIED;
  clavis::v1::ImportWrappingKeySpec_Parse(args.wrapping_key_spec, &spec);
  request.set_wrapping_key_spec(spec);
  session.err() << "import-params: clavisd is generating an RSA key pair (a few seconds)...\n";
  // RSA-4096 generation takes 1-4 s on an idle 2-core machine and much
  // longer on a busy one: wait at least kKeyGenerationTimeout.
  absl::StatusOr<clavis::v1::ImportParameters> params =
      session.Call(session.admin(), &KeyAdmin::StubInterface::GetImportParameters, request,
                   kKeyGenerationTimeout);
  if (!params.ok()) return params.status();
  const std::string key_path = (std::filesystem::path(args.out_dir) / kWrappingKeyFile).string();
  const std::string token_path = (std::filesystem::path(args.out_dir) / kImportTokenFile).string();
  if (auto s = WriteNewFile(key_path, params->public_key_pem(), args.force); !s.ok()) return s;
  if (auto s = WriteNewFile(token_path, params->import_token() + "\n", args.force); !s.ok()) {
    return s;
  }
  std::vector<TableRow> rows = {
      {"key", params->name()},
      {"wrapping key",
       absl::StrCat(key_path, " (", ImportWrappingKeySpec_Name(params->wrapping_key_spec()),
                    ", public: give it to whoever wraps the material)")},
      {"import token", token_path},
      {"algorithm", ImportWrappingAlgorithm_Name(params->wrapping_algorithm())},
      {"expires", FormatTimestamp(params->expire_time())},
      {"next",
       absl::StrCat("wrap your material (docs/BYOK.md), then clavisctl key import ", params->name(),
                    " --import-token-file ", token_path, " --wrapped-file wrapped.bin")},
  };
  return session.Print(*params, FormatTable(rows));
}

absl::Status ImportKeyMaterial(Session& session, const ImportArgs& args) {
  if (args.new_version && args.version != 0) {
    return UsageError("--new-version and --version exclude each other");
  }
  absl::StatusOr<std::string> token =
      ReadInput(session, args.import_token_file, "the import token");
  if (!token.ok()) return token.status();
  absl::StatusOr<std::string> wrapped =
      ReadInput(session, args.wrapped_file, "the wrapped material");
  if (!wrapped.ok()) return wrapped.status();
  clavis::v1::ImportKeyMaterialRequest request;
  request.set_name(args.name);
  request.set_import_token(std::string(absl::StripAsciiWhitespace(*token)));
  request.set_wrapping_algorithm(AlgorithmOf(args.algorithm));
  request.set_wrapped_key_material(*std::move(wrapped));
  request.set_new_version(args.new_version);
  request.set_version(args.version);
  if (!args.valid_to.empty()) {
    absl::StatusOr<absl::Time> valid_to = AsUsage(ParseTime(args.valid_to));
    if (!valid_to.ok()) return valid_to.status();
    *request.mutable_valid_to() = ToProtoTimestamp(*valid_to);
  }
  absl::StatusOr<clavis::v1::Key> key =
      session.Call(session.admin(), &KeyAdmin::StubInterface::ImportKeyMaterial, request);
  if (!key.ok()) return key.status();
  return PrintResource(session, *key);
}

void RegisterKeyImportCommands(CommandRegistry& registry, CLI::App& key) {
  const std::vector<std::string> algorithms = {"RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_256"};
  {
    auto args = std::make_shared<ImportParamsArgs>();
    CLI::App* c = registry.AddCommand(
        key, "import-params",
        "BYOK step 1: get a fresh RSA wrapping key (public half) and a single-use import token "
        "for a key of origin EXTERNAL; writes DIR/wrapping-key.pem and DIR/import-token. "
        "clavisd makes the key pair while you wait: this call's deadline is at least 120 s "
        "whatever --timeout says",
        {"clavisctl key import-params tenants/acme/keys/byok --out-dir .",
         "clavisctl key import-params tenants/acme/keys/byok --algorithm RSAES_OAEP_SHA_256 "
         "--wrapping-key-spec RSA_3072"},
        [args](Session& s) { return GetImportParameters(s, *args); });
    AddNameArg(c, &args->name, kKeyName, "The key (origin EXTERNAL)");
    c->add_option("--algorithm", args->algorithm,
                  "How you will wrap the material (default RSA_AES_KEY_WRAP_SHA_256)")
        ->check(CLI::IsMember(algorithms));
    c->add_option("--wrapping-key-spec", args->wrapping_key_spec,
                  "RSA key size of the wrapping key (default RSA_4096)")
        ->check(CLI::IsMember({"RSA_3072", "RSA_4096"}));
    c->add_option("--out-dir", args->out_dir, "Where to write the two files (default .)")
        ->type_name("DIR")
        ->check(CLI::ExistingDirectory);
    c->add_flag("--force", args->force, "Overwrite existing files");
  }
  {
    auto args = std::make_shared<ImportArgs>();
    CLI::App* c = registry.AddCommand(
        key, "import",
        "BYOK step 2: import key material you wrapped with OpenSSL (docs/BYOK.md). The first "
        "import makes version 1; later imports restore a version's own material (e.g. after "
        "it expired) or, with --new-version, add a new primary version",
        {"clavisctl key import tenants/acme/keys/byok --import-token-file import-token "
         "--wrapped-file wrapped.bin",
         "clavisctl key import tenants/acme/keys/byok --import-token-file import-token "
         "--wrapped-file wrapped.bin --valid-to 2027-06-30T00:00:00Z",
         "clavisctl key import tenants/acme/keys/byok --import-token-file import-token "
         "--wrapped-file new-wrapped.bin --new-version"},
        [args](Session& s) { return ImportKeyMaterial(s, *args); });
    AddNameArg(c, &args->name, kKeyName, "The key (origin EXTERNAL)");
    c->add_option("--import-token-file", args->import_token_file,
                  "The import-token file written by key import-params")
        ->required()
        ->type_name("FILE");
    c->add_option("--wrapped-file", args->wrapped_file,
                  "The wrapped material (raw bytes; - reads stdin)")
        ->required()
        ->type_name("FILE");
    c->add_option("--algorithm", args->algorithm,
                  "The algorithm the import token was issued for (default "
                  "RSA_AES_KEY_WRAP_SHA_256)")
        ->check(CLI::IsMember(algorithms));
    c->add_option("--valid-to", args->valid_to,
                  "When the material expires (RFC 3339); then the key refuses every use until "
                  "the same material is imported again. Default: never")
        ->type_name("TIME")
        ->check(TimeCheck());
    c->add_flag("--new-version", args->new_version,
                "Add the material as a new primary version (on-demand rotation)");
    c->add_option("--version", args->version,
                  "Re-import into this version (default: the primary version)")
        ->check(CountCheck());
  }
}

}  // namespace clavis::clavisctl
