#include "kms/root/key_file_provider.h"

#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/aead.h"
#include "crypto/encoding.h"
#include "crypto/kdf.h"
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

constexpr absl::string_view kHeader = "clavis-root-key v1\n";

// A known key and the v1 file that holds it.
struct KnownKey {
  crypto::SecretBytes key = crypto::RandomSecret(32);
  std::string Base64() const { return crypto::Base64Encode(key.view()); }
  std::string File() const { return absl::StrCat(kHeader, Base64(), "\n"); }
};

std::unique_ptr<KeyFileRootKeyProvider> OpenOrDie(const std::string& path, bool create) {
  absl::StatusOr<std::unique_ptr<KeyFileRootKeyProvider>> p =
      KeyFileRootKeyProvider::Open(path, create);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

// Opens `contents` as a key file and returns the error (expects one).
absl::Status OpenContents(const ScopedTempDir& dir, absl::string_view contents,
                          mode_t mode = 0600) {
  const std::string path = dir.Join("root.key");
  WriteFile(path, contents, mode);
  absl::StatusOr<std::unique_ptr<KeyFileRootKeyProvider>> p =
      KeyFileRootKeyProvider::Open(path, /*create_if_missing=*/false);
  EXPECT_FALSE(p.ok()) << "opened: " << ReadFile(path).size() << " bytes";
  return p.status();
}

TEST(KeyFileRootKeyProviderTest, CreateThenReopenHasTheSameKey) {
  ScopedTempDir dir;
  const std::string path = dir.Join("root.key");
  std::unique_ptr<KeyFileRootKeyProvider> created = OpenOrDie(path, /*create=*/true);
  ASSERT_NE(created, nullptr);
  std::unique_ptr<KeyFileRootKeyProvider> reopened = OpenOrDie(path, /*create=*/false);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(created->Describe(), reopened->Describe());

  const crypto::SecretBytes secret = crypto::RandomSecret(32);
  absl::StatusOr<std::string> blob = created->Wrap(secret, "ad");
  ASSERT_TRUE(blob.ok()) << blob.status();
  absl::StatusOr<crypto::SecretBytes> out = reopened->Unwrap(*blob, "ad");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(*out == secret);
}

TEST(KeyFileRootKeyProviderTest, WrapContract) {
  ScopedTempDir dir;
  std::unique_ptr<KeyFileRootKeyProvider> a = OpenOrDie(dir.Join("a.key"), true);
  std::unique_ptr<KeyFileRootKeyProvider> a2 = OpenOrDie(dir.Join("a.key"), false);
  std::unique_ptr<KeyFileRootKeyProvider> b = OpenOrDie(dir.Join("b.key"), true);
  ASSERT_TRUE(a && a2 && b);
  CheckWrapContract(*a, *a2, *b);
}

TEST(KeyFileRootKeyProviderTest, CreatedFileIsPrivateAndInTheDocumentedFormat) {
  ScopedTempDir dir;
  const std::string path = dir.Join("new/nested/root.key");
  ASSERT_NE(OpenOrDie(path, /*create=*/true), nullptr);
  EXPECT_EQ(FileMode(path), 0600);
  EXPECT_EQ(FileMode(dir.Join("new/nested")), 0700);
  EXPECT_EQ(FileMode(dir.Join("new")), 0700);

  const std::string contents = ReadFile(path);
  ASSERT_EQ(contents.size(), 64u);
  EXPECT_TRUE(absl::StartsWith(contents, kHeader));
  EXPECT_EQ(contents.back(), '\n');
  absl::StatusOr<std::string> key = crypto::Base64Decode(contents.substr(19, 44));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->size(), 32u);

  // Nothing left behind but the key file.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.Join("new/nested"))) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"root.key"});
}

TEST(KeyFileRootKeyProviderTest, ExistingParentDirectoryIsLeftAlone) {
  ScopedTempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  ASSERT_NE(OpenOrDie(dir.Join("root.key"), true), nullptr);
  EXPECT_EQ(FileMode(dir.path()), 0755);
}

TEST(KeyFileRootKeyProviderTest, CreateIgnoresTheUmask) {
  for (mode_t mask : {0000, 0022, 0077, 0277}) {
    SCOPED_TRACE(absl::StrCat("umask ", mask));
    ScopedTempDir dir;
    const mode_t old = ::umask(mask);
    std::unique_ptr<KeyFileRootKeyProvider> p = OpenOrDie(dir.Join("d/root.key"), true);
    ::umask(old);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(FileMode(dir.Join("d/root.key")), 0600);
    EXPECT_EQ(FileMode(dir.Join("d")), 0700);
  }
}

TEST(KeyFileRootKeyProviderTest, MissingFileWithoutCreateIsNotFound) {
  ScopedTempDir dir;
  absl::StatusOr<std::unique_ptr<KeyFileRootKeyProvider>> p =
      KeyFileRootKeyProvider::Open(dir.Join("absent.key"), /*create_if_missing=*/false);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir.Join("absent.key")));
}

TEST(KeyFileRootKeyProviderTest, OpensAHandMadeFile) {
  ScopedTempDir dir;
  KnownKey known;
  const std::string path = dir.Join("root.key");
  WriteFile(path, known.File(), 0400);  // read-only for the owner is fine
  std::unique_ptr<KeyFileRootKeyProvider> p = OpenOrDie(path, /*create=*/false);
  ASSERT_NE(p, nullptr);

  // Describe() shows the documented kcv: HMAC-SHA256(key, label)[0:4] in hex.
  absl::StatusOr<std::string> tag = crypto::HmacSha256(known.key, "clavis root key check value v1");
  ASSERT_TRUE(tag.ok()) << tag.status();
  EXPECT_EQ(p->Describe(),
            absl::StrCat("key-file:", path, " kcv=", crypto::HexEncode(tag->substr(0, 4))));
  ExpectNoKeyBytes(p->Describe(), known.key);
}

// The blob format documented in docs/FORMAT.md, checked with the crypto layer
// directly: 0x01 || nonce || AES-256-GCM(ct||tag), AD = label || 0x00 || ad.
TEST(KeyFileRootKeyProviderTest, BlobMatchesTheDocumentedFormat) {
  ScopedTempDir dir;
  KnownKey known;
  const std::string path = dir.Join("root.key");
  WriteFile(path, known.File());
  std::unique_ptr<KeyFileRootKeyProvider> p = OpenOrDie(path, false);
  ASSERT_NE(p, nullptr);

  const crypto::SecretBytes secret = crypto::RandomSecret(48);
  absl::StatusOr<std::string> blob = p->Wrap(secret, "tenant/key/7");
  ASSERT_TRUE(blob.ok()) << blob.status();
  absl::StatusOr<std::unique_ptr<crypto::Aead>> aead =
      crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, known.key.Clone());
  ASSERT_TRUE(aead.ok()) << aead.status();
  ASSERT_EQ((*blob)[0], '\x01');
  absl::StatusOr<crypto::SecretBytes> out = (*aead)->OpenSecret(
      blob->substr(1, 12), blob->substr(13), std::string("clavis/root-wrap/v1\0tenant/key/7", 32));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(*out == secret);
}

TEST(KeyFileRootKeyProviderTest, DescribeHasPathAndKcvButNoKeyBytes) {
  ScopedTempDir dir;
  const std::string path = dir.Join("root.key");
  std::unique_ptr<KeyFileRootKeyProvider> p = OpenOrDie(path, true);
  ASSERT_NE(p, nullptr);
  const std::string contents = ReadFile(path);
  absl::StatusOr<crypto::SecretBytes> key =
      crypto::Base64DecodeSecret(absl::string_view(contents).substr(19, 44));
  ASSERT_TRUE(key.ok()) << key.status();

  const std::string d = p->Describe();
  EXPECT_TRUE(absl::StartsWith(d, absl::StrCat("key-file:", path, " kcv="))) << d;
  EXPECT_EQ(d.size(), absl::StrCat("key-file:", path, " kcv=").size() + 8) << d;
  ExpectNoKeyBytes(d, *key);
}

class KeyFilePermissionTest : public ::testing::TestWithParam<mode_t> {};

TEST_P(KeyFilePermissionTest, RefusesAFileOthersCanAccess) {
  ScopedTempDir dir;
  KnownKey known;
  const std::string path = dir.Join("root.key");
  absl::Status s = OpenContents(dir, known.File(), GetParam());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("chmod 600 ", path))) << s;
  ExpectNoKeyBytes(s.message(), known.key);
}

INSTANTIATE_TEST_SUITE_P(GroupOrOther, KeyFilePermissionTest,
                         ::testing::Values(0640, 0604, 0620, 0602, 0644, 0660, 0666, 0610, 0601,
                                           0400 | 040));

TEST(KeyFileRootKeyProviderTest, RefusesADirectory) {
  ScopedTempDir dir;
  const std::string path = dir.Join("root.key");
  ASSERT_TRUE(std::filesystem::create_directory(path));
  absl::StatusOr<std::unique_ptr<KeyFileRootKeyProvider>> p =
      KeyFileRootKeyProvider::Open(path, true);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
}

TEST(KeyFileRootKeyProviderTest, RefusesOtherFiles) {
  ScopedTempDir dir;
  for (absl::string_view contents :
       {absl::string_view("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n"),
        absl::string_view("garbage"), absl::string_view("\n\n\n"),
        absl::string_view("\x00\x01\x02\x03", 4)}) {
    absl::Status s = OpenContents(dir, contents);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "not a Clavis root key file")) << s;
  }
  const std::string big(8192, 'A');
  absl::Status s = OpenContents(dir, big);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "too large")) << s;
}

TEST(KeyFileRootKeyProviderTest, RefusesOtherVersions) {
  ScopedTempDir dir;
  KnownKey known;
  for (absl::string_view header :
       {"clavis-root-key v2", "clavis-root-key v0", "clavis-root-key v10", "clavis-root-key v1 "}) {
    absl::Status s = OpenContents(dir, absl::StrCat(header, "\n", known.Base64(), "\n"));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "unsupported format version")) << s;
    ExpectNoKeyBytes(s.message(), known.key);
  }
  absl::Status s = OpenContents(dir, absl::StrCat("clavis-root-key v2\n", known.Base64(), "\n"));
  EXPECT_TRUE(absl::StrContains(s.message(), "'v2'")) << s;
  s = OpenContents(dir, absl::StrCat("clavis-root-key v1\r\n", known.Base64(), "\r\n"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "CRLF")) << s;
}

TEST(KeyFileRootKeyProviderTest, RefusesEveryTruncation) {
  ScopedTempDir dir;
  KnownKey known;
  const std::string file = known.File();
  for (size_t n = 0; n < file.size(); ++n) {
    SCOPED_TRACE(absl::StrCat("truncated to ", n, " bytes"));
    absl::Status s = OpenContents(dir, file.substr(0, n));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    ExpectNoKeyBytes(s.message(), known.key);
  }
}

TEST(KeyFileRootKeyProviderTest, RefusesWrongKeySizes) {
  ScopedTempDir dir;
  for (size_t size : {0, 1, 16, 24, 31, 33, 48, 64}) {
    SCOPED_TRACE(absl::StrCat(size, " byte key"));
    const crypto::SecretBytes key = crypto::RandomSecret(size);
    absl::Status s =
        OpenContents(dir, absl::StrCat(kHeader, crypto::Base64Encode(key.view()), "\n"));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    if (size >= 8) ExpectNoKeyBytes(s.message(), key);
  }
}

TEST(KeyFileRootKeyProviderTest, RefusesDamagedBodies) {
  ScopedTempDir dir;
  KnownKey known;
  const std::string b64 = known.Base64();
  std::string bad_char = b64;
  bad_char[5] = '*';
  for (const std::string& contents : {
           absl::StrCat(kHeader, bad_char, "\n"),
           absl::StrCat(kHeader, b64, "\n", "extra\n"),
           absl::StrCat(kHeader, b64, "\n\n"),
           absl::StrCat(kHeader, " ", b64, "\n"),
           absl::StrCat(kHeader, b64.substr(0, 43), " \n"),
           absl::StrCat(kHeader, "\n", b64, "\n"),
       }) {
    absl::Status s = OpenContents(dir, contents);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    ExpectNoKeyBytes(s.message(), known.key);
  }
}

TEST(KeyFileRootKeyProviderTest, ConcurrentCreatorsAgreeOnOneKey) {
  for (int round = 0; round < 5; ++round) {
    ScopedTempDir dir;
    const std::string path = dir.Join("k/root.key");
    constexpr int kThreads = 8;
    std::vector<std::string> describe(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        absl::StatusOr<std::unique_ptr<KeyFileRootKeyProvider>> p =
            KeyFileRootKeyProvider::Open(path, true);
        describe[i] = p.ok() ? (*p)->Describe() : std::string(p.status().ToString());
      });
    }
    for (std::thread& t : threads) t.join();
    for (int i = 1; i < kThreads; ++i) EXPECT_EQ(describe[i], describe[0]);
    std::unique_ptr<KeyFileRootKeyProvider> after = OpenOrDie(path, false);
    ASSERT_NE(after, nullptr);
    EXPECT_EQ(after->Describe(), describe[0]);
  }
}

TEST(KeyFileRootKeyProviderTest, ConcurrentWrapAndUnwrap) {
  ScopedTempDir dir;
  std::unique_ptr<KeyFileRootKeyProvider> p = OpenOrDie(dir.Join("root.key"), true);
  ASSERT_NE(p, nullptr);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const crypto::SecretBytes secret = crypto::RandomSecret(32);
        const std::string ad = absl::StrCat(t, "/", i);
        absl::StatusOr<std::string> blob = p->Wrap(secret, ad);
        if (!blob.ok()) {
          ++failures[t];
          continue;
        }
        absl::StatusOr<crypto::SecretBytes> out = p->Unwrap(*blob, ad);
        if (!out.ok() || *out != secret) ++failures[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace clavis::kms
