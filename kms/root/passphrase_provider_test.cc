#include "kms/root/passphrase_provider.h"

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "crypto/encoding.h"
#include "crypto/kdf.h"
#include "crypto/password_kdf.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"
#include "kms/root/root_key_testing.h"
#include "kms/root/root_key_wrapping.h"

namespace clavis::kms {
namespace {

using ::clavis::kms::root_testing::CheckWrapContract;
using ::clavis::kms::root_testing::ExpectNoKeyBytes;
using ::clavis::kms::root_testing::FileMode;
using ::clavis::kms::root_testing::ReadFile;
using ::clavis::kms::root_testing::ScopedTempDir;
using ::clavis::kms::root_testing::WriteFile;

constexpr absl::string_view kPassphrase = "correct horse battery staple";

// Small Argon2id costs so the tests run fast; production uses the defaults.
crypto::Argon2idParams FastParams() {
  crypto::Argon2idParams params;
  params.ops_limit = 1;
  params.mem_limit_bytes = 64 << 10;
  return params;
}

PassphraseRootKeyOptions CreateOptions() {
  PassphraseRootKeyOptions options;
  options.create_if_missing = true;
  options.new_file_params = FastParams();
  return options;
}

PassphraseRootKeyOptions OpenOptions() {
  PassphraseRootKeyOptions options;
  options.create_if_missing = false;
  options.new_file_params = FastParams();
  return options;
}

crypto::SecretBytes Passphrase(absl::string_view p = kPassphrase) {
  return crypto::SecretBytes::CopyOf(p);
}

std::unique_ptr<PassphraseRootKeyProvider> OpenOrDie(const std::string& path,
                                                     absl::string_view passphrase,
                                                     const PassphraseRootKeyOptions& options) {
  absl::StatusOr<std::unique_ptr<PassphraseRootKeyProvider>> p =
      PassphraseRootKeyProvider::Open(path, Passphrase(passphrase), options);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

absl::Status OpenError(const std::string& path, absl::string_view passphrase = kPassphrase) {
  absl::StatusOr<std::unique_ptr<PassphraseRootKeyProvider>> p =
      PassphraseRootKeyProvider::Open(path, Passphrase(passphrase), OpenOptions());
  EXPECT_FALSE(p.ok());
  return p.status();
}

// A fixture with a params file made with kPassphrase.
class PassphraseRootKeyProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = PassphraseRootKeyProvider::ParamsPathIn(dir_.Join("data"));
    created_ = OpenOrDie(path_, kPassphrase, CreateOptions());
    ASSERT_NE(created_, nullptr);
    original_ = ReadFile(path_);
  }

  // The root key the documented derivation gives for the current file.
  crypto::SecretBytes DocumentedKey(absl::string_view passphrase = kPassphrase) {
    std::vector<std::string> lines = absl::StrSplit(original_, '\n');
    absl::StatusOr<std::string> salt = crypto::Base64Decode(absl::string_view(lines[2]).substr(5));
    EXPECT_TRUE(salt.ok()) << salt.status();
    absl::StatusOr<crypto::SecretBytes> key =
        crypto::Argon2id(Passphrase(passphrase), salt.value_or(""), FastParams(), 32);
    EXPECT_TRUE(key.ok()) << key.status();
    return key.ok() ? *std::move(key) : crypto::SecretBytes();
  }

  // Writes `contents` as the params file and expects Open to fail.
  absl::Status OpenWithContents(absl::string_view contents) {
    WriteFile(path_, contents);
    return OpenError(path_);
  }

  ScopedTempDir dir_;
  std::string path_;
  std::unique_ptr<PassphraseRootKeyProvider> created_;
  std::string original_;
};

// Recomputes the sha256 line after the body was edited on purpose.
std::string WithChecksum(absl::string_view body) {
  return absl::StrCat(body, "sha256=", crypto::HexEncode(crypto::Sha256(body)), "\n");
}

std::string BodyOf(absl::string_view file) {
  const size_t last = file.substr(0, file.size() - 1).rfind('\n');
  return std::string(file.substr(0, last + 1));
}

TEST_F(PassphraseRootKeyProviderTest, ReopenWithThePassphraseHasTheSameKey) {
  std::unique_ptr<PassphraseRootKeyProvider> reopened =
      OpenOrDie(path_, kPassphrase, OpenOptions());
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->Describe(), created_->Describe());

  const crypto::SecretBytes secret = crypto::RandomSecret(32);
  absl::StatusOr<std::string> blob = created_->Wrap(secret, "ad");
  ASSERT_TRUE(blob.ok()) << blob.status();
  absl::StatusOr<crypto::SecretBytes> out = reopened->Unwrap(*blob, "ad");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(*out == secret);
  // The file is only written once.
  EXPECT_EQ(ReadFile(path_), original_);
}

TEST_F(PassphraseRootKeyProviderTest, WrapContract) {
  std::unique_ptr<PassphraseRootKeyProvider> reopened =
      OpenOrDie(path_, kPassphrase, OpenOptions());
  // Same passphrase, another params file (another salt): another root key.
  std::unique_ptr<PassphraseRootKeyProvider> other =
      OpenOrDie(dir_.Join("other.params"), kPassphrase, CreateOptions());
  ASSERT_TRUE(reopened && other);
  EXPECT_NE(other->Describe().substr(other->Describe().size() - 8),
            created_->Describe().substr(created_->Describe().size() - 8));
  CheckWrapContract(*created_, *reopened, *other);
}

TEST_F(PassphraseRootKeyProviderTest, CreatedFileIsPrivateAndInTheDocumentedFormat) {
  EXPECT_EQ(FileMode(path_), 0600);
  EXPECT_EQ(FileMode(dir_.Join("data")), 0700);
  EXPECT_EQ(path_, dir_.Join("data/root-passphrase.params"));

  std::vector<std::string> lines = absl::StrSplit(original_, '\n');
  ASSERT_EQ(lines.size(), 8u) << original_;  // 7 lines and the final newline
  EXPECT_EQ(lines[0], "clavis-root-passphrase v1");
  EXPECT_EQ(lines[1], "kdf=argon2id");
  ASSERT_TRUE(absl::StartsWith(lines[2], "salt="));
  absl::StatusOr<std::string> salt = crypto::Base64Decode(absl::string_view(lines[2]).substr(5));
  ASSERT_TRUE(salt.ok()) << salt.status();
  EXPECT_EQ(salt->size(), 16u);
  EXPECT_EQ(lines[3], "ops_limit=1");
  EXPECT_EQ(lines[4], "mem_limit_bytes=65536");
  ASSERT_TRUE(absl::StartsWith(lines[5], "kcv="));
  EXPECT_EQ(lines[5].size(), 4u + 8u);
  EXPECT_EQ(lines[6],
            absl::StrCat("sha256=", crypto::HexEncode(crypto::Sha256(BodyOf(original_)))));
  EXPECT_EQ(lines[7], "");

  // The root key is Argon2id(passphrase, salt) and the kcv is its check value.
  const crypto::SecretBytes key = DocumentedKey();
  absl::StatusOr<std::string> kcv = RootKeyCheckValue(key);
  ASSERT_TRUE(kcv.ok()) << kcv.status();
  EXPECT_EQ(lines[5], absl::StrCat("kcv=", *kcv));
  absl::StatusOr<RootKeyWrapper> by_hand = RootKeyWrapper::New(key.Clone());
  ASSERT_TRUE(by_hand.ok()) << by_hand.status();
  absl::StatusOr<std::string> blob = created_->Wrap(crypto::RandomSecret(32), "x");
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_TRUE(by_hand->Unwrap(*blob, "x").ok());

  // Nothing left behind but the params file.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_.Join("data"))) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"root-passphrase.params"});
}

TEST_F(PassphraseRootKeyProviderTest, DescribeShowsParamsAndKcvButNoSecrets) {
  const std::string d = created_->Describe();
  EXPECT_TRUE(
      absl::StartsWith(d, absl::StrCat("passphrase:", path_, " argon2id(ops=1,mem=64KiB) kcv=")))
      << d;
  std::vector<std::string> lines = absl::StrSplit(original_, '\n');
  EXPECT_TRUE(absl::EndsWith(d, absl::StrCat(" ", lines[5]))) << d;
  ExpectNoKeyBytes(d, DocumentedKey());
  EXPECT_FALSE(absl::StrContains(d, "horse")) << d;
}

TEST_F(PassphraseRootKeyProviderTest, WrongPassphraseIsRefusedAtOpen) {
  for (absl::string_view wrong : {"correct horse battery stapl", "correct horse battery staple\n",
                                  "Correct horse battery staple", "x"}) {
    absl::Status s = OpenError(path_, wrong);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), "wrong root passphrase")) << s;
    EXPECT_FALSE(absl::StrContains(s.message(), "horse")) << s;
    ExpectNoKeyBytes(s.message(), DocumentedKey());
    ExpectNoKeyBytes(s.message(), DocumentedKey(wrong));
  }
  // A wrong passphrase never rewrites the file.
  EXPECT_EQ(ReadFile(path_), original_);
}

TEST_F(PassphraseRootKeyProviderTest, WrongPassphraseIsRefusedEvenWithCreateIfMissing) {
  absl::StatusOr<std::unique_ptr<PassphraseRootKeyProvider>> p =
      PassphraseRootKeyProvider::Open(path_, Passphrase("nope"), CreateOptions());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReadFile(path_), original_);
}

TEST_F(PassphraseRootKeyProviderTest, RecordedParamsWinOverOptions) {
  PassphraseRootKeyOptions options = OpenOptions();
  options.new_file_params.ops_limit = 2;
  options.new_file_params.mem_limit_bytes = 128 << 10;
  std::unique_ptr<PassphraseRootKeyProvider> p = OpenOrDie(path_, kPassphrase, options);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->Describe(), created_->Describe());
}

TEST_F(PassphraseRootKeyProviderTest, EmptyPassphraseIsRefused) {
  absl::StatusOr<std::unique_ptr<PassphraseRootKeyProvider>> p =
      PassphraseRootKeyProvider::Open(path_, crypto::SecretBytes(), OpenOptions());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PassphraseRootKeyProviderOpenTest, MissingFileWithoutCreateIsNotFound) {
  ScopedTempDir dir;
  const std::string path = dir.Join("root-passphrase.params");
  absl::Status s = OpenError(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(PassphraseRootKeyProviderOpenTest, ParamsBelowTheMinimumAreRefusedAndNothingIsWritten) {
  ScopedTempDir dir;
  const std::string path = dir.Join("root-passphrase.params");
  PassphraseRootKeyOptions options = CreateOptions();
  options.new_file_params.mem_limit_bytes = 1024;  // libsodium's minimum is 8 KiB
  absl::StatusOr<std::unique_ptr<PassphraseRootKeyProvider>> p =
      PassphraseRootKeyProvider::Open(path, Passphrase(), options);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(PassphraseRootKeyProviderOpenTest, ParamsPathIn) {
  EXPECT_EQ(PassphraseRootKeyProvider::ParamsPathIn("/var/lib/clavis"),
            "/var/lib/clavis/root-passphrase.params");
  EXPECT_EQ(PassphraseRootKeyProvider::ParamsPathIn("/var/lib/clavis/"),
            "/var/lib/clavis/root-passphrase.params");
  EXPECT_EQ(PassphraseRootKeyProvider::ParamsPathIn(""), "root-passphrase.params");
}

TEST_F(PassphraseRootKeyProviderTest, RefusesOtherFiles) {
  for (absl::string_view contents :
       {absl::string_view("garbage"), absl::string_view("{\"salt\": \"x\"}\n"),
        absl::string_view("clavis-root-key v1\nAAAA\n"), absl::string_view("\0\0\0", 3)}) {
    absl::Status s = OpenWithContents(contents);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "not a Clavis root passphrase params file")) << s;
  }
  absl::Status s = OpenWithContents(std::string(5000, 'x'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

TEST_F(PassphraseRootKeyProviderTest, RefusesOtherVersions) {
  std::string v2 = original_;
  v2.replace(0, 25, "clavis-root-passphrase v2");
  absl::Status s = OpenWithContents(WithChecksum(BodyOf(v2)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "unsupported format version 'v2'")) << s;
}

TEST_F(PassphraseRootKeyProviderTest, RefusesEveryTruncation) {
  for (size_t n = 0; n < original_.size(); ++n) {
    SCOPED_TRACE(absl::StrCat("truncated to ", n, " bytes"));
    absl::Status s = OpenWithContents(original_.substr(0, n));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "damaged")) << s;
  }
}

TEST_F(PassphraseRootKeyProviderTest, RefusesEveryFlippedBitAsDamageNotAsWrongPassphrase) {
  // After the header, any change is caught by the checksum (or the format
  // checks) and reported as damage, not blamed on the operator's passphrase.
  for (size_t i = 26; i < original_.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string altered = original_;
      altered[i] = static_cast<char>(altered[i] ^ (1 << bit));
      SCOPED_TRACE(absl::StrCat("byte ", i, " bit ", bit));
      absl::Status s = OpenWithContents(altered);
      EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    }
  }
}

TEST_F(PassphraseRootKeyProviderTest, RefusesMalformedFieldsEvenWithAValidChecksum) {
  const std::string body = BodyOf(original_);
  std::vector<std::string> lines = absl::StrSplit(body, '\n');
  auto with_line = [&](int index, absl::string_view replacement) {
    std::vector<std::string> edited = lines;
    edited[index] = std::string(replacement);
    return WithChecksum(absl::StrJoin(edited, "\n"));
  };
  for (const std::string& contents : {
           with_line(1, "kdf=scrypt"),
           with_line(2, "salt=AAAA"),
           with_line(2, "salt=!!!!!!!!!!!!!!!!!!!!!!!!"),
           with_line(3, "ops_limit=0"),
           with_line(3, "ops_limit=+1"),
           with_line(3, "ops_limit=01"),
           with_line(3, "ops_limit= 1"),
           with_line(3, "ops_limit=99999999999999999999999"),
           with_line(4, "mem_limit_bytes=lots"),
           // Costs that would hang every start or exhaust memory (the
           // checksum is no MAC: anyone who can write the file can set them).
           with_line(3, "ops_limit=33"),
           with_line(3, "ops_limit=4294967295"),
           with_line(4, "mem_limit_bytes=4294967297"),
           with_line(4, "mem_limit_bytes=1099511627776"),
           with_line(5, "kcv=ABCDEF01"),
           with_line(5, "kcv=abc"),
           with_line(1, "salt=x"),
           WithChecksum(absl::StrCat(body, "extra=1\n")),
           WithChecksum(absl::StrReplaceAll(body, {{"kdf=argon2id\n", ""}})),
           WithChecksum(absl::StrCat(lines[0], "\n")),
       }) {
    absl::Status s = OpenWithContents(contents);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s << "\n" << contents;
  }
}

TEST_F(PassphraseRootKeyProviderTest, DeliberateSaltEditLooksLikeAWrongPassphrase) {
  // Documented: the checksum is not a MAC, so someone who edits the salt and
  // recomputes it gets "wrong root passphrase" — never a different key.
  std::vector<std::string> lines = absl::StrSplit(BodyOf(original_), '\n');
  lines[2] = absl::StrCat("salt=", crypto::Base64Encode(crypto::RandomBytes(16)));
  absl::Status s = OpenWithContents(WithChecksum(absl::StrJoin(lines, "\n")));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
}

TEST(PassphraseRootKeyProviderOpenTest, ConcurrentCreatorsAgreeOnOneSalt) {
  for (int round = 0; round < 3; ++round) {
    ScopedTempDir dir;
    const std::string path = dir.Join("d/root-passphrase.params");
    constexpr int kThreads = 6;
    std::vector<std::string> describe(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        absl::StatusOr<std::unique_ptr<PassphraseRootKeyProvider>> p =
            PassphraseRootKeyProvider::Open(path, Passphrase(), CreateOptions());
        describe[i] = p.ok() ? (*p)->Describe() : p.status().ToString();
      });
    }
    for (std::thread& t : threads) t.join();
    for (int i = 1; i < kThreads; ++i) EXPECT_EQ(describe[i], describe[0]);
    std::unique_ptr<PassphraseRootKeyProvider> after = OpenOrDie(path, kPassphrase, OpenOptions());
    ASSERT_NE(after, nullptr);
    EXPECT_EQ(after->Describe(), describe[0]);
  }
}

}  // namespace
}  // namespace clavis::kms
