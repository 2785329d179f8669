// No secret reaches a log: a real clavisd (passphrase root key, mTLS and
// service tokens, trace logging) and clavisctl go through a full flow with
// secrets whose values the test knows -- the root passphrase (and a wrong
// one), BYOK material, a service token, data keys and blind-index keys
// clavisd returns, a record's plaintext and its encryption context -- plus
// the error paths that handle them. Then every log written (clavisd's
// stderr, RocksDB's LOG files, the audit log, clavisctl's stdout and
// stderr) is searched for each secret raw, in lower- and upper-case hex,
// and in standard and URL-safe base64 at every byte alignment.
//
// The search is itself tested (LeakFinderSelfTest): it finds each encoding
// of a secret planted in a scratch file, so a search that silently matched
// nothing would fail.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "crypto/random.h"
#include "crypto/rsa_oaep.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/run_shell.h"

namespace clavis::testing {
namespace {

using ::testing::Contains;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0600) {
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << content; }
  ::chmod(path.c_str(), mode);
}

// Base64 of `secret` as it would appear inside the base64 of a longer byte
// string where the secret starts at an offset of `shift` (0..2) modulo 3:
// only the characters that depend on the secret's bytes alone, so a match
// is a leak whatever came before or after it.
std::string Base64Core(const std::string& secret, int shift, bool web_safe) {
  const std::string shifted = std::string(shift, '\0') + secret;
  std::string text = web_safe ? absl::WebSafeBase64Escape(shifted) : absl::Base64Escape(shifted);
  while (!text.empty() && text.back() == '=') text.pop_back();
  // The first characters mix in the zero bytes; the last ones mix in what
  // follows the secret (or padding).
  const size_t skip_front = shift == 0 ? 0 : shift + 1;
  if (text.size() < skip_front + 4) return "";
  return text.substr(skip_front, text.size() - skip_front - 3);
}

// Every form of `secret` a log could hold.
std::vector<std::pair<std::string, std::string>> Encodings(const std::string& secret) {
  std::vector<std::pair<std::string, std::string>> out = {
      {"raw", secret},
      {"hex", absl::BytesToHexString(secret)},
      {"HEX", absl::AsciiStrToUpper(absl::BytesToHexString(secret))}};
  for (int shift = 0; shift < 3; ++shift) {
    out.push_back({absl::StrCat("base64+", shift), Base64Core(secret, shift, false)});
    out.push_back({absl::StrCat("base64url+", shift), Base64Core(secret, shift, true)});
  }
  return out;
}

struct Secret {
  std::string name;   // what it is, for the failure message (never its value)
  std::string value;  // long and random enough that a match is no accident
};

// The leaks of `secrets` in `text`, described as "<secret> as <encoding> in
// <where>" (no values).
std::vector<std::string> FindLeaks(const std::vector<Secret>& secrets, const std::string& where,
                                   const std::string& text) {
  std::vector<std::string> leaks;
  for (const Secret& secret : secrets) {
    for (const auto& [encoding, form] : Encodings(secret.value)) {
      if (!form.empty() && absl::StrContains(text, form)) {
        leaks.push_back(absl::StrCat(secret.name, " as ", encoding, " in ", where));
      }
    }
  }
  return leaks;
}

TEST(LeakFinderSelfTest, FindsEveryEncodingOfAPlantedSecret) {
  TempDir dir;
  const Secret secret{"planted", crypto::RandomBytes(32)};
  for (const auto& [encoding, form] : Encodings(secret.value)) {
    ASSERT_GE(form.size(), 16u) << encoding;
    // Planted in the middle of a scratch "log", the way the real search reads logs.
    const std::string path = dir.path() + "/scratch.log";
    WriteFile(path, absl::StrCat("[info] something happened: ", form, " and more\n"));
    // (Standard and URL-safe base64 coincide when neither '+' nor '/' occurs.)
    EXPECT_THAT(FindLeaks({secret}, "scratch", ReadFile(path)),
                Contains(absl::StrCat("planted as ", encoding, " in scratch")));
  }
  // Base64 of a longer value that holds the secret at any offset.
  for (int prefix = 0; prefix < 3; ++prefix) {
    const std::string blob = absl::StrCat(std::string(prefix, 'x'), secret.value, "tail");
    EXPECT_FALSE(FindLeaks({secret}, "scratch", absl::Base64Escape(blob)).empty()) << prefix;
    EXPECT_FALSE(FindLeaks({secret}, "scratch", absl::WebSafeBase64Escape(blob)).empty()) << prefix;
  }
  // And nothing in a log without it.
  EXPECT_TRUE(FindLeaks({secret}, "scratch", "[info] clavisd listening on 127.0.0.1").empty());
}

class SecretLeakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    passphrase_ = {"root passphrase",
                   "leak-test passphrase " + absl::BytesToHexString(crypto::RandomBytes(16))};
    WriteFile(Path("passphrase"), passphrase_.value + "\n");
    ClavisdOptions options(Path("data"));
    options.log_level = "trace";
    options.extra_args = {"--root_key=passphrase", "--passphrase_file=" + Path("passphrase"),
                          "--audit_sync_every_record"};
    clavisd_ = std::make_unique<ClavisdProcess>(options);
  }

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  // A secret the test handles; `value` must be at least 16 bytes.
  void Remember(const std::string& name, const std::string& value) {
    ASSERT_GE(value.size(), 16u) << name;
    secrets_.push_back({name, value});
  }

  // clavisctl -v (every RPC logged) with `args`; its stdout and stderr are
  // kept for the search (so no command whose output is a secret by design,
  // such as decrypt).
  CommandResult Cli(const std::string& credentials, const std::string& args) {
    const std::string err = Path(absl::StrCat("clavisctl-", ++cli_runs_, ".err"));
    CommandResult run = RunShell(absl::StrCat(
        "env -u CLAVIS_ENDPOINT -u CLAVIS_CA_CERT -u CLAVIS_CLIENT_CERT -u CLAVIS_CLIENT_KEY "
        "-u CLAVIS_TOKEN_FILE ",
        CLAVISCTL_BINARY, " -v --endpoint localhost:", clavisd_->port(), " --ca-cert ",
        clavisd_->ca_cert_file(), " ", credentials, " ", args, " 2> ", err));
    logs_.push_back({absl::StrCat("clavisctl ", args, " (stdout)"), run.out});
    logs_.push_back({absl::StrCat("clavisctl ", args, " (stderr)"), ReadFile(err)});
    return run;
  }

  TempDir dir_;
  std::unique_ptr<ClavisdProcess> clavisd_;
  Secret passphrase_;
  std::vector<Secret> secrets_;
  std::vector<std::pair<std::string, std::string>> logs_;  // where, text
  int cli_runs_ = 0;
};

TEST_F(SecretLeakTest, NoKnownSecretAppearsInAnyLog) {
  Remember(passphrase_.name, passphrase_.value);
  ASSERT_TRUE(clavisd_->Start().ok());
  const std::string key = "tenants/acme/keys/leak";
  const std::string app = PrincipalName("acme", "app");

  // ---- BYOK: import material whose bytes the test knows ----
  clavis::v1::CreateKeyRequest create;
  create.set_parent("tenants/acme");
  create.set_key_id("leak");
  create.set_origin(clavis::v1::EXTERNAL);
  // Every right for both: the admin imports, the app uses the key (blind
  // index keys included).
  create.set_policy(TestKeyPolicy(key, {PrincipalName("acme"), app}));
  clavis::v1::Key created;
  ASSERT_TRUE(clavisd_->Admin()->CreateKey(ContextWithDeadline().get(), create, &created).ok());

  const crypto::SecretBytes material = crypto::RandomSecret(32);
  Remember("BYOK material", std::string(material.view()));
  auto import = [&](const std::string& wrapped) {
    clavis::v1::GetImportParametersRequest params_request;
    params_request.set_name(key);
    params_request.set_wrapping_algorithm(clavis::v1::RSAES_OAEP_SHA_256);
    clavis::v1::ImportParameters params;
    EXPECT_TRUE(clavisd_->Admin()
                    ->GetImportParameters(ContextWithDeadline(absl::Seconds(60)).get(),
                                          params_request, &params)
                    .ok());
    clavis::v1::ImportKeyMaterialRequest request;
    request.set_name(key);
    request.set_import_token(params.import_token());
    request.set_wrapping_algorithm(clavis::v1::RSAES_OAEP_SHA_256);
    request.set_wrapped_key_material(
        wrapped.empty() ? *crypto::RsaOaepEncrypt(params.public_key_pem(), material) : wrapped);
    clavis::v1::Key imported;
    return clavisd_->Admin()->ImportKeyMaterial(ContextWithDeadline().get(), request, &imported);
  };
  // Error paths first: the material itself, unwrapped, as if the customer
  // skipped the wrapping step; then garbage of the right size.
  EXPECT_FALSE(import(std::string(material.view())).ok());
  EXPECT_FALSE(import(crypto::RandomBytes(384)).ok());
  grpc::Status imported = import("");
  ASSERT_TRUE(imported.ok()) << imported.error_message();

  // ---- The data plane, with a known context and a known record ----
  const std::string context_value = "ctx-" + absl::BytesToHexString(crypto::RandomBytes(12));
  Remember("encryption context value", context_value);
  auto data = clavisd_->Data(app);
  std::vector<std::string> blobs;
  std::string first_data_key;
  for (int i = 0; i < 3; ++i) {
    clavis::v1::GenerateDataKeyRequest request;
    request.set_key(key);
    request.set_segment("acme/orders/2026-11");
    (*request.mutable_encryption_context())["customer"] = context_value;
    clavis::v1::GenerateDataKeyResponse response;
    grpc::Status s = data->GenerateDataKey(ContextWithDeadline().get(), request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    Remember(absl::StrCat("data key ", i), response.plaintext());
    if (i == 0) first_data_key = response.plaintext();
    blobs.push_back(response.ciphertext_blob());

    clavis::v1::DecryptRequest decrypt;
    decrypt.set_ciphertext_blob(response.ciphertext_blob());
    (*decrypt.mutable_encryption_context())["customer"] = context_value;
    clavis::v1::DecryptResponse plain;
    s = data->Decrypt(ContextWithDeadline().get(), decrypt, &plain);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(plain.plaintext(), response.plaintext());
  }
  const std::string record =
      "jane.doe+" + absl::BytesToHexString(crypto::RandomBytes(12)) + "@example.com";
  Remember("record plaintext", record);
  clavis::v1::EncryptRequest encrypt;
  encrypt.set_key(key);
  encrypt.set_segment("acme/contacts");
  encrypt.set_plaintext(record);
  (*encrypt.mutable_encryption_context())["customer"] = context_value;
  clavis::v1::EncryptResponse sealed;
  ASSERT_TRUE(data->Encrypt(ContextWithDeadline().get(), encrypt, &sealed).ok());

  clavis::v1::DeriveBlindIndexKeyRequest index_request;
  index_request.set_key(key);
  index_request.set_segment("acme/contacts");
  index_request.set_index("email");
  clavis::v1::DeriveBlindIndexKeyResponse index_key;
  grpc::Status derived =
      data->DeriveBlindIndexKey(ContextWithDeadline().get(), index_request, &index_key);
  ASSERT_TRUE(derived.ok()) << derived.error_message();
  Remember("blind index key", index_key.index_key());

  // Bad input around the secrets: a wrong context, a tampered blob, a
  // "blob" that is a data key.
  {
    clavis::v1::DecryptRequest wrong;
    wrong.set_ciphertext_blob(blobs[0]);
    (*wrong.mutable_encryption_context())["customer"] = context_value + "-not";
    clavis::v1::DecryptResponse ignored;
    EXPECT_FALSE(data->Decrypt(ContextWithDeadline().get(), wrong, &ignored).ok());
    std::string tampered = blobs[1];
    tampered[tampered.size() - 5] ^= 0x01;
    wrong.set_ciphertext_blob(tampered);
    (*wrong.mutable_encryption_context())["customer"] = context_value;
    EXPECT_FALSE(data->Decrypt(ContextWithDeadline().get(), wrong, &ignored).ok());
    wrong.set_ciphertext_blob(first_data_key);
    EXPECT_FALSE(data->Decrypt(ContextWithDeadline().get(), wrong, &ignored).ok());
  }

  // ---- Service tokens: a good one, a tampered one, one for a principal
  // with no rights; over gRPC and through clavisctl -v ----
  const std::string token = clavisd_->IssueToken(app);
  ASSERT_FALSE(token.empty());
  Remember("service token", token);
  Remember("service token's signature part", token.substr(token.rfind('.') + 1));
  std::string tampered_token = token;
  tampered_token[tampered_token.size() - 3] =
      tampered_token[tampered_token.size() - 3] == 'A' ? 'B' : 'A';
  Remember("tampered service token", tampered_token);
  const std::string stranger_token = clavisd_->IssueToken(PrincipalName("acme", "stranger"));
  Remember("stranger's service token", stranger_token);
  auto token_call = [&](const std::string& bearer) {
    auto ctx = ContextWithDeadline();
    ctx->AddMetadata("authorization", "Bearer " + bearer);
    clavis::v1::DecryptRequest request;
    request.set_ciphertext_blob(blobs[2]);
    (*request.mutable_encryption_context())["customer"] = context_value;
    clavis::v1::DecryptResponse response;
    return clavis::v1::KeyManagement::NewStub(clavisd_->AnonymousChannel())
        ->Decrypt(ctx.get(), request, &response);
  };
  EXPECT_TRUE(token_call(token).ok());
  EXPECT_FALSE(token_call(tampered_token).ok());
  EXPECT_FALSE(token_call(stranger_token).ok());
  WriteFile(Path("app.token"), token + "\n");
  WriteFile(Path("bad.token"), tampered_token + "\n");
  EXPECT_EQ(Cli("--token-file " + Path("app.token"), "whoami").exit_code, 0);
  EXPECT_NE(Cli("--token-file " + Path("bad.token"), "key get " + key).exit_code, 0);
  const std::string admin = clavisd_->client_cert_prefix(PrincipalName("acme"));
  EXPECT_EQ(
      Cli(absl::StrCat("--cert ", admin, ".crt --key ", admin, ".key"), "key get " + key).exit_code,
      0);

  // ---- Restarts: a wrong passphrase is refused (and not logged), the
  // right one is read again ----
  ASSERT_TRUE(clavisd_->Stop().ok());
  const Secret wrong_passphrase{
      "wrong root passphrase",
      "wrong passphrase " + absl::BytesToHexString(crypto::RandomBytes(16))};
  Remember(wrong_passphrase.name, wrong_passphrase.value);
  WriteFile(Path("passphrase"), wrong_passphrase.value + "\n");
  const absl::Status refused = clavisd_->Start();
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.message(), "wrong root passphrase")) << refused;
  WriteFile(Path("passphrase"), passphrase_.value + "\n");
  ASSERT_TRUE(clavisd_->Start().ok());
  {
    clavis::v1::DecryptRequest request;
    request.set_ciphertext_blob(sealed.ciphertext_blob());
    (*request.mutable_encryption_context())["customer"] = context_value;
    clavis::v1::DecryptResponse plain;
    ASSERT_TRUE(clavisd_->Data(app)->Decrypt(ContextWithDeadline().get(), request, &plain).ok());
    EXPECT_EQ(plain.plaintext(), record);
  }
  ASSERT_TRUE(clavisd_->Stop().ok());  // the audit log's closing checkpoint

  // ---- Every log, searched ----
  logs_.push_back({"clavisd's stderr", ReadFile(clavisd_->log_file())});
  EXPECT_TRUE(absl::StrContains(logs_.back().second, "clavisd listening on"))
      << "the search must read the log clavisd actually wrote";
  int audit_files = 0, rocksdb_logs = 0;
  for (const auto& [path, content] : ReadAllFiles(Path("data"))) {
    const std::string name = std::filesystem::path(path).filename().string();
    if (absl::StrContains(path, "/audit/")) {
      logs_.push_back({"audit log file " + name, content});
      ++audit_files;
    } else if (absl::StartsWith(name, "LOG")) {  // RocksDB's info logs
      logs_.push_back({"RocksDB log " + name, content});
      ++rocksdb_logs;
    }
  }
  EXPECT_GT(audit_files, 0);
  EXPECT_GT(rocksdb_logs, 0);
  std::vector<std::string> leaks;
  for (const auto& [where, text] : logs_) {
    for (std::string& leak : FindLeaks(secrets_, where, text)) leaks.push_back(std::move(leak));
  }
  EXPECT_TRUE(leaks.empty()) << "secrets found in logs:\n  " << absl::StrJoin(leaks, "\n  ");
}

}  // namespace
}  // namespace clavis::testing
