// Test helpers shared by the root key provider tests: temporary directories,
// small file utilities, checks that text carries no key bytes, and the
// RootKeyProvider wrap/unwrap contract run against any provider.
// Test-only: linked into tests, never into clavis_root.
#ifndef CLAVIS_KMS_ROOT_ROOT_KEY_TESTING_H_
#define CLAVIS_KMS_ROOT_ROOT_KEY_TESTING_H_

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"
#include "kms/root/root_key_provider.h"

namespace clavis::kms::root_testing {

inline constexpr absl::string_view kUnwrapFailedMessage =
    "root key unwrap failed: wrong root key, or the stored record was altered";

// A fresh, empty directory under ::testing::TempDir(), removed by the
// destructor.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    static std::atomic<int> counter{0};
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string base = ::testing::TempDir();
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    std::string name = absl::StrCat("clavis_root_", info ? info->test_suite_name() : "x", "_",
                                    info ? info->name() : "x", "_", ::getpid(), "_", counter++);
    for (char& c : name) {
      if (c == '/' || c == '*') c = '_';  // parameterized test names
    }
    path_ = absl::StrCat(base, "/", name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScopedTempDir() {
    std::error_code ec;
    // Make anything a test locked down removable again.
    for (const auto& e : std::filesystem::recursive_directory_iterator(path_, ec)) {
      ::chmod(e.path().c_str(), 0700);
    }
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Join(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes `contents` to `path`, replacing it, then sets `mode` exactly.
inline void WriteFile(const std::string& path, absl::string_view contents, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    ASSERT_TRUE(out.good()) << path;
  }
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

// Permission bits of `path`, or -1.
inline int FileMode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Expects that `text` contains `key` in none of the encodings a careless
// message or log line might use.
inline void ExpectNoKeyBytes(absl::string_view text, const crypto::SecretBytes& key) {
  ASSERT_FALSE(key.empty());
  const std::string hex = crypto::HexEncode(key.view());
  EXPECT_FALSE(absl::StrContains(text, key.view())) << "raw key bytes in: " << text;
  EXPECT_FALSE(absl::StrContains(absl::AsciiStrToLower(text), hex)) << "key hex in: " << text;
  EXPECT_FALSE(absl::StrContains(text, crypto::Base64Encode(key.view())))
      << "key base64 in: " << text;
  EXPECT_FALSE(absl::StrContains(
      text, crypto::Base64Encode(key.view(), crypto::Base64Variant::kUrlSafeNoPadding)))
      << "key base64url in: " << text;
  // A prefix is already a leak: the first 8 bytes in hex or base64.
  EXPECT_FALSE(absl::StrContains(absl::AsciiStrToLower(text), hex.substr(0, 16)))
      << "key hex prefix in: " << text;
  EXPECT_FALSE(absl::StrContains(text, crypto::Base64Encode(key.view()).substr(0, 12)))
      << "key base64 prefix in: " << text;
}

inline void ExpectUnwrapFails(RootKeyProvider& provider, absl::string_view blob,
                              absl::string_view associated_data) {
  absl::StatusOr<crypto::SecretBytes> out = provider.Unwrap(blob, associated_data);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(out.status().message(), kUnwrapFailedMessage);
}

// The RootKeyProvider wrap/unwrap contract. `provider` and `same_key` hold
// the same root key (e.g. one created, one reopened from disk); `other_key`
// holds a different one. Blobs are `format_byte` || 12-byte nonce ||
// ciphertext || 16-byte tag (0x01: the in-memory-key providers; 0x11: PKCS#11).
inline void CheckWrapContract(RootKeyProvider& provider, RootKeyProvider& same_key,
                              RootKeyProvider& other_key, uint8_t format_byte = 0x01) {
  const crypto::SecretBytes secret = crypto::SecretBytes::CopyOf(
      absl::string_view("0123456789abcdef0123456789abcdef"));  // 32 bytes of "key material"
  const std::string ad = "projects/p/keys/k/versions/1";

  // Round trip, across instances holding the same key.
  absl::StatusOr<std::string> blob = provider.Wrap(secret, ad);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_FALSE(absl::StrContains(*blob, secret.view()));
  ASSERT_EQ(blob->size(), 1 + 12 + secret.size() + 16);
  EXPECT_EQ(static_cast<uint8_t>((*blob)[0]), format_byte);
  for (RootKeyProvider* p : {&provider, &same_key}) {
    absl::StatusOr<crypto::SecretBytes> out = p->Unwrap(*blob, ad);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(*out == secret);
  }

  // Fresh nonce every time.
  absl::StatusOr<std::string> blob2 = provider.Wrap(secret, ad);
  ASSERT_TRUE(blob2.ok()) << blob2.status();
  EXPECT_NE(*blob, *blob2);

  // Empty associated data works, and is not the same as any other.
  absl::StatusOr<std::string> no_ad = provider.Wrap(secret, "");
  ASSERT_TRUE(no_ad.ok()) << no_ad.status();
  ASSERT_TRUE(same_key.Unwrap(*no_ad, "").ok());
  ExpectUnwrapFails(same_key, *no_ad, std::string(1, '\0'));

  // Wrong associated data.
  ExpectUnwrapFails(provider, *blob, "");
  ExpectUnwrapFails(provider, *blob, "projects/p/keys/k/versions/2");
  ExpectUnwrapFails(provider, *blob, ad + "x");
  ExpectUnwrapFails(provider, *blob, ad.substr(1));

  // Every single flipped bit, anywhere in the blob.
  for (size_t i = 0; i < blob->size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string altered = *blob;
      altered[i] = static_cast<char>(altered[i] ^ (1 << bit));
      SCOPED_TRACE(absl::StrCat("byte ", i, " bit ", bit));
      ExpectUnwrapFails(same_key, altered, ad);
    }
  }

  // Every truncation, and extension.
  for (size_t n = 0; n < blob->size(); ++n) {
    SCOPED_TRACE(absl::StrCat("truncated to ", n));
    ExpectUnwrapFails(same_key, blob->substr(0, n), ad);
  }
  ExpectUnwrapFails(same_key, *blob + std::string(1, '\0'), ad);

  // Another root key.
  ExpectUnwrapFails(other_key, *blob, ad);
  absl::StatusOr<std::string> foreign = other_key.Wrap(secret, ad);
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  ExpectUnwrapFails(provider, *foreign, ad);

  // Size limits: 1..4096 bytes.
  EXPECT_EQ(provider.Wrap(crypto::SecretBytes(), ad).status().code(),
            absl::StatusCode::kInvalidArgument);
  const crypto::SecretBytes max_size(4096);
  absl::StatusOr<std::string> big = provider.Wrap(max_size, ad);
  ASSERT_TRUE(big.ok()) << big.status();
  absl::StatusOr<crypto::SecretBytes> big_out = same_key.Unwrap(*big, ad);
  ASSERT_TRUE(big_out.ok()) << big_out.status();
  EXPECT_TRUE(*big_out == max_size);
  EXPECT_EQ(provider.Wrap(crypto::SecretBytes(4097), ad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace clavis::kms::root_testing

#endif  // CLAVIS_KMS_ROOT_ROOT_KEY_TESTING_H_
