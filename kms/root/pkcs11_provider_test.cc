// Pkcs11RootKeyProvider against a real SoftHSM2 token, made for each test in
// its own temporary directory by deploy/softhsm/setup-token.sh.
#include "kms/root/pkcs11_provider.h"

#include <atomic>
#include <cstring>
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
constexpr char kNewPin[] = "changed-pin-5820";
constexpr char kAd[] = "tenants/acme/keys/crm/versions/1";

crypto::SecretBytes Secret(absl::string_view s) { return crypto::SecretBytes::CopyOf(s); }

CK_UTF8CHAR_PTR PinBytes(const char* pin) {
  return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin));
}

// Stands between the providers and SoftHSM2 for one test: replaces entries
// of the module's function table (one per process, shared by everyone
// using the module; SoftHSM2's is writable) with ones that count calls and
// fail on cue, and puts the originals back when it goes.
class TokenSpy {
 public:
  explicit TokenSpy(CK_FUNCTION_LIST_PTR functions) : functions_(functions), real_(*functions) {
    current_ = this;
    functions->C_Login = &Login;
    functions->C_OpenSession = &OpenSession;
    functions->C_CloseSession = &CloseSession;
    functions->C_GetTokenInfo = &GetTokenInfo;
    functions->C_FindObjectsInit = &FindObjectsInit;
    functions->C_EncryptInit = &EncryptInit;
    functions->C_DecryptInit = &DecryptInit;
    functions->C_Decrypt = &Decrypt;
  }
  ~TokenSpy() {
    *functions_ = real_;
    current_ = nullptr;
  }
  TokenSpy(const TokenSpy&) = delete;
  TokenSpy& operator=(const TokenSpy&) = delete;

  // The next `times` calls (all of them if negative) return `rv` without
  // reaching the token.
  void FailFindObjectsInit(CK_RV rv, int times = -1) { find_init_.Set(rv, times); }
  void FailEncryptInit(CK_RV rv, int times = -1) { encrypt_init_.Set(rv, times); }
  void FailDecryptInit(CK_RV rv, int times = -1) { decrypt_init_.Set(rv, times); }
  void FailDecrypt(CK_RV rv, int times = -1) { decrypt_.Set(rv, times); }
  void ClearFailures() {
    for (Fault* fault : {&find_init_, &encrypt_init_, &decrypt_init_, &decrypt_}) {
      fault->Set(CKR_OK, 0);
    }
  }
  // C_GetTokenInfo reports these flags as well.
  void SetExtraTokenFlags(CK_FLAGS flags) { extra_token_flags_ = flags; }

  int logins() const { return logins_; }
  int failed_logins() const { return failed_logins_; }
  // Sessions C_OpenSession opened minus those C_CloseSession closed.
  int sessions_left_open() const { return opened_ - closed_; }

 private:
  struct Fault {
    std::atomic<CK_RV> rv{CKR_OK};
    std::atomic<int> times{0};
    void Set(CK_RV fault_rv, int fault_times) {
      times = 0;
      rv = fault_rv;
      times = fault_times;
    }
    // The injected failure, or CKR_OK to let the call through.
    CK_RV Take() {
      int left = times.load();
      while (left != 0) {
        if (left < 0 || times.compare_exchange_weak(left, left - 1)) return rv.load();
      }
      return CKR_OK;
    }
  };

  static CK_RV Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                     CK_ULONG pin_len) {
    const CK_RV rv = current_->real_.C_Login(session, user, pin, pin_len);
    ++current_->logins_;
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) ++current_->failed_logins_;
    return rv;
  }
  static CK_RV OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application,
                           CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session) {
    const CK_RV rv = current_->real_.C_OpenSession(slot, flags, application, notify, session);
    if (rv == CKR_OK) ++current_->opened_;
    return rv;
  }
  static CK_RV CloseSession(CK_SESSION_HANDLE session) {
    const CK_RV rv = current_->real_.C_CloseSession(session);
    if (rv == CKR_OK) ++current_->closed_;
    return rv;
  }
  static CK_RV GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    const CK_RV rv = current_->real_.C_GetTokenInfo(slot, info);
    if (rv == CKR_OK) info->flags |= current_->extra_token_flags_.load();
    return rv;
  }
  static CK_RV FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR query, CK_ULONG count) {
    if (const CK_RV rv = current_->find_init_.Take(); rv != CKR_OK) return rv;
    return current_->real_.C_FindObjectsInit(session, query, count);
  }
  static CK_RV EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                           CK_OBJECT_HANDLE key) {
    if (const CK_RV rv = current_->encrypt_init_.Take(); rv != CKR_OK) return rv;
    return current_->real_.C_EncryptInit(session, mechanism, key);
  }
  static CK_RV DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                           CK_OBJECT_HANDLE key) {
    if (const CK_RV rv = current_->decrypt_init_.Take(); rv != CKR_OK) return rv;
    return current_->real_.C_DecryptInit(session, mechanism, key);
  }
  static CK_RV Decrypt(CK_SESSION_HANDLE session, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                       CK_ULONG_PTR out_len) {
    if (const CK_RV rv = current_->decrypt_.Take(); rv != CKR_OK) {
      // As a real failure would: the operation ends with the call.
      CK_ULONG size = *out_len;
      current_->real_.C_Decrypt(session, in, in_len, out, &size);
      std::memset(out, 0, *out_len);
      return rv;
    }
    return current_->real_.C_Decrypt(session, in, in_len, out, out_len);
  }

  static inline TokenSpy* current_ = nullptr;
  const CK_FUNCTION_LIST_PTR functions_;
  const CK_FUNCTION_LIST real_;
  Fault find_init_, encrypt_init_, decrypt_init_, decrypt_;
  std::atomic<CK_FLAGS> extra_token_flags_{0};
  std::atomic<int> logins_{0}, failed_logins_{0}, opened_{0}, closed_{0};
};

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

  // Sets a CK_BBOOL attribute of the secret key labelled `label`.
  static void SetKeyFlag(const std::string& label, CK_ATTRIBUTE_TYPE type, CK_BBOOL value) {
    std::shared_ptr<Pkcs11Token> token = RawToken();
    ASSERT_NE(token, nullptr);
    absl::StatusOr<CK_SESSION_HANDLE> session = token->OpenReadWriteSession();
    ASSERT_TRUE(session.ok()) << session.status();
    CK_FUNCTION_LIST_PTR f = token->functions();
    CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
    CK_ATTRIBUTE query[] = {{CKA_CLASS, &key_class, sizeof(key_class)},
                            {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_ULONG count = 0;
    CK_RV rv = f->C_FindObjectsInit(*session, query, 2);
    if (rv == CKR_OK) rv = f->C_FindObjects(*session, &key, 1, &count);
    f->C_FindObjectsFinal(*session);
    CK_ATTRIBUTE attribute = {type, &value, sizeof(value)};
    if (rv == CKR_OK && count == 1) rv = f->C_SetAttributeValue(*session, key, &attribute, 1);
    token->CloseSession(*session);
    ASSERT_EQ(count, 1u);
    ASSERT_EQ(rv, CKR_OK) << root_internal::Pkcs11ErrorName(rv);
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

// A PIN changed on the HSM while clavisd runs, then the login lost: one
// wrong PIN, not one per request (tokens lock the user PIN after a few).
TEST_F(Pkcs11ProviderTest, StalePinCostsOneWrongPinThenEveryCallIsPermissionDenied) {
  auto provider = MustOpen(Options());
  ASSERT_TRUE(provider);
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("stays put"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();
  std::shared_ptr<Pkcs11Token> token = RawToken();
  ASSERT_NE(token, nullptr);
  CK_FUNCTION_LIST_PTR f = token->functions();
  {
    absl::StatusOr<CK_SESSION_HANDLE> session = token->OpenReadWriteSession();
    ASSERT_TRUE(session.ok()) << session.status();
    ASSERT_EQ(
        f->C_SetPIN(*session, PinBytes(kPin), strlen(kPin), PinBytes(kNewPin), strlen(kNewPin)),
        CKR_OK);
    token->CloseSession(*session);
  }
  TokenSpy spy(f);
  ASSERT_EQ(f->C_CloseAllSessions(token->slot()), CKR_OK);

  constexpr int kThreads = 6;
  constexpr int kRounds = 10;
  std::atomic<int> not_denied{0};
  std::vector<std::thread> threads;
  std::vector<std::string> messages(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        absl::Status s = i % 2 == 0 ? provider->Unwrap(*blob, kAd).status()
                                    : provider->Wrap(Secret("more"), kAd).status();
        if (s.code() != absl::StatusCode::kPermissionDenied) ++not_denied;
        messages[t] = std::string(s.message());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(not_denied.load(), 0);
  EXPECT_EQ(spy.logins(), 1);
  EXPECT_EQ(spy.failed_logins(), 1);
  for (const std::string& message : messages) {
    EXPECT_THAT(message, HasSubstr("PKCS#11 token 'clavis-test' refused the PIN"));
    EXPECT_THAT(message, HasSubstr("CKR_PIN_INCORRECT"));
    EXPECT_THAT(message, HasSubstr("fix the PIN and restart clavisd"));
    EXPECT_THAT(message, Not(HasSubstr(kPin)));
    EXPECT_THAT(message, Not(HasSubstr(kNewPin)));
  }
  // Another provider on the same token with the same PIN: refused too,
  // without a login.
  absl::StatusOr<std::unique_ptr<Pkcs11RootKeyProvider>> late =
      Pkcs11RootKeyProvider::Open(Options("root", /*create=*/false), Secret(kPin));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kPermissionDenied) << late.status();
  EXPECT_EQ(spy.logins(), 1);

  // The token is not locked: the new PIN logs in.
  CK_TOKEN_INFO info;
  ASSERT_EQ(f->C_GetTokenInfo(token->slot(), &info), CKR_OK);
  EXPECT_EQ(info.flags & CKF_USER_PIN_LOCKED, 0u);
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  ASSERT_EQ(f->C_OpenSession(token->slot(), CKF_SERIAL_SESSION, nullptr, nullptr, &session),
            CKR_OK);
  EXPECT_EQ(f->C_Login(session, CKU_USER, PinBytes(kNewPin), strlen(kNewPin)), CKR_OK);
  EXPECT_EQ(f->C_Logout(session), CKR_OK);
  EXPECT_EQ(f->C_CloseSession(session), CKR_OK);
}

TEST_F(Pkcs11ProviderTest, NoLoginAgainWhileThePinIsAtItsFinalTryOrLocked) {
  auto provider = MustOpen(Options());
  ASSERT_TRUE(provider);
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("waits"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();
  std::shared_ptr<Pkcs11Token> token = RawToken();
  ASSERT_NE(token, nullptr);
  TokenSpy spy(token->functions());
  ASSERT_EQ(token->functions()->C_CloseAllSessions(token->slot()), CKR_OK);

  for (CK_FLAGS flag : {CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED}) {
    spy.SetExtraTokenFlags(flag);
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
      ASSERT_EQ(out.status().code(), absl::StatusCode::kPermissionDenied) << out.status();
      EXPECT_THAT(out.status().message(),
                  HasSubstr(flag == CKF_USER_PIN_LOCKED ? "is locked" : "CKF_USER_PIN_FINAL_TRY"));
    }
  }
  EXPECT_EQ(spy.logins(), 0);
  // Nothing was refused: once the token is out of danger, the kept PIN is
  // tried, and works.
  spy.SetExtraTokenFlags(0);
  absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->view(), "waits");
  EXPECT_EQ(spy.logins(), 1);
  EXPECT_EQ(spy.failed_logins(), 0);
}

// Errors that do not mean the session is gone close it: dropping the
// handle instead would leak a session each time, until the token has none
// left (CKR_SESSION_COUNT).
TEST_F(Pkcs11ProviderTest, TransientTokenErrorsCloseSessionsInsteadOfLeakingThem) {
  Pkcs11RootKeyOptions options = Options();
  options.max_sessions = 2;
  auto provider = MustOpen(options);
  ASSERT_TRUE(provider);
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("kept"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();
  std::shared_ptr<Pkcs11Token> token = RawToken();
  ASSERT_NE(token, nullptr);
  TokenSpy spy(token->functions());

  // The key's handle stops working, so every call looks the key up again,
  // and the lookup fails.
  spy.FailDecryptInit(CKR_KEY_HANDLE_INVALID);
  for (CK_RV rv : {CKR_DEVICE_ERROR, CKR_HOST_MEMORY, CKR_SESSION_COUNT, CKR_DEVICE_MEMORY}) {
    spy.FailFindObjectsInit(rv);
    for (int i = 0; i < 10; ++i) {
      absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
      ASSERT_EQ(out.status().code(), absl::StatusCode::kUnavailable) << out.status();
      EXPECT_THAT(out.status().message(), HasSubstr(root_internal::Pkcs11ErrorName(rv)));
    }
  }
  spy.ClearFailures();
  // The token goes away in the middle of operations.
  for (CK_RV rv : {CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT}) {
    spy.FailDecrypt(rv);
    for (int i = 0; i < 10; ++i) {
      absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
      ASSERT_EQ(out.status().code(), absl::StatusCode::kUnavailable) << out.status();
    }
  }
  spy.ClearFailures();
  EXPECT_LE(spy.sessions_left_open(), static_cast<int>(options.max_sessions));
  absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->view(), "kept");
  EXPECT_LE(spy.sessions_left_open(), static_cast<int>(options.max_sessions));
}

// After a recovery a new session of its own holds the login: pool sessions
// closed afterwards do not log the process out. (Tokens that hand out the
// numbers of closed sessions again would give one to a pool session; the
// token then drops its stale anchor instead of sharing the number. SoftHSM2
// 2.6 numbers sessions afresh, so this test cannot show that part.)
TEST_F(Pkcs11ProviderTest, LoginSurvivesPoolSessionsClosedAfterRecovery) {
  auto provider = MustOpen(Options());
  ASSERT_TRUE(provider);
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("anchored"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();
  std::shared_ptr<Pkcs11Token> token = RawToken();
  ASSERT_NE(token, nullptr);
  ASSERT_EQ(token->functions()->C_CloseAllSessions(token->slot()), CKR_OK);
  ASSERT_TRUE(provider->Unwrap(*blob, kAd).ok());
  const uint64_t generation = token->login_generation();
  EXPECT_GT(generation, 0u);
  {
    // Sessions in which an operation seems stuck are closed: every pool
    // session the call uses.
    TokenSpy spy(token->functions());
    spy.FailDecryptInit(CKR_OPERATION_ACTIVE);
    EXPECT_EQ(provider->Unwrap(*blob, kAd).status().code(), absl::StatusCode::kInternal);
  }
  absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(token->login_generation(), generation) << "the login was lost with the pool sessions";
}

// Only an answer about the blob is DataLoss: a token that refuses the key
// or fails is not "the stored record was altered".
TEST_F(Pkcs11ProviderTest, UnwrapErrorsSayWhetherTheBlobOrTheTokenIsAtFault) {
  auto provider = MustOpen(Options());
  ASSERT_TRUE(provider);
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("payload"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();
  std::string tampered = *blob;
  tampered.back() ^= 0x01;
  // SoftHSM2 2.6 answers a bad tag with CKR_GENERAL_ERROR.
  ExpectUnwrapFails(*provider, tampered, kAd);
  ExpectUnwrapFails(*provider, *blob, "other associated data");

  std::shared_ptr<Pkcs11Token> token = RawToken();
  ASSERT_NE(token, nullptr);
  TokenSpy spy(token->functions());
  struct Case {
    CK_RV rv;
    bool at_init;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {CKR_ENCRYPTED_DATA_INVALID, false, absl::StatusCode::kDataLoss},
      {CKR_ENCRYPTED_DATA_LEN_RANGE, false, absl::StatusCode::kDataLoss},
      {0x42 /* CKR_AEAD_DECRYPT_FAILED */, false, absl::StatusCode::kDataLoss},
      {CKR_KEY_FUNCTION_NOT_PERMITTED, true, absl::StatusCode::kFailedPrecondition},
      {CKR_KEY_TYPE_INCONSISTENT, true, absl::StatusCode::kFailedPrecondition},
      {CKR_MECHANISM_INVALID, true, absl::StatusCode::kFailedPrecondition},
      {CKR_MECHANISM_PARAM_INVALID, true, absl::StatusCode::kFailedPrecondition},
      {CKR_ARGUMENTS_BAD, true, absl::StatusCode::kInternal},
      {CKR_GENERAL_ERROR, true, absl::StatusCode::kInternal},
      {CKR_DEVICE_ERROR, true, absl::StatusCode::kUnavailable},
      {CKR_ARGUMENTS_BAD, false, absl::StatusCode::kInternal},
      {CKR_DEVICE_ERROR, false, absl::StatusCode::kUnavailable},
      {CKR_HOST_MEMORY, false, absl::StatusCode::kUnavailable},
      // The token cannot decrypt at all: its self-test fails too.
      {CKR_GENERAL_ERROR, false, absl::StatusCode::kInternal},
      {CKR_FUNCTION_FAILED, false, absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(root_internal::Pkcs11ErrorName(c.rv),
                              c.at_init ? " from C_DecryptInit" : " from C_Decrypt"));
    if (c.at_init) {
      spy.FailDecryptInit(c.rv);
    } else {
      spy.FailDecrypt(c.rv);
    }
    absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
    spy.ClearFailures();
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), c.code) << out.status();
    if (c.code == absl::StatusCode::kDataLoss) {
      EXPECT_EQ(out.status().message(), root_testing::kUnwrapFailedMessage);
    } else {
      EXPECT_THAT(out.status().message(), HasSubstr(root_internal::Pkcs11ErrorName(c.rv)));
    }
    if (c.code == absl::StatusCode::kFailedPrecondition) {
      EXPECT_THAT(out.status().message(), HasSubstr("refused root key 'root' for decryption"));
    }
  }
  // Nothing stuck: the same blob opens.
  absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->view(), "payload");
}

TEST_F(Pkcs11ProviderTest, KeyChangedToNoLongerDecryptIsFailedPreconditionNamingTheAttribute) {
  auto provider = MustOpen(Options());
  ASSERT_TRUE(provider);
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("payload"), kAd);
  ASSERT_TRUE(blob.ok()) << blob.status();
  SetKeyFlag("root", CKA_DECRYPT, CK_FALSE);
  absl::StatusOr<crypto::SecretBytes> out = provider->Unwrap(*blob, kAd);
  ASSERT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition) << out.status();
  EXPECT_THAT(out.status().message(),
              HasSubstr("key 'root' on PKCS#11 token 'clavis-test' cannot be the root key"));
  EXPECT_THAT(out.status().message(), HasSubstr("CKA_DECRYPT"));
  // The key is unfit for wrapping too now.
  EXPECT_EQ(provider->Wrap(Secret("more"), kAd).status().code(),
            absl::StatusCode::kFailedPrecondition);

  SetKeyFlag("root", CKA_DECRYPT, CK_TRUE);
  out = provider->Unwrap(*blob, kAd);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->view(), "payload");
}

TEST_F(Pkcs11ProviderTest, WrapWithAKeyTheTokenRefusesIsFailedPrecondition) {
  auto provider = MustOpen(Options());
  ASSERT_TRUE(provider);
  std::shared_ptr<Pkcs11Token> token = RawToken();
  ASSERT_NE(token, nullptr);
  TokenSpy spy(token->functions());
  spy.FailEncryptInit(CKR_KEY_FUNCTION_NOT_PERMITTED);
  absl::StatusOr<std::string> blob = provider->Wrap(Secret("payload"), kAd);
  ASSERT_EQ(blob.status().code(), absl::StatusCode::kFailedPrecondition) << blob.status();
  EXPECT_THAT(blob.status().message(), HasSubstr("refused root key 'root' for encryption"));
  spy.FailEncryptInit(CKR_DEVICE_ERROR);
  EXPECT_EQ(provider->Wrap(Secret("payload"), kAd).status().code(), absl::StatusCode::kUnavailable);
  spy.ClearFailures();
  EXPECT_TRUE(provider->Wrap(Secret("payload"), kAd).ok());
}

}  // namespace
}  // namespace clavis::kms
