// Exit without lock-in, end to end: a record sealed through the SDK under an
// imported (BYOK) key, an escrow export behind M-of-N approval with
// clavisctl, then clavis-recover decrypting the record with no server left.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "clavis/client.h"
#include "clavis/record_encryptor.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "crypto/key_wrap.h"
#include "crypto/random.h"
#include "crypto/rsa_oaep.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/key_repository.h"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/run_shell.h"
#include "tests/harness/sdk_options.h"

namespace clavis::testing {
namespace {

using ::testing::HasSubstr;

CommandResult RunWithStderr(const std::string& command) { return RunShell(command + " 2>&1"); }

void WriteFile(const std::string& path, absl::string_view bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

class EscrowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(clavisd_.Start().ok());
    // Three administrators (two approve the third's export), one app.
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/acme");
    create.set_key_id("byok");
    create.set_origin(clavis::v1::EXTERNAL);
    create.set_approvals_required(2);
    for (const std::string& admin : {admin_, alice_, bob_}) create.add_key_administrators(admin);
    create.add_key_users(app_);
    clavis::v1::Key key;
    grpc::Status s = clavisd_.Admin()->CreateKey(ContextWithDeadline().get(), create, &key);
    ASSERT_TRUE(s.ok()) << s.error_message();
    Import(material_);
  }

  void Import(const crypto::SecretBytes& material, bool new_version = false) {
    clavis::v1::GetImportParametersRequest get;
    get.set_name(key_);
    get.set_wrapping_algorithm(clavis::v1::RSA_AES_KEY_WRAP_SHA_256);
    clavis::v1::ImportParameters params;
    ASSERT_TRUE(
        clavisd_.Admin()
            ->GetImportParameters(ContextWithDeadline(absl::Seconds(60)).get(), get, &params)
            .ok());
    crypto::SecretBytes aes = crypto::RandomSecret(32);
    clavis::v1::ImportKeyMaterialRequest import;
    import.set_name(key_);
    import.set_import_token(params.import_token());
    import.set_wrapping_algorithm(clavis::v1::RSA_AES_KEY_WRAP_SHA_256);
    import.set_wrapped_key_material(
        absl::StrCat(*crypto::RsaOaepEncrypt(params.public_key_pem(), aes),
                     *crypto::AesKeyWrapPad(aes, material)));
    import.set_new_version(new_version);
    clavis::v1::Key key;
    grpc::Status s = clavisd_.Admin()->ImportKeyMaterial(ContextWithDeadline().get(), import, &key);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // clavisctl as `principal`.
  CommandResult Clavisctl(const std::string& args, const std::string& principal) {
    const std::string prefix = clavisd_.client_cert_prefix(principal);
    return RunWithStderr(absl::StrCat(CLAVISCTL_BINARY, " --endpoint localhost:", clavisd_.port(),
                                      " --ca-cert ", clavisd_.ca_cert_file(), " --cert ", prefix,
                                      ".crt --key ", prefix, ".key ", args));
  }

  grpc::Status Approve(const std::string& request, const std::string& approver) {
    auto stub = clavis::v1::AccessControl::NewStub(clavisd_.channel(approver));
    clavis::v1::ApproveRequestRequest r;
    r.set_name(request);
    clavis::v1::ApprovalRequest out;
    return stub->ApproveRequest(ContextWithDeadline().get(), r, &out);
  }

  // Asks for an export; returns the approval request it created.
  std::string RequestExport(const std::string& principal) {
    CommandResult asked =
        Clavisctl(absl::StrCat("escrow export ", key_, " --out ", bundle_), principal);
    EXPECT_EQ(asked.exit_code, 4) << asked.out;  // FAILED_PRECONDITION
    EXPECT_THAT(asked.out, HasSubstr("--approval"));
    std::smatch m;
    const std::regex name("tenants/acme/approvals/[A-Za-z0-9_-]+");
    EXPECT_TRUE(std::regex_search(asked.out, m, name)) << asked.out;
    return m.empty() ? "" : m.str();
  }

  TempDir dir_;
  ClavisdProcess clavisd_{ClavisdOptions(dir_.path() + "/data")};
  const std::string key_ = "tenants/acme/keys/byok";
  const std::string admin_ = PrincipalName("acme");
  const std::string alice_ = PrincipalName("acme", "alice");
  const std::string bob_ = PrincipalName("acme", "bob");
  const std::string app_ = PrincipalName("acme", "app");
  const crypto::SecretBytes material_ = crypto::RandomSecret(32);
  const std::string bundle_ = dir_.path() + "/escrow.jsonl";
};

TEST_F(EscrowTest, ASdkRecordDecryptsOfflineFromTheBundleAndTheMaterial) {
  // The application seals customer records through the SDK, across two
  // material versions (a new import rotates the key).
  auto client = Client::Connect(SdkClientOptions(clavisd_, app_));
  ASSERT_TRUE(client.ok()) << client.status();
  std::shared_ptr<Client> shared(std::move(*client));
  auto encryptor = RecordEncryptor::New(shared, key_);
  ASSERT_TRUE(encryptor.ok()) << encryptor.status();
  auto first =
      (*encryptor)->Encrypt("acme/customers", "jane@example.com", {{"customer", "42"}}, "row-42");
  ASSERT_TRUE(first.ok()) << first.status();
  const crypto::SecretBytes material_v2 = crypto::RandomSecret(32);
  Import(material_v2, /*new_version=*/true);
  auto second = (*encryptor)->Encrypt("acme/orders", std::string(5000, 'o'), {{"order", "7"}});
  ASSERT_TRUE(second.ok()) << second.status();

  // Export: requested by the admin, approved by two others, used once.
  const std::string request = RequestExport(admin_);
  ASSERT_FALSE(request.empty());
  EXPECT_FALSE(std::filesystem::exists(bundle_));
  ASSERT_TRUE(Approve(request, alice_).ok());
  CommandResult early = Clavisctl(
      absl::StrCat("escrow export ", key_, " --out ", bundle_, " --approval ", request), admin_);
  EXPECT_EQ(early.exit_code, 4) << early.out;
  EXPECT_THAT(early.out, HasSubstr("1 of 2 approvals"));
  ASSERT_TRUE(Approve(request, bob_).ok());
  CommandResult someone_else = Clavisctl(
      absl::StrCat("escrow export ", key_, " --out ", bundle_, " --approval ", request), alice_);
  EXPECT_EQ(someone_else.exit_code, 4) << someone_else.out;
  EXPECT_THAT(someone_else.out, HasSubstr("only the requester"));
  CommandResult exported = Clavisctl(
      absl::StrCat("escrow export ", key_, " --out ", bundle_, " --approval ", request, " --json"),
      admin_);
  ASSERT_EQ(exported.exit_code, 0) << exported.out;
  EXPECT_THAT(exported.out, HasSubstr("\"segments\": 2"));
  CommandResult again = Clavisctl(
      absl::StrCat("escrow export ", key_, " --out ", bundle_, ".2 --approval ", request), admin_);
  EXPECT_EQ(again.exit_code, 4) << again.out;
  EXPECT_THAT(again.out, HasSubstr("already used"));

  // Both the request and the export are in the audit log.
  std::string audit;
  for (const auto& [path, content] : ReadAllFiles(dir_.path() + "/data/audit")) audit += content;
  EXPECT_THAT(audit, HasSubstr("ExportEscrow"));

  // No server any more: only files.
  shared.reset();
  encryptor->reset();
  ASSERT_TRUE(clavisd_.Stop().ok());
  const std::string d = dir_.path();
  WriteFile(d + "/v1.bin", material_.view());
  WriteFile(d + "/v2.bin", material_v2.view());
  WriteFile(d + "/first.rec", *first);
  WriteFile(d + "/second.rec", *second);
  WriteFile(d + "/aad", "row-42");
  const std::string recover = absl::StrCat(CLAVIS_RECOVER_BINARY, " --bundle ", bundle_,
                                           " --material ", d, "/v2.bin --material ", d, "/v1.bin");
  CommandResult one = RunWithStderr(absl::StrCat(recover, " --context customer=42 --aad-file ", d,
                                                 "/aad --in ", d, "/first.rec"));
  ASSERT_EQ(one.exit_code, 0) << one.out;
  EXPECT_EQ(one.out, "jane@example.com");
  CommandResult two = RunWithStderr(
      absl::StrCat(recover, " --context order=7 --in ", d, "/second.rec --out ", d, "/second.txt"));
  ASSERT_EQ(two.exit_code, 0) << two.out;
  EXPECT_EQ(ReadWholeFile(d + "/second.txt"), std::string(5000, 'o'));
  EXPECT_EQ(
      std::filesystem::status(d + "/second.txt").permissions() & std::filesystem::perms::group_all,
      std::filesystem::perms::none);

  // Wrong context, missing material, a stranger's material: clear refusals.
  CommandResult wrong_context = RunWithStderr(absl::StrCat(
      recover, " --context customer=43 --aad-file ", d, "/aad --in ", d, "/first.rec"));
  EXPECT_EQ(wrong_context.exit_code, 1);
  EXPECT_THAT(wrong_context.out, HasSubstr("decryption failed"));
  CommandResult only_v2 = RunWithStderr(
      absl::StrCat(CLAVIS_RECOVER_BINARY, " --bundle ", bundle_, " --material ", d,
                   "/v2.bin --context customer=42 --aad-file ", d, "/aad --in ", d, "/first.rec"));
  EXPECT_EQ(only_v2.exit_code, 1);
  EXPECT_THAT(only_v2.out, HasSubstr("give its material too"));
  WriteFile(d + "/stranger.bin", crypto::RandomBytes(32));
  CommandResult stranger =
      RunWithStderr(absl::StrCat(CLAVIS_RECOVER_BINARY, " --bundle ", bundle_, " --material ", d,
                                 "/stranger.bin --in ", d, "/first.rec"));
  EXPECT_EQ(stranger.exit_code, 2);
  EXPECT_THAT(stranger.out, HasSubstr("is no version of tenants/acme/keys/byok"));
  // A truncated bundle is refused as such.
  const std::string text = ReadWholeFile(bundle_);
  WriteFile(d + "/truncated.jsonl", text.substr(0, text.size() / 2));
  CommandResult truncated = RunWithStderr(absl::StrCat(CLAVIS_RECOVER_BINARY, " --bundle ", d,
                                                       "/truncated.jsonl --material ", d,
                                                       "/v1.bin --in ", d, "/first.rec"));
  EXPECT_EQ(truncated.exit_code, 2);
  EXPECT_THAT(truncated.out, HasSubstr("truncated"));
}

// An approved export is for the material the approvers saw: an
// administrator who brings in material of their own afterwards (and could
// re-wrap every segment onto it) finds the grant void.
TEST_F(EscrowTest, AGrantDiesWhenTheKeysMaterialChanges) {
  const std::string request = RequestExport(admin_);
  ASSERT_FALSE(request.empty());
  // Approvers see the check values of the material the bundle would use.
  CommandResult shown = Clavisctl("approval get " + request, alice_);
  ASSERT_EQ(shown.exit_code, 0) << shown.out;
  EXPECT_THAT(shown.out, HasSubstr(*kms::KeyCheckValue(material_)));
  ASSERT_TRUE(Approve(request, alice_).ok());
  ASSERT_TRUE(Approve(request, bob_).ok());
  const crypto::SecretBytes insider = crypto::RandomSecret(32);
  Import(insider, /*new_version=*/true);
  CommandResult refused = Clavisctl(
      absl::StrCat("escrow export ", key_, " --out ", bundle_, " --approval ", request), admin_);
  EXPECT_EQ(refused.exit_code, 4) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("versions (material) changed"));
  EXPECT_FALSE(std::filesystem::exists(bundle_));
}

TEST_F(EscrowTest, ExportNeedsAQuorumAndTheRightToExport) {
  // The app (data plane only) may not even ask.
  CommandResult app = Clavisctl(absl::StrCat("escrow export ", key_, " --out ", bundle_), app_);
  EXPECT_EQ(app.exit_code, 6) << app.out;  // PERMISSION_DENIED
  // Nor may another tenant's administrator.
  CommandResult other_tenant =
      Clavisctl(absl::StrCat("escrow export ", key_, " --out ", bundle_), PrincipalName("globex"));
  EXPECT_EQ(other_tenant.exit_code, 6) << other_tenant.out;
  // A key without M-of-N cannot be escrowed at all.
  clavis::v1::CreateKeyRequest create;
  create.set_parent("tenants/acme");
  create.set_key_id("solo");
  create.set_origin(clavis::v1::EXTERNAL);
  clavis::v1::Key key;
  ASSERT_TRUE(clavisd_.Admin()->CreateKey(ContextWithDeadline().get(), create, &key).ok());
  CommandResult solo =
      Clavisctl(absl::StrCat("escrow export tenants/acme/keys/solo --out ", bundle_), admin_);
  EXPECT_EQ(solo.exit_code, 4) << solo.out;
  EXPECT_THAT(solo.out, HasSubstr("needs M-of-N approval"));
  // Malformed, foreign and unknown approval names are refused.
  CommandResult malformed = Clavisctl(absl::StrCat("escrow export ", key_, " --out ", bundle_,
                                                   " --approval tenants/globex/approvals/x"),
                                      admin_);
  EXPECT_EQ(malformed.exit_code, 5) << malformed.out;  // INVALID_ARGUMENT
  EXPECT_THAT(malformed.out, HasSubstr("approval request name looks like"));
  CommandResult foreign =
      Clavisctl(absl::StrCat("escrow export ", key_, " --out ", bundle_,
                             " --approval tenants/globex/approvals/ar-0123abcd"),
                admin_);
  EXPECT_EQ(foreign.exit_code, 4) << foreign.out;
  EXPECT_THAT(foreign.out, HasSubstr("another tenant"));
  CommandResult unknown = Clavisctl(absl::StrCat("escrow export ", key_, " --out ", bundle_,
                                                 " --approval tenants/acme/approvals/ar-0123abcd"),
                                    admin_);
  EXPECT_EQ(unknown.exit_code, 3) << unknown.out;  // NOT_FOUND
  EXPECT_FALSE(std::filesystem::exists(bundle_));
  EXPECT_FALSE(std::filesystem::exists(bundle_ + ".partial"));
}

}  // namespace
}  // namespace clavis::testing
