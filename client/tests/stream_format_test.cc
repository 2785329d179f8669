// The stream format layer (client/src/stream_format.h) against its spec
// (docs/FORMAT.md "Stream (v1)"), with no DataKeySource and no buffering.
#include "client/src/stream_format.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/tests/stream_spec.h"
#include "crypto/encryption_context.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::client_internal {
namespace {

using ::clavis::testing::SpecStream;
using ::clavis::testing::StreamSpecBigEndian;
using ::clavis::testing::StreamSpecChunk;
using ::clavis::testing::StreamSpecContext;
using ::clavis::testing::StreamSpecOkm;
using ::clavis::testing::StreamSpecOpen;
using ::clavis::testing::StreamSpecSeal;
using ::testing::HasSubstr;

const std::map<std::string, std::string> kContext = {{"customer", "42"}, {"table", "orders"}};
constexpr uint32_t kChunk = kStreamMinChunkSize;

std::string Canonical(const std::map<std::string, std::string>& context) {
  return crypto::CanonicalEncryptionContext(context);
}

StreamHeaderFields Fields(const SpecStream& s) {
  return {s.key, s.segment, s.data_key_blob, s.chunk_size};
}

// Seals `plaintext` the way StreamEncryptor does: full chunks, then a last
// one of 0..chunk size bytes.
std::string SealWhole(const StreamChunkCipher& cipher, absl::string_view plaintext) {
  std::string out(cipher.header());
  uint64_t index = 0;
  while (plaintext.size() > cipher.chunk_size()) {
    out += *cipher.SealChunk(index++, plaintext.substr(0, cipher.chunk_size()), false);
    plaintext.remove_prefix(cipher.chunk_size());
  }
  return out + *cipher.SealChunk(index, plaintext, true);
}

ParsedStreamHeader MustParse(absl::string_view stream) {
  absl::StatusOr<std::optional<ParsedStreamHeader>> parsed = ParseStreamHeader(stream);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed.ok() && parsed->has_value());
  return parsed.ok() && parsed->has_value() ? **parsed : ParsedStreamHeader{};
}

::testing::AssertionResult ParseFailsWith(absl::string_view input, absl::string_view substring) {
  absl::StatusOr<std::optional<ParsedStreamHeader>> parsed = ParseStreamHeader(input);
  if (parsed.ok()) {
    return ::testing::AssertionFailure() << (parsed->has_value() ? "parsed" : "wants more bytes");
  }
  if (parsed.status().code() != absl::StatusCode::kInvalidArgument ||
      !absl::StrContains(parsed.status().message(), substring)) {
    return ::testing::AssertionFailure() << parsed.status();
  }
  return ::testing::AssertionSuccess();
}

TEST(StreamFormatTest, OfflineRecipeOpensWhatTheSdkSeals) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  absl::StatusOr<std::unique_ptr<StreamChunkCipher>> cipher =
      StreamChunkCipher::ForWriting(dk, Fields(s), Canonical(kContext));
  ASSERT_TRUE(cipher.ok()) << cipher.status();
  for (size_t size : {size_t{0}, size_t{1}, size_t{kChunk - 1}, size_t{kChunk}, size_t{kChunk + 1},
                      size_t{3 * kChunk}, size_t{3 * kChunk + 100}}) {
    const std::string plaintext = crypto::RandomBytes(size);
    const std::string stream = SealWhole(**cipher, plaintext);
    absl::StatusOr<std::string> opened = StreamSpecOpen(dk.view(), stream, kContext);
    ASSERT_TRUE(opened.ok()) << size << ": " << opened.status();
    EXPECT_EQ(*opened, plaintext) << size;
  }
}

TEST(StreamFormatTest, HeaderLayoutIsTheSpecs) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  auto cipher = StreamChunkCipher::ForWriting(dk, Fields(s), Canonical(kContext));
  ASSERT_TRUE(cipher.ok()) << cipher.status();
  const absl::string_view header = (*cipher)->header();
  // 89 fixed bytes + key name + segment + blob.
  ASSERT_EQ(header.size(), 89 + s.key.size() + s.segment.size() + s.data_key_blob.size());
  EXPECT_EQ(header.substr(0, 6), absl::string_view("CLST\x01\x01", 6));
  // With the random salt and nonce prefix taken from the SDK's header, the
  // spec builds the same header byte for byte (the commitment included).
  const size_t salt_at = header.size() - 71;
  EXPECT_EQ(header.substr(salt_at - 4, 4), StreamSpecBigEndian(kChunk, 4));
  s.salt = std::string(header.substr(salt_at, 32));
  s.nonce_prefix = std::string(header.substr(salt_at + 32, 7));
  EXPECT_EQ(header, ::clavis::testing::StreamSpecHeader(dk.view(), s));
  // An empty stream is its header and one empty last chunk: a bare tag.
  EXPECT_EQ(SealWhole(**cipher, "").size(), header.size() + 16);
}

TEST(StreamFormatTest, EveryStreamHasItsOwnSaltAndNoncePrefix) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  auto a = StreamChunkCipher::ForWriting(dk, Fields(s), "");
  auto b = StreamChunkCipher::ForWriting(dk, Fields(s), "");
  ASSERT_TRUE(a.ok() && b.ok());
  const ParsedStreamHeader ha = MustParse((*a)->header());
  const ParsedStreamHeader hb = MustParse((*b)->header());
  EXPECT_NE(ha.salt, hb.salt);
  EXPECT_NE(ha.nonce_prefix, hb.nonce_prefix);
  EXPECT_NE(ha.commitment, hb.commitment);
}

TEST(StreamFormatTest, KeyDerivationIsTheSpecs) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  s.salt = crypto::RandomBytes(32);
  absl::StatusOr<StreamKeys> keys = DeriveStreamKeys(dk, s.salt, 1, Fields(s));
  ASSERT_TRUE(keys.ok()) << keys.status();
  const std::string okm = StreamSpecOkm(dk.view(), s);
  EXPECT_EQ(keys->encryption_key.view(), okm.substr(0, 32));
  EXPECT_EQ(keys->commitment, okm.substr(32, 32));
  // The chunk size is bound: another one derives other keys.
  StreamHeaderFields other = Fields(s);
  other.chunk_size = 2 * kChunk;
  EXPECT_NE(DeriveStreamKeys(dk, s.salt, 1, other)->commitment, keys->commitment);
}

TEST(StreamFormatTest, ChunkNonceIsPrefixIndexAndLastFlag) {
  const std::string prefix = "ABCDEFG";
  EXPECT_EQ(StreamChunkNonce(prefix, 0, false), std::string("ABCDEFG\0\0\0\0\0", 12));
  EXPECT_EQ(StreamChunkNonce(prefix, 0x01020304, true), "ABCDEFG\x01\x02\x03\x04\x01");
  EXPECT_EQ(StreamChunkNonce(prefix, 0xffffffff, true), "ABCDEFG\xff\xff\xff\xff\x01");
}

TEST(StreamFormatTest, OpensAStreamBuiltFromTheSpec) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  const std::string plaintext = crypto::RandomBytes(2 * kChunk + 10);
  const std::string stream = StreamSpecSeal(dk.view(), s, plaintext, kContext);
  const ParsedStreamHeader h = MustParse(stream);
  EXPECT_EQ(h.fields.key, s.key);
  EXPECT_EQ(h.fields.segment, s.segment);
  EXPECT_EQ(h.fields.data_key_blob, s.data_key_blob);
  EXPECT_EQ(h.fields.chunk_size, s.chunk_size);
  EXPECT_EQ(h.salt, s.salt);
  EXPECT_EQ(h.nonce_prefix, s.nonce_prefix);
  auto cipher = StreamChunkCipher::ForReading(h, dk, Canonical(kContext));
  ASSERT_TRUE(cipher.ok()) << cipher.status();
  absl::string_view body = absl::string_view(stream).substr(h.header.size());
  const size_t full = kChunk + 16;
  std::string opened = *(*cipher)->OpenChunk(0, body.substr(0, full), false);
  opened += *(*cipher)->OpenChunk(1, body.substr(full, full), false);
  opened += *(*cipher)->OpenChunk(2, body.substr(2 * full), true);
  EXPECT_EQ(opened, plaintext);
}

TEST(StreamFormatTest, ChunkOpensOnlyInItsPlace) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  const std::string stream = StreamSpecSeal(dk.view(), s, std::string(kChunk + 1, 'x'), kContext);
  const ParsedStreamHeader h = MustParse(stream);
  auto cipher = StreamChunkCipher::ForReading(h, dk, Canonical(kContext));
  ASSERT_TRUE(cipher.ok()) << cipher.status();
  const absl::string_view chunk0 = absl::string_view(stream).substr(h.header.size(), kChunk + 16);
  ASSERT_TRUE((*cipher)->OpenChunk(0, chunk0, false).ok());
  // Another number, the last flag, or a cut.
  EXPECT_EQ((*cipher)->OpenChunk(1, chunk0, false).status().message(), "chunk 1 failed to decrypt");
  EXPECT_EQ((*cipher)->OpenChunk(0, chunk0, true).status().message(), "chunk 0 failed to decrypt");
  EXPECT_EQ((*cipher)->OpenChunk(0, chunk0.substr(1), false).status().message(),
            "chunk 0 failed to decrypt");
  EXPECT_EQ((*cipher)->OpenChunk(0, chunk0.substr(0, 15), true).status().message(),
            "chunk 0 failed to decrypt");
  // Another context.
  auto other = StreamChunkCipher::ForReading(h, dk, Canonical({{"customer", "43"}}));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*other)->OpenChunk(0, chunk0, false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StreamFormatTest, CommitmentMismatchIsRefusedBeforeAnyChunk) {
  // Chunks whose tags are valid under the derived key, in a header whose
  // stored commitment is not the one the data key gives.
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  s.commitment_override = crypto::RandomBytes(32);
  const std::string stream = StreamSpecSeal(dk.view(), s, "two faces", kContext);
  EXPECT_EQ(
      StreamChunkCipher::ForReading(MustParse(stream), dk, Canonical(kContext)).status().message(),
      "stream does not match its data key");
}

TEST(StreamFormatTest, AnotherDataKeyFailsTheCommitment) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  const std::string stream = StreamSpecSeal(dk.view(), SpecStream{}, "x", kContext);
  EXPECT_EQ(StreamChunkCipher::ForReading(MustParse(stream), crypto::RandomSecret(32),
                                          Canonical(kContext))
                .status()
                .message(),
            "stream does not match its data key");
}

TEST(StreamFormatTest, ParserWantsMoreBytesForEveryPrefixOfAHeader) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  const std::string stream = StreamSpecSeal(dk.view(), SpecStream{}, "abc", kContext);
  const size_t header_size = MustParse(stream).header.size();
  for (size_t n = 0; n < header_size; ++n) {
    absl::StatusOr<std::optional<ParsedStreamHeader>> parsed =
        ParseStreamHeader(absl::string_view(stream).substr(0, n));
    ASSERT_TRUE(parsed.ok()) << n << ": " << parsed.status();
    EXPECT_FALSE(parsed->has_value()) << n;
  }
  EXPECT_EQ(MustParse(absl::string_view(stream).substr(0, header_size)).header.size(), header_size);
}

TEST(StreamFormatTest, ParserNamesWhatIsWrong) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  // Known as soon as the first wrong byte arrives.
  EXPECT_TRUE(ParseFailsWith("X", "not a Clavis stream (wrong magic)"));
  EXPECT_TRUE(ParseFailsWith("CLSR\x01\x01", "not a Clavis stream (wrong magic)"));
  EXPECT_TRUE(ParseFailsWith("{\"json\": 1}", "wrong magic"));

  SpecStream v2;
  v2.version = 2;
  EXPECT_TRUE(ParseFailsWith(StreamSpecSeal(dk.view(), v2, "x", kContext),
                             "unsupported stream format version 2 (this SDK reads version 1)"));
  EXPECT_TRUE(ParseFailsWith("CLST\x02", "unsupported stream format version 2"));
  SpecStream alg;
  alg.algorithm = 0x7f;
  EXPECT_TRUE(ParseFailsWith(StreamSpecSeal(dk.view(), alg, "x", kContext),
                             "unsupported stream algorithm 127"));

  SpecStream long_key;
  long_key.key = std::string(257, 'k');
  EXPECT_TRUE(ParseFailsWith(StreamSpecSeal(dk.view(), long_key, "x", kContext),
                             "stream key name of 257 bytes is outside 1..256"));
  SpecStream no_segment;
  no_segment.segment = "";
  EXPECT_TRUE(ParseFailsWith(StreamSpecSeal(dk.view(), no_segment, "x", kContext),
                             "stream segment of 0 bytes is outside 1..256"));
  // A huge claimed blob length is oversized, not merely truncated.
  const std::string huge_blob =
      absl::StrCat("CLST\x01\x01", StreamSpecBigEndian(1, 2), "k", StreamSpecBigEndian(1, 2), "s",
                   StreamSpecBigEndian(0xffffffff, 4));
  EXPECT_TRUE(
      ParseFailsWith(huge_blob, "stream data key blob of 4294967295 bytes is outside 1..8192"));

  for (uint32_t bad : {0u, kStreamMinChunkSize - 1, kStreamMaxChunkSize + 1, 0xffffffffu}) {
    SpecStream chunk;
    chunk.chunk_size = bad;
    EXPECT_TRUE(ParseFailsWith(
        ::clavis::testing::StreamSpecHeader(dk.view(), chunk),
        absl::StrCat("stream chunk size of ", bad, " bytes is outside 4096..16777216")));
  }
}

TEST(StreamFormatTest, ChunkNumbersStopAt2To32) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  auto cipher = StreamChunkCipher::ForWriting(dk, Fields(s), "");
  ASSERT_TRUE(cipher.ok());
  constexpr uint64_t kLastNumber = kStreamMaxChunks - 1;  // 2^32 - 1
  // Number 2^32 - 1 can only be the last chunk: a successor would need 2^32.
  EXPECT_THAT((*cipher)->SealChunk(kLastNumber, std::string(kChunk, 'x'), false).status().message(),
              HasSubstr("stream is too long"));
  EXPECT_TRUE((*cipher)->SealChunk(kLastNumber, "x", true).ok());
  EXPECT_THAT((*cipher)->SealChunk(kStreamMaxChunks, "x", true).status().message(),
              HasSubstr("stream is too long"));
  EXPECT_TRUE((*cipher)->SealChunk(kLastNumber - 1, std::string(kChunk, 'x'), false).ok());

  // The spec's chunk 2^32 - 1 opens as such; the reader enforces the limit too.
  const std::string stream = StreamSpecSeal(dk.view(), s, "", kContext);
  const ParsedStreamHeader h = MustParse(stream);
  auto reader = StreamChunkCipher::ForReading(h, dk, Canonical(kContext));
  ASSERT_TRUE(reader.ok()) << reader.status();
  const std::string last = StreamSpecChunk(dk.view(), s, "end", 0xffffffff, true, kContext);
  EXPECT_EQ((*reader)->OpenChunk(kLastNumber, last, true).value_or("?"), "end");
  const std::string not_last =
      StreamSpecChunk(dk.view(), s, std::string(kChunk, 'x'), 0xffffffff, false, kContext);
  EXPECT_THAT((*reader)->OpenChunk(kLastNumber, not_last, false).status().message(),
              HasSubstr("stream is too long"));
}

TEST(StreamFormatTest, SealRefusesChunksOfTheWrongSize) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  auto cipher = StreamChunkCipher::ForWriting(dk, Fields(SpecStream{}), "");
  ASSERT_TRUE(cipher.ok());
  EXPECT_FALSE((*cipher)->SealChunk(0, std::string(kChunk - 1, 'x'), false).ok());
  EXPECT_FALSE((*cipher)->SealChunk(0, std::string(kChunk + 1, 'x'), false).ok());
  EXPECT_FALSE((*cipher)->SealChunk(0, std::string(kChunk + 1, 'x'), true).ok());
  EXPECT_TRUE((*cipher)->SealChunk(0, std::string(kChunk, 'x'), true).ok());
  EXPECT_TRUE((*cipher)->SealChunk(0, "", true).ok());
}

TEST(StreamFormatTest, WritingRefusesBadFields) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  EXPECT_THAT(StreamChunkCipher::ForWriting(dk, {"", "s", "b", kChunk}, "").status().message(),
              HasSubstr("key name of 0 bytes"));
  EXPECT_THAT(StreamChunkCipher::ForWriting(dk, {"k", std::string(257, 's'), "b", kChunk}, "")
                  .status()
                  .message(),
              HasSubstr("segment of 257 bytes"));
  EXPECT_THAT(StreamChunkCipher::ForWriting(dk, {"k", "s", std::string(8193, 'b'), kChunk}, "")
                  .status()
                  .message(),
              HasSubstr("data key blob of 8193 bytes is outside 1..8192"));
  EXPECT_THAT(StreamChunkCipher::ForWriting(dk, {"k", "s", "b", 4095}, "").status().message(),
              HasSubstr("chunk size of 4095 bytes is outside 4096..16777216"));
}

TEST(StreamFormatTest, MaxHeaderSizeHoldsTheLargestHeader) {
  const crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecStream s;
  s.key = std::string(256, 'k');
  s.segment = std::string(256, 's');
  s.data_key_blob = std::string(8192, 'b');
  const std::string header = ::clavis::testing::StreamSpecHeader(dk.view(), s);
  EXPECT_EQ(header.size(), kStreamMaxHeaderSize);
  EXPECT_EQ(MustParse(header).header.size(), kStreamMaxHeaderSize);
}

}  // namespace
}  // namespace clavis::client_internal
