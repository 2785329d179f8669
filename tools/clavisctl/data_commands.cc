#include "tools/clavisctl/data_commands.h"

#include <map>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/input.h"
#include "tools/clavisctl/json_output.h"
#include "tools/clavisctl/table.h"
#include "tools/clavisctl/wipe.h"

namespace clavis::clavisctl {
namespace {

using clavis::v1::KeyManagement;

// Prints `message` as JSON and wipes the JSON text, which holds the
// plaintext in base64.
absl::Status PrintSecretJson(Session& session, const google::protobuf::Message& message) {
  absl::StatusOr<std::string> json = ToJson(message);
  if (!json.ok()) return json.status();
  session.out() << *json;
  WipeString(&*json);
  return absl::OkStatus();
}

}  // namespace

absl::Status GenerateDataKey(Session& session, const DataKeyArgs& args) {
  clavis::v1::GenerateDataKeyRequest request;
  request.set_key(args.key);
  request.set_segment(args.segment);
  if (absl::Status s = ParseContext(args.context, request.mutable_encryption_context()); !s.ok()) {
    return s;
  }
  absl::StatusOr<clavis::v1::GenerateDataKeyResponse> response =
      session.Call(session.data(), &KeyManagement::StubInterface::GenerateDataKey, request);
  if (!response.ok()) return response.status();

  absl::Status status;
  if (session.json()) {
    status = PrintSecretJson(session, *response);
  } else {
    // Written field by field rather than through FormatTable, which would
    // leave unwiped copies of the key in its cell buffers.
    std::string plaintext = absl::Base64Escape(response->plaintext());
    session.out() << "plaintext_base64        " << plaintext << "\n"
                  << "ciphertext_blob_base64  " << absl::Base64Escape(response->ciphertext_blob())
                  << "\n"
                  << "key_version             " << TerminalSafe(response->key_version()) << "\n"
                  << "segment_key_version     " << response->segment_key_version() << "\n";
    WipeString(&plaintext);
  }
  WipeString(response->mutable_plaintext());
  return status;
}

absl::Status Encrypt(Session& session, const EncryptArgs& args) {
  clavis::v1::EncryptRequest request;
  request.set_key(args.key);
  request.set_segment(args.segment);
  if (absl::Status s = ParseContext(args.context, request.mutable_encryption_context()); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> plaintext = ReadInput(session, args.plaintext_file, "the plaintext");
  if (!plaintext.ok()) return plaintext.status();
  request.set_plaintext(*plaintext);
  WipeString(&*plaintext);

  absl::StatusOr<clavis::v1::EncryptResponse> response =
      session.Call(session.data(), &KeyManagement::StubInterface::Encrypt, request);
  WipeString(request.mutable_plaintext());
  if (!response.ok()) return response.status();
  // One base64 line, so `blob=$(clavisctl encrypt ...)` just works.
  return session.Print(*response,
                       absl::StrCat(absl::Base64Escape(response->ciphertext_blob()), "\n"));
}

absl::Status Decrypt(Session& session, const DecryptArgs& args) {
  clavis::v1::DecryptRequest request;
  if (args.blob_base64.empty() == args.blob_file.empty()) {
    return UsageError("give the blob with exactly one of --blob-base64 or --blob-file");
  }
  if (!args.blob_base64.empty()) {
    absl::StatusOr<std::string> blob = AsUsage(DecodeBase64(args.blob_base64, "--blob-base64"));
    if (!blob.ok()) return blob.status();
    request.set_ciphertext_blob(*std::move(blob));
  } else {
    absl::StatusOr<std::string> contents = ReadInput(session, args.blob_file, "the blob");
    if (!contents.ok()) return contents.status();
    absl::StatusOr<std::string> blob = AsUsage(DecodeBlobFile(*contents));
    if (!blob.ok()) return blob.status();
    request.set_ciphertext_blob(*std::move(blob));
  }
  if (absl::Status s = ParseContext(args.context, request.mutable_encryption_context()); !s.ok()) {
    return s;
  }
  request.set_key(args.expected_key);

  absl::StatusOr<clavis::v1::DecryptResponse> response =
      session.Call(session.data(), &KeyManagement::StubInterface::Decrypt, request);
  if (!response.ok()) return response.status();

  absl::Status status;
  if (session.json()) {
    status = PrintSecretJson(session, *response);
  } else if (args.base64) {
    std::string encoded = absl::Base64Escape(response->plaintext());
    session.out() << encoded << "\n";
    WipeString(&encoded);
  } else {
    session.out().write(response->plaintext().data(),
                        static_cast<std::streamsize>(response->plaintext().size()));
  }
  WipeString(response->mutable_plaintext());
  return status;
}

void RegisterDataCommands(CommandRegistry& registry) {
  {
    auto args = std::make_shared<DataKeyArgs>();
    CLI::App* c = registry.AddCommand(
        registry.root(), "datakey",
        "Generate a data key: prints the plaintext key and its ciphertext blob (base64)",
        {"clavisctl datakey tenants/acme/keys/main --segment acme/orders/2026-11 "
         "--context table=orders"},
        [args](Session& s) { return GenerateDataKey(s, *args); });
    AddNameArg(c, &args->key, "tenants/T/keys/K", "The master key");
    c->add_option("--segment", args->segment, "The segment label, e.g. acme/orders/2026-11")
        ->required();
    c->add_option("--context", args->context,
                  "Encryption context entry, bound to the key; repeat for more")
        ->type_name("KEY=VALUE")
        ->check(KeyValueCheck());
  }
  {
    auto args = std::make_shared<EncryptArgs>();
    CLI::App* c = registry.AddCommand(
        registry.root(), "encrypt",
        "Encrypt a small payload (at most 4 KiB) from a file or stdin; prints the blob (base64)",
        {"echo -n secret | clavisctl encrypt tenants/acme/keys/main --segment acme/orders "
         "--context table=orders > blob.b64"},
        [args](Session& s) { return Encrypt(s, *args); });
    AddNameArg(c, &args->key, "tenants/T/keys/K", "The master key");
    c->add_option("--segment", args->segment, "The segment label")->required();
    c->add_option("--context", args->context, "Encryption context entry; repeat for more")
        ->type_name("KEY=VALUE")
        ->check(KeyValueCheck());
    c->add_option("--plaintext-file", args->plaintext_file,
                  "Read the plaintext from this file (default: stdin)")
        ->type_name("FILE");
  }
  {
    auto args = std::make_shared<DecryptArgs>();
    CLI::App* c = registry.AddCommand(
        registry.root(), "decrypt",
        "Decrypt a ciphertext blob (an encrypt result or a wrapped data key); prints the "
        "plaintext as raw bytes (or base64 with --base64)",
        {"clavisctl decrypt --blob-file blob.b64 --context table=orders",
         "clavisctl decrypt --blob-base64 AQEE... --context table=orders --base64"},
        [args](Session& s) { return Decrypt(s, *args); });
    c->add_option("--context", args->context,
                  "Encryption context entry, the same as at encryption; repeat for more")
        ->type_name("KEY=VALUE")
        ->check(KeyValueCheck());
    CLI::Option* b64 =
        c->add_option("--blob-base64", args->blob_base64, "The blob, base64")->type_name("BASE64");
    CLI::Option* file = c->add_option("--blob-file", args->blob_file,
                                      "Read the blob from this file (base64 text or raw; - "
                                      "for stdin)")
                            ->type_name("FILE");
    b64->excludes(file);
    c->add_option("--key", args->expected_key,
                  "Refuse the blob unless it belongs to this key (tenants/T/keys/K)");
    c->add_flag("--base64", args->base64, "Print the plaintext base64 instead of raw bytes");
  }
}

}  // namespace clavis::clavisctl
