// clavisd with its root key in a PKCS#11 token: a real SoftHSM2 token made
// by deploy/softhsm/setup-token.sh in the test's directory, the key
// generated inside it on the first start, data encrypted, clavisd
// restarted on the same data directory and token, the data decrypted.
// And the start-up refusals an operator meets: wrong PIN, missing key.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/root/pkcs11_testing.h"
#include "tests/harness/clavisd_process.h"

namespace clavis::testing {
namespace {

using kms::pkcs11_testing::kSoftHsmModule;
using kms::pkcs11_testing::MakeSoftHsmToken;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "clavis-it";
constexpr char kKeyLabel[] = "clavis-root-key";
constexpr char kPin[] = "it-user-pin-5173";
constexpr char kWrongPin[] = "it-wrong-pin-8264";

class Pkcs11RootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hsm_dir_ = dir_.path() + "/hsm";
    // Also sets SOFTHSM2_CONF, which the clavisd processes inherit.
    ASSERT_TRUE(MakeSoftHsmToken(hsm_dir_, kToken, kPin));
  }
  void TearDown() override { ::unsetenv("CLAVIS_PKCS11_PIN"); }

  // clavisd flags for the test token; the PIN from the file the setup
  // script wrote.
  std::vector<std::string> Pkcs11Flags(bool create_key) const {
    std::vector<std::string> flags = {
        "--root_key=pkcs11",
        absl::StrCat("--pkcs11_module=", kSoftHsmModule),
        absl::StrCat("--pkcs11_token_label=", kToken),
        absl::StrCat("--pkcs11_key_label=", kKeyLabel),
        absl::StrCat("--pkcs11_pin_file=", hsm_dir_, "/", kToken, ".pin"),
    };
    if (create_key) flags.push_back("--pkcs11_create_key");
    return flags;
  }

  ClavisdOptions Options(std::vector<std::string> flags) const {
    ClavisdOptions options(dir_.path() + "/data");
    options.extra_args = std::move(flags);
    return options;
  }

  TempDir dir_;
  std::string hsm_dir_;
};

TEST_F(Pkcs11RootTest, DataEncryptedBeforeARestartDecryptsAfterIt) {
  clavis::v1::GenerateDataKeyResponse data_key;
  clavis::v1::EncryptResponse encrypted;
  {
    // First start: the root key is generated inside the token.
    ClavisdProcess clavisd(Options(Pkcs11Flags(/*create_key=*/true)));
    absl::Status started = clavisd.Start();
    ASSERT_TRUE(started.ok()) << started;

    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/acme");
    create.set_key_id("hsm-rooted");
    create.set_policy(TestKeyPolicy("tenants/acme/keys/hsm-rooted"));
    clavis::v1::Key key;
    grpc::Status status = clavisd.Admin()->CreateKey(ContextWithDeadline().get(), create, &key);
    ASSERT_TRUE(status.ok()) << status.error_message();

    clavis::v1::GenerateDataKeyRequest generate;
    generate.set_key(key.name());
    generate.set_segment("acme/orders/2026-11");
    (*generate.mutable_encryption_context())["customer"] = "42";
    status = clavisd.Data()->GenerateDataKey(ContextWithDeadline().get(), generate, &data_key);
    ASSERT_TRUE(status.ok()) << status.error_message();

    clavis::v1::EncryptRequest encrypt;
    encrypt.set_key(key.name());
    encrypt.set_segment("acme/orders/2026-12");
    encrypt.set_plaintext("a record sealed under an HSM-rooted key");
    (*encrypt.mutable_encryption_context())["customer"] = "43";
    status = clavisd.Data()->Encrypt(ContextWithDeadline().get(), encrypt, &encrypted);
    ASSERT_TRUE(status.ok()) << status.error_message();

    absl::Status stopped = clavisd.Stop();
    ASSERT_TRUE(stopped.ok()) << stopped;
  }
  // The root key lives only in the token: nothing root-key-like on disk.
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data/root.key"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data/root-passphrase.params"));

  // Restart on the same data directory and token, without --pkcs11_create_key.
  ClavisdProcess clavisd(Options(Pkcs11Flags(/*create_key=*/false)));
  absl::Status started = clavisd.Start();
  ASSERT_TRUE(started.ok()) << started;

  clavis::v1::DecryptRequest decrypt;
  decrypt.set_ciphertext_blob(data_key.ciphertext_blob());
  (*decrypt.mutable_encryption_context())["customer"] = "42";
  clavis::v1::DecryptResponse plain;
  grpc::Status status = clavisd.Data()->Decrypt(ContextWithDeadline().get(), decrypt, &plain);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(plain.plaintext(), data_key.plaintext());

  decrypt.set_ciphertext_blob(encrypted.ciphertext_blob());
  (*decrypt.mutable_encryption_context())["customer"] = "43";
  status = clavisd.Data()->Decrypt(ContextWithDeadline().get(), decrypt, &plain);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(plain.plaintext(), "a record sealed under an HSM-rooted key");

  ASSERT_TRUE(clavisd.Stop().ok());
  std::ifstream log_in(clavisd.log_file());
  const std::string log((std::istreambuf_iterator<char>(log_in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(log, HasSubstr(absl::StrCat("root key pkcs11:token=", kToken, " key=", kKeyLabel,
                                          " module=", kSoftHsmModule)));
  EXPECT_THAT(log, Not(HasSubstr(kPin)));
}

TEST_F(Pkcs11RootTest, WrongPinStopsTheStartWithAClearMessage) {
  {
    ClavisdProcess clavisd(Options(Pkcs11Flags(/*create_key=*/true)));
    absl::Status started = clavisd.Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(clavisd.Stop().ok());
  }
  // The PIN from the default variable this time, and a wrong one.
  std::vector<std::string> flags = Pkcs11Flags(/*create_key=*/false);
  flags.pop_back();  // --pkcs11_pin_file
  ASSERT_EQ(::setenv("CLAVIS_PKCS11_PIN", kWrongPin, 1), 0);
  ClavisdProcess clavisd(Options(flags));
  absl::Status started = clavisd.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(started.message(), HasSubstr("clavisd exited during start-up"));
  EXPECT_THAT(started.message(), HasSubstr("clavisd cannot start: wrong PIN for PKCS#11 token "
                                           "'clavis-it' (CKR_PIN_INCORRECT)"));
  EXPECT_THAT(started.message(), Not(HasSubstr(kWrongPin)));
  EXPECT_THAT(started.message(), Not(HasSubstr(kPin)));
}

TEST_F(Pkcs11RootTest, MissingKeyIsNotCreatedWithoutTheFlag) {
  ClavisdProcess clavisd(Options(Pkcs11Flags(/*create_key=*/false)));
  absl::Status started = clavisd.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(started.message(),
              HasSubstr("no AES secret key labelled 'clavis-root-key' on PKCS#11 token "
                        "'clavis-it'"));
  EXPECT_THAT(started.message(), HasSubstr("--pkcs11_create_key"));
}

}  // namespace
}  // namespace clavis::testing
