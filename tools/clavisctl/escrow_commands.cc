#include "tools/clavisctl/escrow_commands.h"

#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {

absl::Status ExportEscrow(Session& session, const EscrowExportArgs& args) {
  if (!args.force && std::filesystem::exists(args.out)) {
    return UsageError(absl::StrCat(args.out, " exists; remove it or pass --force"));
  }
  clavis::v1::ExportEscrowRequest request;
  request.set_name(args.name);
  request.set_approval(args.approval);
  // Written to a temporary file and renamed at the end, so a failed export
  // never leaves a partial bundle under the expected name.
  const std::string partial = args.out + ".partial";
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  if (!out) return UsageError(absl::StrCat("cannot write ", partial));
  uint64_t bytes = 0, lines = 0;
  absl::Status streamed =
      session.Stream(session.admin(), &clavis::v1::KeyAdmin::StubInterface::ExportEscrow, request,
                     std::function<absl::Status(const clavis::v1::EscrowChunk&)>(
                         [&](const clavis::v1::EscrowChunk& chunk) -> absl::Status {
                           out << chunk.data();
                           if (!out)
                             return absl::UnavailableError(absl::StrCat("cannot write ", partial));
                           bytes += chunk.data().size();
                           for (char c : chunk.data()) lines += c == '\n';
                           if (!session.json()) session.err() << "escrow: " << bytes << " bytes\r";
                           return absl::OkStatus();
                         }));
  out.close();
  if (!streamed.ok()) {
    std::filesystem::remove(partial);
    return streamed;
  }
  std::filesystem::rename(partial, args.out);
  google::protobuf::Struct fields;
  (*fields.mutable_fields())["key"].set_string_value(args.name);
  (*fields.mutable_fields())["file"].set_string_value(args.out);
  (*fields.mutable_fields())["bytes"].set_number_value(static_cast<double>(bytes));
  // Header and end line are not segments.
  (*fields.mutable_fields())["segments"].set_number_value(lines >= 2 ? lines - 2.0 : 0);
  if (!session.json()) session.err() << "\n";
  return session.Print(fields, FormatTable({{"key", args.name},
                                            {"bundle", args.out},
                                            {"segments", absl::StrCat(lines >= 2 ? lines - 2 : 0)},
                                            {"bytes", absl::StrCat(bytes)},
                                            {"next",
                                             "keep it with your key material; "
                                             "clavis-recover decrypts with both"}}));
}

void RegisterEscrowCommands(CommandRegistry& registry) {
  CLI::App* escrow = registry.AddNoun(
      registry.root(), "escrow",
      "Exit without lock-in: every segment key of an imported (BYOK) key, wrapped under your own "
      "material (docs/BYOK.md)",
      {"clavisctl escrow export tenants/acme/keys/byok --out escrow.jsonl"});
  auto args = std::make_shared<EscrowExportArgs>();
  CLI::App* c = registry.AddCommand(
      *escrow, "export",
      "Export the escrow bundle of a key of origin EXTERNAL. Needs M-of-N approval: the first "
      "run creates the request (exit code 4, naming it); once approved, run again with "
      "--approval",
      {"clavisctl escrow export tenants/acme/keys/byok --out escrow.jsonl",
       "clavisctl escrow export tenants/acme/keys/byok --out escrow.jsonl "
       "--approval tenants/acme/approvals/0f3c9a"},
      [args](Session& s) { return ExportEscrow(s, *args); });
  AddNameArg(c, &args->name, "tenants/T/keys/K", "The key (origin EXTERNAL)");
  c->add_option("--out", args->out, "Where to write the bundle (JSON Lines)")
      ->required()
      ->type_name("FILE");
  c->add_option("--approval", args->approval, "The approved request this export uses (once)")
      ->type_name("tenants/T/approvals/ID");
  c->add_flag("--force", args->force, "Overwrite an existing --out file");
}

}  // namespace clavis::clavisctl
