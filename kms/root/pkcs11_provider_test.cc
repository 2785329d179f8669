// Pkcs11RootKeyProvider against a real SoftHSM2 token, made for each test in
// its own temporary directory by deploy/softhsm/setup-token.sh.
#include "kms/root/pkcs11_provider.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/aead.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/root/pkcs11_module.h"
#include "kms/root/pkcs11_testing.h"
#include "kms/root/pkcs11_token.h"
#include "kms/root/root_key_testing.h"

namespace clavis::kms {
namespace {

using pkcs11_testing::kSoftHsmModule;
using pkcs11_testing::MakeSoftHsmToken;
using root_internal::Pkcs11Module;
using root_internal::Pkcs11Token;
using root_testing::CheckWrapContract;
using root_testing::ExpectUnwrapFails;
using root_testing::ScopedTempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "clavis-test";
constexpr char kPin[] = "user-pin-7391";
constexpr char kWrongPin[] = "wrong-pin-2468";
constexpr char kAd[] = "tenants/acme/keys/crm/versions/1";

crypto::SecretBytes Secret(absl::string_view s) { return crypto::SecretBytes::CopyOf(s); }

// Attributes of a key a test makes through the raw module, to see what the
// provider does with keys it did not make itself.
struct RawKey {
  std::string label;
  CK_ULONG bytes = 32;
  bool extractable = false;
  bool sensitive = true;
  bool is_private = true;
  // Set: C_CreateObject with this value (a key known outside the token).
  // Empty: C_GenerateKey.
  std::string value;
};

class Pkcs11ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(MakeSoftHsmToken(dir_.path(), kToken, kPin)); }

  static Pkcs11RootKeyOptions Options(const std::string& key_label = "root", bool create = true) {
    Pkcs11RootKeyOptions options;
    options.module_path = kSoftHsmModule;
    options.token_label = kToken;
    options.key_label = key_label;
    options.create_key_if_missing = create;
    return options;
  }

  static std::unique_ptr<Pkcs11RootKeyProvider> MustOpen(const Pkcs11RootKeyOptions& options) {
    absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
        Pkcs11RootKeyProvider::Open(options, Secret(kPin));
    EXPECT_TRUE(provider.ok()) << provider.status();
    return provider.ok() ? *std::move(provider) : nullptr;
  }

  // A logged-in handle on the test token through the same module instance
  // the providers use (PKCS#11 state is per process).
  static std::shared_ptr<Pkcs11Token> RawToken() {
    absl::StatusOr<std::shared_ptr<Pkcs11Module>> module = Pkcs11Module::Load(kSoftHsmModule);
    EXPECT_TRUE(module.ok()) << module.status();
    if (!module.ok()) return nullptr;
    absl::StatusOr<std::shared_ptr<Pkcs11Token>> token =
        Pkcs11Token::Open(*std::move(module), kToken, Secret(kPin), 1);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *std::move(token) : nullptr;
  }

  static void MakeRawKey(const RawKey& key) {
    std::shared_ptr<Pkcs11Token> token = RawToken();
    ASSERT_NE(token, nullptr);
    absl::StatusOr<CK_SESSION_HANDLE> session = token->OpenReadWriteSession();
    ASSERT_TRUE(session.ok()) << session.status();
    CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
    CK_KEY_TYPE key_type = CKK_AES;
    CK_ULONG bytes = key.bytes;
    CK_BBOOL yes = CK_TRUE, extractable = key.extractable, sensitive = key.sensitive,
             is_private = key.is_private;
    std::string value = key.value;
    std::vector<CK_ATTRIBUTE> attributes = {
        {CKA_CLASS, &key_class, sizeof(key_class)},
        {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
        {CKA_LABEL, const_cast<char*>(key.label.data()), key.label.size()},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &is_private, sizeof(is_private)},
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},
    };
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    CK_RV rv;
    if (value.empty()) {
      attributes.push_back({CKA_VALUE_LEN, &bytes, sizeof(bytes)});
      CK_MECHANISM mechanism = {CKM_AES_KEY_GEN, nullptr, 0};
      rv = token->functions()->C_GenerateKey(*session, &mechanism, attributes.data(),
                                             attributes.size(), &handle);
    } else {
      attributes.push_back({CKA_VALUE, value.data(), value.size()});
      rv = token->functions()->C_CreateObject(*session, attributes.data(), attributes.size(),
                                              &handle);
    }
    token->CloseSession(*session);
    ASSERT_EQ(rv, CKR_OK) << root_internal::Pkcs11ErrorName(rv);
  }

  ScopedTempDir dir_;
};

TEST_F(Pkcs11ProviderTest, WrapContractHolds) {
  auto provider = MustOpen(Options("root", /*create=*/true));
  auto same_key = MustOpen(Options("root", /*create=*/false));
  auto other_key = MustOpen(Options("other-root", /*create=*/true));
  ASSERT_TRUE(provider && same_key && other_key);
  CheckWrapContract(*provider, *same_key, *other_key, kPkcs11WrapFormatV1);
}

TEST_F(Pkcs11ProviderTest, BlobsUnwrapAfterEveryProviderAndTheModuleWereClosed) {
  std::string blob;
  {
    auto provider = MustOpen(Options());
    ASSERT_TRUE(provider);
    absl::StatusOr<std::string> wrapped = provider->Wrap(Secret("master key bytes"), kAd);
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    blob = *wrapped;
  }
  // The module was finalised with the last provider: this is a new
  // C_Initialize reading the token from its files, as after a restart.
  auto reopened = MustOpen(Options("root", /*create=*/false));
  ASSERT_TRUE(reopened);
  absl::StatusOr<crypto::SecretBytes> out = reopened->Unwrap(blob, kAd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->view(), "master key bytes");
}

TEST_F(Pkcs11ProviderTest, GeneratedKeyIsANonExtractableSensitiveAes256TokenKey) {
  ASSERT_TRUE(MustOpen(Options("root", /*create=*/true)));
  std::shared_ptr<Pkcs11Token> token = RawToken();
  ASSERT_NE(token, nullptr);
  absl::StatusOr<Pkcs11Token::Lease> lease = token->Acquire();
  ASSERT_TRUE(lease.ok()) << lease.status();
  CK_FUNCTION_LIST_PTR f = token->functions();
  CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
  std::string label = "root";
  CK_ATTRIBUTE query[] = {{CKA_CLASS, &key_class, sizeof(key_class)},
                          {CKA_LABEL, label.data(), label.size()}};
  ASSERT_EQ(f->C_FindObjectsInit(lease->handle(), query, 2), CKR_OK);
  CK_OBJECT_HANDLE key;
  CK_ULONG count = 0;
  ASSERT_EQ(f->C_FindObjects(lease->handle(), &key, 1, &count), CKR_OK);
  ASSERT_EQ(f->C_FindObjectsFinal(lease->handle()), CKR_OK);
  ASSERT_EQ(count, 1u);

  CK_KEY_TYPE type = 0;
  CK_ULONG value_len = 0;
  CK_BBOOL token_object = 0, is_private = 0, sensitive = 0, extractable = 1, never_extractable = 0,
           always_sensitive = 0, wrap = 1, unwrap = 1, derive = 1;
  CK_ATTRIBUTE attributes[] = {
      {CKA_KEY_TYPE, &type, sizeof(type)},
      {CKA_VALUE_LEN, &value_len, sizeof(value_len)},
      {CKA_TOKEN, &token_object, sizeof(token_object)},
      {CKA_PRIVATE, &is_private, sizeof(is_private)},
      {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
      {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
      {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof(never_extractable)},
      {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof(always_sensitive)},
      {CKA_WRAP, &wrap, sizeof(wrap)},
      {CKA_UNWRAP, &unwrap, sizeof(unwrap)},
      {CKA_DERIVE, &derive, sizeof(derive)},
  };
  ASSERT_EQ(f->C_GetAttributeValue(lease->handle(), key, attributes, std::size(attributes)),
            CKR_OK);
  EXPECT_EQ(type, CKK_AES);
  EXPECT_EQ(value_len, 32u);
  EXPECT_EQ(token_object, CK_TRUE);
  EXPECT_EQ(is_private, CK_TRUE);
  EXPECT_EQ(sensitive, CK_TRUE);
  EXPECT_EQ(extractable, CK_FALSE);
  EXPECT_EQ(never_extractable, CK_TRUE);
  EXPECT_EQ(always_sensitive, CK_TRUE);
  EXPECT_EQ(wrap, CK_FALSE);
  EXPECT_EQ(unwrap, CK_FALSE);
  EXPECT_EQ(derive, CK_FALSE);

  // The token will not tell anyone the key's value.
  unsigned char value[32];
  CK_ATTRIBUTE secret = {CKA_VALUE, value, sizeof(value)};
  EXPECT_EQ(f->C_GetAttributeValue(lease->handle(), key, &secret, 1), CKR_ATTRIBUTE_SENSITIVE);
}

// FORMAT.md "PKCS#11 root-wrapped blob", byte by byte, with a key whose
// value the test knows (imported, so the provider warns but accepts it).
TEST_F(Pkcs11ProviderTest, BlobIsTheDocumentedFormat) {
  const std::string key_value = "0123456789abcdef0123456789ABCDEF";
  MakeRawKey({.label = "known", .value = key_value});
  auto provider = MustOpen(Options("known", /*create=*/false));
  ASSERT_TRUE(provider);
  auto aead = crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, Secret(key_value));
  ASSERT_TRUE(aead.ok()) << aead.status();
  const std::string aad = absl::StrCat(absl::string_view("clavis/pkcs11-root-wrap/v1\0", 27), kAd);

  // What the provider writes, opened with software AES-256-GCM.
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("tenant master key"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();
  ASSERT_EQ(blob->size(), 1 + 12 + 17 + 16);
  EXPECT_EQ(static_cast<uint8_t>((*blob)[0]), 0x11);
  absl::StatusOr<std::string> opened = (*aead)->Open(blob->substr(1, 12), blob->substr(13), aad);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "tenant master key");

  // What software writes by the spec, opened by the provider.
  const std::string nonce = "fixed nonce.";
  absl::StatusOr<std::string> sealed = (*aead)->Seal(nonce, "made outside", aad);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  absl::StatusOr<crypto::SecretBytes> unwrapped =
      provider->Unwrap(absl::StrCat("\x11", nonce, *sealed), kAd);
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
  EXPECT_EQ(unwrapped->view(), "made outside");
  // The in-memory providers' format byte does not open here.
  ExpectUnwrapFails(*provider, absl::StrCat("\x01", nonce, *sealed), kAd);
}

TEST_F(Pkcs11ProviderTest, DescribeNamesTokenKeyAndModuleOnly) {
  auto provider = MustOpen(Options());
  ASSERT_TRUE(provider);
  EXPECT_EQ(provider->Describe(),
            absl::StrCat("pkcs11:token=clavis-test key=root module=", kSoftHsmModule));
}

TEST_F(Pkcs11ProviderTest, MissingKeyIsNotFoundUnlessCreationIsAllowed) {
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(Options("absent", /*create=*/false), Secret(kPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kNotFound) << provider.status();
  EXPECT_THAT(provider.status().message(),
              HasSubstr("no AES secret key labelled 'absent' on PKCS#11 token 'clavis-test'"));
  EXPECT_THAT(provider.status().message(), HasSubstr("create_key_if_missing"));

  // Created once; the next open finds that same key.
  auto created = MustOpen(Options("absent", /*create=*/true));
  ASSERT_TRUE(created);
  absl::StatusOr<std::string> blob = created->Wrap(Secret("k"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();
  auto found = MustOpen(Options("absent", /*create=*/true));
  ASSERT_TRUE(found);
  EXPECT_TRUE(found->Unwrap(*blob, kAd).ok());
}

TEST_F(Pkcs11ProviderTest, WrongPinIsPermissionDeniedAndNeverShown) {
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(Options(), Secret(kWrongPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kPermissionDenied) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr("wrong PIN for PKCS#11 token 'clavis-test'"));
  EXPECT_THAT(provider.status().message(), HasSubstr("CKR_PIN_INCORRECT"));
  EXPECT_THAT(provider.status().message(), Not(HasSubstr(kWrongPin)));
  EXPECT_THAT(provider.status().message(), Not(HasSubstr(kPin)));
}

TEST_F(Pkcs11ProviderTest, WrongPinIsRefusedWhileTheProcessIsLoggedIn) {
  auto logged_in = MustOpen(Options());
  ASSERT_TRUE(logged_in);
  // The token itself would now accept anything (CKR_USER_ALREADY_LOGGED_IN).
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(Options(), Secret(kWrongPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kPermissionDenied) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr("wrong PIN for PKCS#11 token 'clavis-test'"));
  EXPECT_THAT(provider.status().message(), Not(HasSubstr(kWrongPin)));
  EXPECT_THAT(provider.status().message(), Not(HasSubstr(kPin)));
  // A PIN that only starts like the right one is wrong too.
  EXPECT_EQ(Pkcs11RootKeyProvider::Open(Options(), Secret("user-pin-739")).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(Pkcs11ProviderTest, MissingTokenIsNotFoundListingTheLabelsSeen) {
  ASSERT_TRUE(MakeSoftHsmToken(dir_.path(), "second-token", kPin));
  Pkcs11RootKeyOptions options = Options();
  options.token_label = "no-such-token";
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(options, Secret(kPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kNotFound) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr("no PKCS#11 token labelled 'no-such-token'"));
  EXPECT_THAT(provider.status().message(), HasSubstr("'clavis-test'"));
  EXPECT_THAT(provider.status().message(), HasSubstr("'second-token'"));
}

TEST_F(Pkcs11ProviderTest, ModuleThatCannotBeLoadedIsNamed) {
  Pkcs11RootKeyOptions options = Options();
  options.module_path = dir_.Join("no-such-module.so");
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(options, Secret(kPin));
  EXPECT_EQ(provider.status().code(), absl::StatusCode::kNotFound) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr(options.module_path));

  options.module_path = dir_.Join("softhsm2.conf");  // exists, but is no library
  provider = Pkcs11RootKeyProvider::Open(options, Secret(kPin));
  EXPECT_EQ(provider.status().code(), absl::StatusCode::kFailedPrecondition) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr("cannot load PKCS#11 module"));
}

TEST_F(Pkcs11ProviderTest, EmptyOptionsOrPinAreInvalid) {
  for (int i = 0; i < 3; ++i) {
    Pkcs11RootKeyOptions options = Options();
    (i == 0 ? options.module_path : i == 1 ? options.token_label : options.key_label).clear();
    EXPECT_EQ(Pkcs11RootKeyProvider::Open(options, Secret(kPin)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Pkcs11RootKeyProvider::Open(Options(), crypto::SecretBytes()).status().code(),
            absl::StatusCode::kInvalidArgument);
  Pkcs11RootKeyOptions options = Options();
  options.token_label = std::string(33, 't');
  EXPECT_EQ(Pkcs11RootKeyProvider::Open(options, Secret(kPin)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(Pkcs11ProviderTest, ExtractableKeyIsRefusedEvenWithCreation) {
  MakeRawKey({.label = "loose", .extractable = true});
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(Options("loose", /*create=*/true), Secret(kPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kFailedPrecondition) << provider.status();
  EXPECT_THAT(provider.status().message(),
              HasSubstr("key 'loose' on PKCS#11 token 'clavis-test' cannot be the root key"));
  EXPECT_THAT(provider.status().message(), HasSubstr("extractable (CKA_EXTRACTABLE"));
}

TEST_F(Pkcs11ProviderTest, NonSensitiveKeyIsRefused) {
  MakeRawKey({.label = "readable", .sensitive = false});
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(Options("readable", /*create=*/false), Secret(kPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kFailedPrecondition) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr("not sensitive (CKA_SENSITIVE"));
}

TEST_F(Pkcs11ProviderTest, Aes128KeyIsRefused) {
  MakeRawKey({.label = "short", .bytes = 16});
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(Options("short", /*create=*/false), Secret(kPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kFailedPrecondition) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr("128-bit key, not 256-bit"));
}

TEST_F(Pkcs11ProviderTest, PublicKeyObjectIsRefused) {
  MakeRawKey({.label = "public", .is_private = false});
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(Options("public", /*create=*/false), Secret(kPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kFailedPrecondition) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr("public object (CKA_PRIVATE"));
}

TEST_F(Pkcs11ProviderTest, AmbiguousKeyLabelIsRefused) {
  MakeRawKey({.label = "twice"});
  MakeRawKey({.label = "twice"});
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> provider =
      Pkcs11RootKeyProvider::Open(Options("twice", /*create=*/false), Secret(kPin));
  ASSERT_EQ(provider.status().code(), absl::StatusCode::kFailedPrecondition) << provider.status();
  EXPECT_THAT(provider.status().message(), HasSubstr("more than one secret key is labelled"));
}

TEST_F(Pkcs11ProviderTest, ConcurrentCallsShareTheSessionPool) {
  Pkcs11RootKeyOptions options = Options();
  options.max_sessions = 3;  // fewer sessions than threads: callers wait their turn
  auto provider = MustOpen(options);
  auto second = MustOpen(Options("root", /*create=*/false));  // shares the token's pool
  ASSERT_TRUE(provider && second);
  constexpr int kThreads = 8;
  constexpr int kRounds = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      RootKeyProvider& mine = t % 2 == 0 ? *provider : *second;
      RootKeyProvider& other = t % 2 == 0 ? *second : *provider;
      for (int i = 0; i < kRounds; ++i) {
        const std::string plaintext = absl::StrCat("key material ", t, "/", i);
        const std::string ad = absl::StrCat(kAd, "/", t, "/", i);
        absl::StatusOr<std::string> blob = mine.Wrap(Secret(plaintext), ad);
        if (!blob.ok()) {
          ++failures;
          continue;
        }
        absl::StatusOr<crypto::SecretBytes> out = other.Unwrap(*blob, ad);
        if (!out.ok() || out->view() != plaintext) ++failures;
        if (other.Unwrap(*blob, kAd).status().code() != absl::StatusCode::kDataLoss) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(Pkcs11ProviderTest, LogsInAgainWhenTheTokenDropsEverySession) {
  auto provider = MustOpen(Options());
  ASSERT_TRUE(provider);
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("survives"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();

  // As after an HSM restart: every session of the process on the token is
  // gone, and with them the login.
  std::shared_ptr<Pkcs11Token> token = RawToken();
  ASSERT_NE(token, nullptr);
  ASSERT_EQ(token->functions()->C_CloseAllSessions(token->slot()), CKR_OK);

  absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->view(), "survives");
  absl::StatusOr<std::string> again = provider->Wrap(Secret("after"), kAd);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_GT(token->login_generation(), 0u);
}

}  // namespace
}  // namespace clavis::kms
