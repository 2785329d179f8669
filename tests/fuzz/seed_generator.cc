// Writes the seed corpora of the fuzz targets: a handful of small valid
// inputs each, made with the production encoders and the fixture keys of
// fuzz_fixtures.h (so seeds open under the targets' keys), plus the JSON
// examples of the docs and deploy/.
//
//   build-fuzz/tests/fuzz/fuzz_seed_generator <repo root> <corpus dir>
//
// Re-run after a format change; tests/fuzz/README.md. Seeds that hold
// random bytes (nonces, salts) differ from run to run; that is fine.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/src/sealed_record.h"
#include "client/src/stream_format.h"
#include "crypto/encoding.h"
#include "crypto/key_wrap.h"
#include "crypto/rsa_oaep.h"
#include "kms/audit/audit_log.h"
#include "kms/auth/service_token.h"
#include "kms/escrow/escrow_bundle.h"
#include "kms/root/passphrase_provider.h"
#include "spdlog/spdlog.h"
#include "tests/fuzz/fuzz_domain.h"
#include "tests/fuzz/fuzz_fixtures.h"
#include "tests/fuzz/fuzz_import_key.h"
#include "tests/fuzz/rpc_admin_methods.h"

namespace clavis::fuzz {
namespace {

namespace v1 = clavis::v1;

std::string repo_root;
std::string corpus_root;

template <typename T>
T Must(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) {
    std::fprintf(stderr, "seed generator: %s: %s\n", what, value.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(value);
}

void Write(const std::string& target, const std::string& name, absl::string_view bytes) {
  const std::string dir = corpus_root + "/" + target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) std::exit(1);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The ```json blocks of a Markdown document.
std::vector<std::string> JsonBlocks(const std::string& markdown_path) {
  std::vector<std::string> blocks;
  std::string current;
  bool in_block = false;
  for (absl::string_view line : absl::StrSplit(ReadFile(markdown_path), '\n')) {
    if (!in_block && absl::StartsWith(line, "```json")) {
      in_block = true;
      current.clear();
    } else if (in_block && absl::StartsWith(line, "```")) {
      in_block = false;
      blocks.push_back(current);
    } else if (in_block) {
      absl::StrAppend(&current, line, "\n");
    }
  }
  return blocks;
}

std::string TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "clavis-seeds-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) std::exit(1);
  return tmpl;
}

void CiphertextBlobs() {
  FuzzDomain domain;
  int n = 0;
  for (const char* segment : {"acme/orders", "acme/contacts/2026-11"}) {
    auto name = Must(kms::ParseSegmentName(absl::StrCat(kKeyName, "/segments/", segment)), "name");
    auto key = Must(domain.envelope->GenerateDataKey(name, FixtureContext()), "data key");
    Write("ciphertext_blob", absl::StrCat("data_key_", n++), key.ciphertext_blob);
    auto encrypted =
        Must(domain.envelope->Encrypt(name, crypto::SecretBytes::CopyOf("secret"), {}), "encrypt");
    Write("ciphertext_blob", absl::StrCat("encrypt_", n++), encrypted.ciphertext_blob);
  }
  Write("ciphertext_blob", "truncated",
        std::string("\x01\x01\x04"
                    "acme",
                    7));
}

void SealedRecords() {
  const std::string context = crypto::CanonicalEncryptionContext(FixtureContext());
  client_internal::SealedRecordFields fields{kFixtureKey, kFixtureSegment, kFixtureDataKeyBlob};
  auto material = Must(
      client_internal::RecordKeyMaterial::New(FixtureDataKey(), fields, context, FixtureSalt()),
      "material");
  Write("sealed_record", "with_ad", Must(material->Seal("hello", "ad"), "seal"));
  Write("sealed_record", "empty", Must(material->Seal("", ""), "seal"));
  Write("sealed_record", "fresh_salt",
        Must(client_internal::SealRecord(FixtureDataKey(), fields, "a record", context), "seal"));
}

void Streams() {
  const std::string context = crypto::CanonicalEncryptionContext(FixtureContext());
  client_internal::StreamHeaderFields fields{kFixtureKey, kFixtureSegment, kFixtureDataKeyBlob,
                                             client_internal::kStreamMinChunkSize};
  for (size_t size : {size_t{0}, size_t{100}, size_t{client_internal::kStreamMinChunkSize + 10}}) {
    auto cipher =
        Must(client_internal::StreamChunkCipher::ForWriting(FixtureDataKey(), fields, context),
             "stream");
    std::string stream(cipher->header());
    const std::string plaintext(size, 'x');
    uint64_t index = 0;
    size_t at = 0;
    while (plaintext.size() - at > fields.chunk_size) {
      stream +=
          Must(cipher->SealChunk(index++, plaintext.substr(at, fields.chunk_size), false), "chunk");
      at += fields.chunk_size;
    }
    stream += Must(cipher->SealChunk(index, plaintext.substr(at), true), "chunk");
    Write("stream_format", absl::StrCat("stream_", size), stream);
  }
}

void AuditLogs() {
  const std::string dir = TempDir();
  kms::AuditLogOptions options;
  options.dir = dir;
  options.signing_seed = FixtureSigningSeed();
  options.context_key = FixtureContextKey();
  options.checkpoint_every_records = 3;
  auto log = Must(kms::AuditLog::Open(std::move(options)), "audit log");
  kms::AuditRecord call;
  call.request_id = "req-1";
  call.principal = "tenants/acme/principals/billing-app";
  call.peer = "ipv4:10.0.0.7:51234";
  call.action = "Decrypt";
  call.resource = kKeyName;
  call.segment = "acme/orders";
  call.context_hash = std::string(32, 'h');
  for (int i = 0; i < 4; ++i) Must(log->Append(call), "append");
  kms::AuditRecord alert;
  alert.kind = kms::AuditRecordKind::kAlert;
  alert.principal = call.principal;
  alert.action = "LockedOut";
  alert.result_code = absl::StatusCode::kPermissionDenied;
  alert.message = "repeated authentication failures";
  Must(log->Append(alert), "append");
  if (!log->Sync().ok()) std::exit(1);
  Write("audit_record", "open_log", ReadFile(dir + "/audit-000001.log"));
  if (!log->Close().ok()) std::exit(1);
  Write("audit_record", "closed_log", ReadFile(dir + "/audit-000001.log"));
  std::filesystem::remove_all(dir);
}

void EscrowBundles() {
  kms::EscrowHeader header;
  header.key = kms::KeyName{"acme", "byok"};
  header.create_time = absl::FromUnixSeconds(kFixtureNow);
  header.key_versions = {{1, "0011223344556677"}, {2, "8899aabbccddeeff"}};
  kms::EscrowSegment a{
      "acme/contacts", "ENABLED", {{1, 1, std::string(60, 'a')}, {2, 2, std::string(60, 'b')}}};
  kms::EscrowSegment b{"acme/orders", "DISABLED", {{1, 2, std::string(60, 'c')}}};
  Write("escrow_bundle", "two_segments",
        kms::EncodeEscrowHeader(header) + kms::EncodeEscrowSegment(a) +
            kms::EncodeEscrowSegment(b) + kms::EncodeEscrowTrailer(2));
  Write("escrow_bundle", "no_segments",
        kms::EncodeEscrowHeader(header) + kms::EncodeEscrowTrailer(0));
}

void Policies() {
  int n = 0;
  for (const std::string& block : JsonBlocks(repo_root + "/docs/POLICY.md")) {
    Write("policy", absl::StrCat("policy_md_", n++), block);
  }
}

void ServerConfigs() {
  int n = 0;
  for (const std::string& block : JsonBlocks(repo_root + "/docs/clavisd.md")) {
    Write("server_config", absl::StrCat("clavisd_md_", n++), block);
  }
  Write("server_config", "deploy_clavisd", ReadFile(repo_root + "/deploy/config/clavisd.json"));
  Write("server_config", "dev",
        R"({"insecure_dev_no_auth": true, "listen_address": "127.0.0.1:7370"})");
}

void ImportPayloads() {
  auto key =
      Must(crypto::RsaOaepPrivateKey::FromPem(crypto::SecretBytes::CopyOf(kFixtureImportKeyPem)),
           "import key");
  const std::string der = Must(key->PublicKeyDer(), "public key");
  const crypto::SecretBytes material = crypto::SecretBytes::CopyOf(std::string(32, 'M'));
  Write("key_import", "oaep",
        std::string(1, '\0') + Must(crypto::RsaOaepEncrypt(der, material), "oaep"));
  const crypto::SecretBytes aes = crypto::SecretBytes::CopyOf(std::string(32, 'A'));
  Write("key_import", "rsa_aes",
        std::string(1, '\1') + Must(crypto::RsaOaepEncrypt(der, aes), "oaep") +
            Must(crypto::AesKeyWrapPad(aes, material), "kwp"));
  Write("key_import", "name", std::string(1, '\0') + "RSA_AES_KEY_WRAP_SHA_256");
}

void RootFiles() {
  Write("root_files", "key_file",
        absl::StrCat(std::string(1, '\0'), "clavis-root-key v1\n",
                     crypto::Base64Encode(std::string(32, 'R')), "\n"));
  const std::string dir = TempDir();
  kms::PassphraseRootKeyOptions options;
  options.create_if_missing = true;
  options.new_file_params.ops_limit = 1;
  options.new_file_params.mem_limit_bytes = 8 << 10;  // libsodium's minimum: fast to fuzz
  const std::string path = dir + "/root-passphrase.params";
  Must(kms::PassphraseRootKeyProvider::Open(path, crypto::SecretBytes::CopyOf("fuzz passphrase"),
                                            options),
       "params file");
  Write("root_files", "params_file", std::string(1, '\1') + ReadFile(path));
  std::filesystem::remove_all(dir);
}

void ServiceTokens() {
  kms::auth::TokenClaims claims;
  claims.issuer_key_id = std::string(kFixtureIssuerKeyId);
  claims.principal = "tenants/acme/principals/billing-app";
  claims.audience = std::string(kFixtureAudience);
  claims.issued_at = absl::FromUnixSeconds(kFixtureNow - 60);
  claims.expires_at = absl::FromUnixSeconds(kFixtureNow + 3600);
  claims.token_id = "t-1";
  Write("service_token", "valid",
        Must(kms::auth::SignServiceToken(claims, FixtureSigningSeed()), "token"));
  claims.groups = {"tenants/acme/groups/billing", "tenants/acme/groups/etl"};
  claims.token_id = "t-2";
  Write("service_token", "groups",
        Must(kms::auth::SignServiceToken(claims, FixtureSigningSeed()), "token"));
  claims.expires_at = absl::FromUnixSeconds(kFixtureNow - 10);
  claims.issued_at = absl::FromUnixSeconds(kFixtureNow - 100);
  claims.token_id = "t-3";
  Write("service_token", "expired",
        Must(kms::auth::SignServiceToken(claims, FixtureSigningSeed()), "token"));
}

template <typename M>
std::string Bytes(const M& message) {
  return message.SerializeAsString();
}

void KeyManagementSessions() {
  const std::map<std::string, std::string> context = {{"customer", "42"}};
  v1::GenerateDataKeyRequest generate;
  generate.set_key(kKeyName);
  generate.set_segment("acme/orders/2026-11");
  generate.mutable_encryption_context()->insert(context.begin(), context.end());
  v1::DecryptRequest decrypt;  // empty blob: the fuzzer substitutes the last one
  decrypt.mutable_encryption_context()->insert(context.begin(), context.end());
  v1::EncryptRequest encrypt;
  encrypt.set_key(kKeyName);
  encrypt.set_segment("acme/contacts");
  encrypt.set_plaintext("jane@example.com");
  v1::ReEncryptRequest reencrypt;
  reencrypt.set_change_context(true);
  (*reencrypt.mutable_new_encryption_context())["customer"] = "43";
  v1::DecryptRequest decrypt_new;
  (*decrypt_new.mutable_encryption_context())["customer"] = "43";
  v1::BatchGenerateDataKeyRequest batch_generate;
  *batch_generate.add_requests() = generate;
  *batch_generate.add_requests() = generate;
  batch_generate.mutable_requests(1)->set_segment("acme/orders/2026-12");
  v1::BatchDecryptRequest batch_decrypt;
  *batch_decrypt.add_requests() = decrypt;
  *batch_decrypt.add_requests() = decrypt;
  v1::DeriveBlindIndexKeyRequest blind;
  blind.set_key(kKeyName);
  blind.set_segment("acme/customers");
  blind.set_index("email");

  Write("rpc_key_management", "generate_decrypt",
        Frame(0, Bytes(generate)) + Frame(2, Bytes(decrypt)));
  Write("rpc_key_management", "encrypt_reencrypt_decrypt",
        Frame(5, Bytes(encrypt)) + Frame(4, Bytes(reencrypt)) + Frame(2, Bytes(decrypt_new)));
  Write("rpc_key_management", "batches",
        Frame(1, Bytes(batch_generate)) + Frame(3, Bytes(batch_decrypt)));
  Write("rpc_key_management", "blind_index", Frame(6, Bytes(blind)));
}

void KeyAdminSessions() {
  auto frame = [](const char* rpc, const google::protobuf::Message& m) {
    return Frame(AdminRpcTag(rpc), m.SerializeAsString());
  };
  v1::CreateKeyRequest create;
  create.set_parent("tenants/acme");
  create.set_key_id("payroll");
  create.set_description("fuzz");
  (*create.mutable_labels())["team"] = "hr";
  create.mutable_rotation_period()->set_seconds(90 * 86400);
  v1::GetKeyRequest get;
  get.set_name("tenants/acme/keys/payroll");
  v1::ListKeysRequest list;
  list.set_parent("tenants/acme");
  v1::RotateKeyRequest rotate;
  rotate.set_name(kKeyName);
  v1::KeyNameRequest name;
  name.set_name(kKeyName);
  v1::ScheduleDestructionRequest destroy;
  destroy.set_name(kKeyName);
  destroy.mutable_pending_window()->set_seconds(7 * 86400);
  v1::SegmentRequest segment;
  segment.set_name(std::string(kKeyName) + "/segments/acme/orders");
  v1::KeyVersionRequest version;
  version.set_name(std::string(kKeyName) + "/versions/1");
  v1::SetKeyPolicyRequest policy;
  policy.set_key(kKeyName);
  auto policies = JsonBlocks(repo_root + "/docs/POLICY.md");
  policy.set_policy(policies.empty() ? "{}" : policies.front());
  v1::GetKeyPolicyRequest get_policy;
  get_policy.set_key(kKeyName);
  v1::WhoAmIRequest whoami;
  v1::ListSegmentsRequest list_segments;
  list_segments.set_parent(kKeyName);

  Write("rpc_key_admin", "create_get_list",
        frame("CreateKey", create) + frame("GetKey", get) + frame("ListKeys", list));
  Write("rpc_key_admin", "rotate_disable_enable",
        frame("RotateKey", rotate) + frame("DisableKey", name) + frame("EnableKey", name) +
            frame("GetKeyVersionUsage", name));
  Write("rpc_key_admin", "destroy_cancel",
        frame("ScheduleKeyDestruction", destroy) + frame("CancelKeyDestruction", name));
  Write("rpc_key_admin", "segments",
        frame("CreateSegment", segment) + frame("RotateSegment", segment) +
            frame("RevokeSegment", segment) + frame("EnableSegment", segment) +
            frame("ListSegments", list_segments));
  Write("rpc_key_admin", "versions",
        frame("RotateKey", rotate) + frame("DisableKeyVersion", version) +
            frame("EnableKeyVersion", version) + frame("MarkKeyVersionCompromised", version));
  Write("rpc_key_admin", "policy",
        frame("ValidateKeyPolicy", policy) + frame("SetKeyPolicy", policy) +
            frame("GetKeyPolicy", get_policy) + frame("WhoAmI", whoami));
}

}  // namespace
}  // namespace clavis::fuzz

int main(int argc, char** argv) {
  using namespace clavis::fuzz;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <repo root> <corpus dir>\n", argv[0]);
    return 2;
  }
  spdlog::set_level(spdlog::level::off);
  repo_root = argv[1];
  corpus_root = argv[2];
  CiphertextBlobs();
  SealedRecords();
  Streams();
  AuditLogs();
  EscrowBundles();
  Policies();
  ServerConfigs();
  ImportPayloads();
  RootFiles();
  ServiceTokens();
  KeyManagementSessions();
  KeyAdminSessions();
  return 0;
}
