// BYOK import against a real clavisd: the walkthrough of docs/BYOK.md run
// verbatim (both algorithms, both wrapping key sizes), every bad input of an
// import, the expiry of tokens and of material, re-import, and who may
// import.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "crypto/key_wrap.h"
#include "crypto/random.h"
#include "crypto/rsa_oaep.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "kms/keys/key_repository.h"
#include "tests/harness/clavisd_process.h"
#include "tests/testing/doc_blocks.h"

namespace clavis::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `script` with bash, returning its exit code; output goes to `log`.
int RunBash(const std::string& dir, const std::string& script, const std::string& log) {
  { std::ofstream(dir + "/script.sh") << script; }
  const int status =
      std::system(absl::StrCat("cd '", dir, "' && bash script.sh > '", log, "' 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class ByokTest : public ::testing::Test {
 protected:
  explicit ByokTest(std::vector<std::string> extra_args = {}) {
    ClavisdOptions options(dir_.path() + "/data");
    options.extra_args = std::move(extra_args);
    clavisd_ = std::make_unique<ClavisdProcess>(options);
  }
  void SetUp() override { ASSERT_TRUE(clavisd_->Start().ok()); }

  // A key of origin EXTERNAL that `app` may use.
  void CreateExternalKey(const std::string& id) {
    clavis::v1::CreateKeyRequest request;
    request.set_parent("tenants/acme");
    request.set_key_id(id);
    request.set_origin(clavis::v1::EXTERNAL);
    request.add_key_users(app_);
    clavis::v1::Key key;
    grpc::Status s = clavisd_->Admin()->CreateKey(ContextWithDeadline().get(), request, &key);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(key.state(), clavis::v1::PENDING_IMPORT);
  }

  grpc::Status GetParams(const std::string& key, clavis::v1::ImportWrappingAlgorithm algorithm,
                         clavis::v1::ImportParameters* out,
                         clavis::v1::ImportWrappingKeySpec spec = clavis::v1::RSA_3072,
                         const std::string& principal = "") {
    clavis::v1::GetImportParametersRequest request;
    request.set_name(key);
    request.set_wrapping_algorithm(algorithm);
    request.set_wrapping_key_spec(spec);
    return clavisd_->Admin(principal)->GetImportParameters(
        ContextWithDeadline(absl::Seconds(60)).get(), request, out);
  }

  grpc::Status Import(const std::string& key, const std::string& token,
                      clavis::v1::ImportWrappingAlgorithm algorithm, const std::string& wrapped,
                      clavis::v1::Key* out = nullptr,
                      std::optional<absl::Time> valid_to = std::nullopt,
                      const std::string& principal = "") {
    clavis::v1::ImportKeyMaterialRequest request;
    request.set_name(key);
    request.set_import_token(token);
    request.set_wrapping_algorithm(algorithm);
    request.set_wrapped_key_material(wrapped);
    if (valid_to.has_value()) {
      *request.mutable_valid_to() =
          google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(*valid_to));
    }
    clavis::v1::Key ignored;
    return clavisd_->Admin(principal)->ImportKeyMaterial(ContextWithDeadline().get(), request,
                                                         out != nullptr ? out : &ignored);
  }

  // What a customer does with OpenSSL, done in-process.
  static std::string WrapRsaAes(const std::string& public_pem,
                                const crypto::SecretBytes& material) {
    crypto::SecretBytes aes = crypto::RandomSecret(32);
    return absl::StrCat(*crypto::RsaOaepEncrypt(public_pem, aes),
                        *crypto::AesKeyWrapPad(aes, material));
  }
  static std::string WrapOaep(const std::string& public_pem, const crypto::SecretBytes& material) {
    return *crypto::RsaOaepEncrypt(public_pem, material);
  }

  grpc::Status EncryptAsApp(const std::string& key, std::string* blob) {
    clavis::v1::EncryptRequest request;
    request.set_key(key);
    request.set_segment("acme/contacts");
    request.set_plaintext("jane@example.com");
    clavis::v1::EncryptResponse response;
    grpc::Status s = clavisd_->Data(app_)->Encrypt(ContextWithDeadline().get(), request, &response);
    *blob = response.ciphertext_blob();
    return s;
  }
  grpc::Status DecryptAsApp(const std::string& blob, std::string* plaintext = nullptr) {
    clavis::v1::DecryptRequest request;
    request.set_ciphertext_blob(blob);
    clavis::v1::DecryptResponse response;
    grpc::Status s = clavisd_->Data(app_)->Decrypt(ContextWithDeadline().get(), request, &response);
    if (plaintext != nullptr) *plaintext = response.plaintext();
    return s;
  }
  clavis::v1::Key GetKey(const std::string& name) {
    clavis::v1::GetKeyRequest request;
    request.set_name(name);
    clavis::v1::Key key;
    EXPECT_TRUE(clavisd_->Admin()->GetKey(ContextWithDeadline().get(), request, &key).ok());
    return key;
  }

  TempDir dir_;
  std::unique_ptr<ClavisdProcess> clavisd_;
  const std::string app_ = PrincipalName("acme", "app");
};

// ---- The documented walkthrough, verbatim ----

struct Walkthrough {
  const char* algorithm;
  const char* key_spec;
};

class ByokWalkthroughTest : public ByokTest, public ::testing::WithParamInterface<Walkthrough> {};

TEST_P(ByokWalkthroughTest, DocumentedCommandsImportAKeyThatThenWorks) {
  const std::string work = dir_.path() + "/customer";
  std::filesystem::create_directories(work);
  const std::string key =
      absl::StrCat("tenants/acme/keys/byok-", absl::AsciiStrToLower(GetParam().key_spec));
  const std::string prefix = clavisd_->client_cert_prefix(PrincipalName("acme"));
  const std::string clavisctl_dir = std::filesystem::path(CLAVISCTL_BINARY).parent_path().string();
  // The environment a reader of docs/BYOK.md has: clavisctl on PATH and its
  // connection settings (docs/clavisctl.md) in the environment.
  std::string script = absl::StrCat("set -euo pipefail\n", "export PATH='", clavisctl_dir,
                                    "':\"$PATH\"\n", "export GRPC_DNS_RESOLVER=native\n",
                                    "export CLAVIS_ENDPOINT=localhost:", clavisd_->port(), "\n",
                                    "export CLAVIS_CA_CERT='", clavisd_->ca_cert_file(), "'\n",
                                    "export CLAVIS_CLIENT_CERT='", prefix, ".crt'\n",
                                    "export CLAVIS_CLIENT_KEY='", prefix, ".key'\n");
  auto block = [&](const std::string& name) {
    auto text = DocBlock(CLAVIS_BYOK_DOC, name);
    EXPECT_TRUE(text.ok()) << text.status();
    absl::StrAppend(&script, text.value_or("false\n"));
  };
  block("byok-choose");
  // The reader's own choices.
  absl::StrAppend(&script, "KEY=", key, "\nAPP=", app_, "\nALGORITHM=", GetParam().algorithm,
                  "\nKEY_SPEC=", GetParam().key_spec, "\n");
  block("byok-create");
  block("byok-params");
  block("byok-make-material");
  block(absl::StrCat("byok-wrap-", GetParam().algorithm));
  block("byok-import");
  absl::StrAppend(&script, "{\n");
  block("byok-check-value");
  absl::StrAppend(&script, "} > check-value.txt\n");
  const std::string log = work + "/log.txt";
  ASSERT_EQ(RunBash(work, script, log), 0) << ReadFile(log);

  // The key holds the customer's material: the check value computed with
  // OpenSSL from material.bin is the one clavisd shows.
  clavis::v1::Key got = GetKey(key);
  EXPECT_EQ(got.state(), clavis::v1::ENABLED);
  EXPECT_EQ(got.origin(), clavis::v1::EXTERNAL);
  ASSERT_EQ(got.versions_size(), 1);
  const std::string check_value(absl::StripAsciiWhitespace(ReadFile(work + "/check-value.txt")));
  EXPECT_EQ(check_value.size(), 16u);
  EXPECT_EQ(got.versions(0).key_check_value(), check_value);
  const crypto::SecretBytes material =
      crypto::SecretBytes::CopyOf(ReadFile(work + "/material.bin"));
  EXPECT_EQ(*kms::KeyCheckValue(material), check_value);

  // The application encrypts under it; after a restart (material read back
  // from storage) it still decrypts.
  std::string blob, plaintext;
  ASSERT_TRUE(EncryptAsApp(key, &blob).ok());
  ASSERT_TRUE(clavisd_->Stop().ok());
  ASSERT_TRUE(clavisd_->Start().ok());
  grpc::Status s = DecryptAsApp(blob, &plaintext);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(plaintext, "jane@example.com");
}

INSTANTIATE_TEST_SUITE_P(AlgorithmsAndKeySizes, ByokWalkthroughTest,
                         ::testing::Values(Walkthrough{"RSA_AES_KEY_WRAP_SHA_256", "RSA_3072"},
                                           Walkthrough{"RSA_AES_KEY_WRAP_SHA_256", "RSA_4096"},
                                           Walkthrough{"RSAES_OAEP_SHA_256", "RSA_3072"},
                                           Walkthrough{"RSAES_OAEP_SHA_256", "RSA_4096"}),
                         [](const auto& info) {
                           return absl::StrCat(
                               info.param.algorithm[0] == 'R' && info.param.algorithm[3] == '_'
                                   ? "RsaAes"
                                   : "Oaep",
                               info.param.key_spec + 4);
                         });

// ---- Bad input ----

TEST_F(ByokTest, EveryBadImportGetsItsOwnClearErrorAndChangesNothing) {
  CreateExternalKey("byok");
  CreateExternalKey("other");
  const std::string key = "tenants/acme/keys/byok";
  clavis::v1::ImportParameters params;
  ASSERT_TRUE(GetParams(key, clavis::v1::RSA_AES_KEY_WRAP_SHA_256, &params).ok());
  EXPECT_EQ(params.wrapping_key_spec(), clavis::v1::RSA_3072);
  const crypto::SecretBytes material = crypto::RandomSecret(32);
  const std::string wrapped = WrapRsaAes(params.public_key_pem(), material);
  ASSERT_EQ(wrapped.size(), 384u + 40u);

  auto expect = [&](grpc::Status s, grpc::StatusCode code, const std::string& text) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(text));
    return s.error_message();
  };
  const auto kRsaAes = clavis::v1::RSA_AES_KEY_WRAP_SHA_256;
  // Wrong algorithm in the request.
  expect(Import(key, params.import_token(), clavis::v1::RSAES_OAEP_SHA_256, wrapped),
         grpc::StatusCode::FAILED_PRECONDITION, "issued for wrapping algorithm");
  expect(Import(key, params.import_token(), clavis::v1::IMPORT_WRAPPING_ALGORITHM_UNSPECIFIED,
                wrapped),
         grpc::StatusCode::INVALID_ARGUMENT, "wrapping_algorithm is required");
  // The token of another key.
  expect(Import("tenants/acme/keys/other", params.import_token(), kRsaAes, wrapped),
         grpc::StatusCode::FAILED_PRECONDITION, "issued for key tenants/acme/keys/byok");
  // Wrong lengths: truncated, oversized, empty, and what the other algorithm makes.
  expect(Import(key, params.import_token(), kRsaAes, wrapped.substr(0, wrapped.size() - 1)),
         grpc::StatusCode::INVALID_ARGUMENT, "takes 424");
  expect(Import(key, params.import_token(), kRsaAes, wrapped + "x"),
         grpc::StatusCode::INVALID_ARGUMENT, "takes 424");
  expect(Import(key, params.import_token(), kRsaAes, ""), grpc::StatusCode::INVALID_ARGUMENT,
         "takes 424");
  expect(Import(key, params.import_token(), kRsaAes, WrapOaep(params.public_key_pem(), material)),
         grpc::StatusCode::INVALID_ARGUMENT, "other algorithm");
  // A malformed token.
  expect(Import(key, "clavis-import-v1.short", kRsaAes, wrapped),
         grpc::StatusCode::INVALID_ARGUMENT, "malformed");
  // Corrupted wraps: one bit flipped in the RSA block or in the AES-KWP part
  // gives the same message (no padding oracle).
  std::string flip_rsa = wrapped, flip_kwp = wrapped;
  flip_rsa[100] ^= 0x01;
  flip_kwp[400] ^= 0x80;
  const std::string rsa_message =
      expect(Import(key, params.import_token(), kRsaAes, flip_rsa),
             grpc::StatusCode::INVALID_ARGUMENT, "could not be unwrapped");
  const std::string kwp_message =
      expect(Import(key, params.import_token(), kRsaAes, flip_kwp),
             grpc::StatusCode::INVALID_ARGUMENT, "could not be unwrapped");
  EXPECT_EQ(rsa_message, kwp_message);

  // Nothing was stored meanwhile.
  EXPECT_EQ(GetKey(key).state(), clavis::v1::PENDING_IMPORT);
  EXPECT_EQ(GetKey(key).versions_size(), 0);

  // Two failed unwraps so far (of five allowed): the token still works.
  clavis::v1::Key imported;
  grpc::Status ok = Import(key, params.import_token(), kRsaAes, wrapped, &imported);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(imported.state(), clavis::v1::ENABLED);
  EXPECT_EQ(imported.versions(0).key_check_value(), *kms::KeyCheckValue(material));
  // Single use.
  expect(Import(key, params.import_token(), kRsaAes, wrapped),
         grpc::StatusCode::FAILED_PRECONDITION, "already used");
  std::string blob;
  ASSERT_TRUE(EncryptAsApp(key, &blob).ok());
  EXPECT_TRUE(DecryptAsApp(blob).ok());
}

TEST_F(ByokTest, TooManyFailedUnwrapsDiscardTheToken) {
  CreateExternalKey("byok");
  const std::string key = "tenants/acme/keys/byok";
  clavis::v1::ImportParameters params;
  ASSERT_TRUE(GetParams(key, clavis::v1::RSAES_OAEP_SHA_256, &params).ok());
  const std::string garbage = crypto::RandomBytes(384);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(
        Import(key, params.import_token(), clavis::v1::RSAES_OAEP_SHA_256, garbage).error_code(),
        grpc::StatusCode::INVALID_ARGUMENT);
  }
  grpc::Status s = Import(key, params.import_token(), clavis::v1::RSAES_OAEP_SHA_256,
                          WrapOaep(params.public_key_pem(), crypto::RandomSecret(32)));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("discarded after 5 failed unwraps"));
}

TEST_F(ByokTest, GeneratedKeysTakeNoImport) {
  clavis::v1::CreateKeyRequest request;
  request.set_parent("tenants/acme");
  request.set_key_id("generated");
  clavis::v1::Key key;
  ASSERT_TRUE(clavisd_->Admin()->CreateKey(ContextWithDeadline().get(), request, &key).ok());
  clavis::v1::ImportParameters params;
  grpc::Status s = GetParams(key.name(), clavis::v1::RSAES_OAEP_SHA_256, &params);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("origin GENERATED"));
  // And imported keys do not rotate by themselves.
  CreateExternalKey("byok");
  clavis::v1::RotateKeyRequest rotate;
  rotate.set_name("tenants/acme/keys/byok");
  s = clavisd_->Admin()->RotateKey(ContextWithDeadline().get(), rotate, &key);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("--new-version"));
}

TEST_F(ByokTest, OnlyKeyAdministratorsOfTheTenantMayImport) {
  CreateExternalKey("byok");
  const std::string key = "tenants/acme/keys/byok";
  clavis::v1::ImportParameters params;
  // The key's user (data plane only) and another tenant's admin are refused.
  for (const std::string& principal : {app_, PrincipalName("globex")}) {
    grpc::Status s =
        GetParams(key, clavis::v1::RSAES_OAEP_SHA_256, &params, clavis::v1::RSA_3072, principal);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << principal;
  }
  ASSERT_TRUE(GetParams(key, clavis::v1::RSAES_OAEP_SHA_256, &params).ok());
  const std::string wrapped = WrapOaep(params.public_key_pem(), crypto::RandomSecret(32));
  for (const std::string& principal : {app_, PrincipalName("globex")}) {
    grpc::Status s = Import(key, params.import_token(), clavis::v1::RSAES_OAEP_SHA_256, wrapped,
                            nullptr, std::nullopt, principal);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << principal;
  }
  EXPECT_EQ(GetKey(key).state(), clavis::v1::PENDING_IMPORT);
}

TEST_F(ByokTest, ARestartInvalidatesTokens) {
  CreateExternalKey("byok");
  const std::string key = "tenants/acme/keys/byok";
  clavis::v1::ImportParameters params;
  ASSERT_TRUE(GetParams(key, clavis::v1::RSAES_OAEP_SHA_256, &params).ok());
  ASSERT_TRUE(clavisd_->Stop().ok());
  ASSERT_TRUE(clavisd_->Start().ok());
  grpc::Status s = Import(key, params.import_token(), clavis::v1::RSAES_OAEP_SHA_256,
                          WrapOaep(params.public_key_pem(), crypto::RandomSecret(32)));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("restarted"));
}

// ---- Expiry of tokens and of material (tokens live 2 s here) ----

class ByokExpiryTest : public ByokTest {
 protected:
  ByokExpiryTest() : ByokTest({"--import_token_ttl_s", "2"}) {}
};

TEST_F(ByokExpiryTest, ExpiredTokensAreRefused) {
  CreateExternalKey("byok");
  clavis::v1::ImportParameters params;
  ASSERT_TRUE(GetParams("tenants/acme/keys/byok", clavis::v1::RSAES_OAEP_SHA_256, &params).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  grpc::Status s =
      Import("tenants/acme/keys/byok", params.import_token(), clavis::v1::RSAES_OAEP_SHA_256,
             WrapOaep(params.public_key_pem(), crypto::RandomSecret(32)));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("import token expired at"));
}

TEST_F(ByokExpiryTest, ExpiredMaterialIsUnusableUntilTheSameMaterialComesBack) {
  CreateExternalKey("byok");
  const std::string key = "tenants/acme/keys/byok";
  const auto kOaep = clavis::v1::RSAES_OAEP_SHA_256;
  const crypto::SecretBytes material = crypto::RandomSecret(32);
  clavis::v1::ImportParameters params;
  ASSERT_TRUE(GetParams(key, kOaep, &params).ok());
  clavis::v1::Key imported;
  ASSERT_TRUE(Import(key, params.import_token(), kOaep, WrapOaep(params.public_key_pem(), material),
                     &imported, absl::Now() + absl::Seconds(3))
                  .ok());
  EXPECT_TRUE(imported.versions(0).has_material_expire_time());
  std::string blob;
  ASSERT_TRUE(EncryptAsApp(key, &blob).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));

  grpc::Status refused = DecryptAsApp(blob);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("expired"));
  EXPECT_EQ(GetKey(key).state(), clavis::v1::PENDING_IMPORT);
  std::string no_blob;
  EXPECT_EQ(EncryptAsApp(key, &no_blob).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // Other material is refused, naming both check values.
  ASSERT_TRUE(GetParams(key, kOaep, &params).ok());
  grpc::Status other = Import(key, params.import_token(), kOaep,
                              WrapOaep(params.public_key_pem(), crypto::RandomSecret(32)));
  EXPECT_EQ(other.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(other.error_message(), HasSubstr("not the material of key version"));
  // The same material, with the same token (the refusal did not use it up).
  grpc::Status same =
      Import(key, params.import_token(), kOaep, WrapOaep(params.public_key_pem(), material));
  ASSERT_TRUE(same.ok()) << same.error_message();
  std::string plaintext;
  grpc::Status decrypted = DecryptAsApp(blob, &plaintext);
  ASSERT_TRUE(decrypted.ok()) << decrypted.error_message();
  EXPECT_EQ(plaintext, "jane@example.com");
  EXPECT_EQ(GetKey(key).state(), clavis::v1::ENABLED);
}

}  // namespace
}  // namespace clavis::testing
