// StreamEncryptor over an in-memory DataKeySource: round trips with inputs
// split anywhere, constant memory, and hostile streams (cut, extended,
// reordered, altered, of another key or context).
#include "clavis/stream_encryptor.h"

#include <algorithm>
#include <cstdint>
#include <istream>
#include <memory>
#include <random>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/tests/fake_data_key_source.h"
#include "client/tests/stream_spec.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis {
namespace {

using ::clavis::testing::FakeDataKeySource;
using ::clavis::testing::SpecStream;
using ::clavis::testing::StreamSpecChunk;
using ::clavis::testing::StreamSpecHeader;
using ::clavis::testing::StreamSpecOpen;
using ::clavis::testing::StreamSpecReadBigEndian;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr char kKey[] = "tenants/acme/keys/crm";
constexpr char kSegment[] = "acme/backups/2026-11";
// Distinctive values, so a test can tell if one ever shows in a message.
const EncryptionContext kContext = {{"customer", "context-value-42"}, {"table", "orders"}};
constexpr size_t kChunk = StreamEncryptor::kMinChunkSize;  // 4 KiB: many chunks, small streams
constexpr size_t kTag = 16;

// Cuts `input` into pieces of random sizes (empty ones included), so every
// test sees Update calls split anywhere.
std::vector<absl::string_view> RandomSplits(absl::string_view input, std::mt19937& rng,
                                            size_t max_piece) {
  std::vector<absl::string_view> pieces;
  std::uniform_int_distribution<size_t> size(0, max_piece);
  while (!input.empty()) {
    const size_t n = std::min(size(rng), input.size());
    pieces.push_back(input.substr(0, n));
    input.remove_prefix(n);
  }
  pieces.push_back(input);  // a trailing empty Update
  return pieces;
}

// Where the chunks start: the header's size, read from its length prefixes.
size_t HeaderSize(absl::string_view stream) {
  auto be = [&](size_t at, int n) { return StreamSpecReadBigEndian(stream.substr(at, n)); };
  size_t at = 6;
  at += 2 + be(at, 2);          // key name
  at += 2 + be(at, 2);          // segment
  at += 4 + be(at, 4);          // data key blob
  return at + 4 + 32 + 7 + 32;  // chunk size, salt, nonce prefix, commitment
}

// The data key blob a stream's header carries.
std::string BlobOf(absl::string_view stream) {
  auto be = [&](size_t at, int n) { return StreamSpecReadBigEndian(stream.substr(at, n)); };
  size_t at = 6;
  at += 2 + be(at, 2);
  at += 2 + be(at, 2);
  return std::string(stream.substr(at + 4, be(at, 4)));
}

class StreamEncryptorTest : public ::testing::Test {
 protected:
  void SetUp() override { encryptor_ = MakeEncryptor(kKey, kChunk); }

  std::unique_ptr<StreamEncryptor> MakeEncryptor(const std::string& key, size_t chunk_size) {
    auto encryptor = StreamEncryptor::New(source_, key, StreamOptions{chunk_size});
    EXPECT_TRUE(encryptor.ok()) << encryptor.status();
    return encryptor.ok() ? std::move(*encryptor) : nullptr;
  }

  // header, Update outputs and Finish output, for `plaintext` fed in random pieces.
  std::string Seal(absl::string_view plaintext, size_t max_piece = 3 * kChunk,
                   const EncryptionContext& context = kContext,
                   absl::string_view segment = kSegment) {
    auto sealer = encryptor_->BeginEncrypt(segment, context);
    EXPECT_TRUE(sealer.ok()) << sealer.status();
    if (!sealer.ok()) return "";
    std::string out = (*sealer)->header();
    for (absl::string_view piece : RandomSplits(plaintext, rng_, max_piece)) {
      absl::StatusOr<std::string> chunks = (*sealer)->Update(piece);
      EXPECT_TRUE(chunks.ok()) << chunks.status();
      out += chunks.value_or("");
    }
    absl::StatusOr<std::string> last = (*sealer)->Finish();
    EXPECT_TRUE(last.ok()) << last.status();
    return out + last.value_or("");
  }

  // Every plaintext byte the opener releases, or its first error.
  absl::StatusOr<std::string> Open(absl::string_view stream, size_t max_piece = 3 * kChunk,
                                   const EncryptionContext& context = kContext,
                                   const StreamEncryptor* encryptor = nullptr) {
    if (encryptor == nullptr) encryptor = encryptor_.get();
    absl::StatusOr<std::unique_ptr<StreamOpener>> opener = encryptor->BeginDecrypt(context);
    if (!opener.ok()) return opener.status();
    std::string out;
    for (absl::string_view piece : RandomSplits(stream, rng_, max_piece)) {
      absl::StatusOr<std::string> plaintext = (*opener)->Update(piece);
      if (!plaintext.ok()) return plaintext.status();
      out += *plaintext;
    }
    absl::StatusOr<std::string> last = (*opener)->Finish();
    if (!last.ok()) return last.status();
    return out + *last;
  }

  // True if `message` shows any issued data key, raw, hex or base64, or a
  // context value.
  bool Leaks(absl::string_view message) {
    for (const SecretBytes& key : source_->IssuedKeys()) {
      for (const std::string& form : {std::string(key.view()), absl::BytesToHexString(key.view()),
                                      absl::Base64Escape(key.view())}) {
        if (absl::StrContains(message, form.substr(0, 8))) return true;
      }
    }
    return absl::StrContains(message, "context-value-42") || absl::StrContains(message, "orders");
  }

  std::mt19937 rng_{20261101};
  std::shared_ptr<FakeDataKeySource> source_ = std::make_shared<FakeDataKeySource>();
  std::unique_ptr<StreamEncryptor> encryptor_;
};

// Splits a stream into its header and its chunks (each ciphertext || tag).
struct Split {
  std::string header;
  std::vector<std::string> chunks;
  std::string Join() const {
    std::string out = header;
    for (const std::string& c : chunks) out += c;
    return out;
  }
};

Split SplitStream(absl::string_view stream, size_t header_size) {
  Split s{std::string(stream.substr(0, header_size)), {}};
  stream.remove_prefix(header_size);
  while (!stream.empty()) {
    const size_t n = std::min(stream.size(), kChunk + kTag);
    s.chunks.emplace_back(stream.substr(0, n));
    stream.remove_prefix(n);
  }
  return s;
}

TEST_F(StreamEncryptorTest, RoundTripsAtEverySizeWithInputsSplitAnywhere) {
  for (size_t size :
       {size_t{0}, size_t{1}, kChunk - 1, kChunk, kChunk + 1, 2 * kChunk, 5 * kChunk + 17}) {
    const std::string plaintext = crypto::RandomBytes(size);
    for (size_t max_piece : {size_t{1}, size_t{100}, kChunk + 3, 4 * kChunk}) {
      if (max_piece == 1 && size > 2 * kChunk) continue;  // byte by byte only for small streams
      const std::string stream = Seal(plaintext, max_piece);
      // One chunk per started chunk_size bytes, and one for an empty stream.
      const size_t chunks = size == 0 ? 1 : (size + kChunk - 1) / kChunk;
      EXPECT_EQ(stream.size(), HeaderSize(stream) + size + chunks * kTag) << size;
      for (size_t open_piece : {size_t{1}, size_t{1000}, 3 * kChunk}) {
        if (open_piece == 1 && size > 2 * kChunk) continue;
        absl::StatusOr<std::string> opened = Open(stream, open_piece);
        ASSERT_TRUE(opened.ok()) << size << "/" << max_piece << "/" << open_piece << ": "
                                 << opened.status();
        EXPECT_EQ(*opened, plaintext) << size << "/" << max_piece << "/" << open_piece;
      }
    }
  }
}

TEST_F(StreamEncryptorTest, OfflineRecipeDecryptsWhatTheSdkWrote) {
  const std::string plaintext = crypto::RandomBytes(3 * kChunk + 5);
  const std::string stream = Seal(plaintext);
  std::vector<SecretBytes> keys = source_->IssuedKeys();
  ASSERT_EQ(keys.size(), 1u);
  absl::StatusOr<std::string> opened = StreamSpecOpen(keys[0].view(), stream, kContext);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plaintext);
  // The header names the encryptor's key and the segment.
  EXPECT_TRUE(absl::StrContains(stream.substr(0, 100), kKey));
  EXPECT_TRUE(absl::StrContains(stream.substr(0, 100), kSegment));
}

TEST_F(StreamEncryptorTest, DecryptsAStreamWrittenFromTheSpec) {
  // The fake only knows blobs it issued: take a real one and its key.
  const std::string made = Seal("x");
  const SecretBytes dk = source_->IssuedKeys()[0].Clone();
  SpecStream s;
  s.key = kKey;
  s.segment = kSegment;
  s.data_key_blob = BlobOf(made);
  s.chunk_size = 8192;  // another chunk size than the encryptor's: the reader follows the header
  const std::string plaintext = crypto::RandomBytes(20000);
  absl::StatusOr<std::string> opened =
      Open(::clavis::testing::StreamSpecSeal(dk.view(), s, plaintext, kContext));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, plaintext);
}

TEST_F(StreamEncryptorTest, SealerHoldsBackAFullChunkUntilMoreArrives) {
  auto sealer = encryptor_->BeginEncrypt(kSegment, kContext);
  ASSERT_TRUE(sealer.ok());
  EXPECT_EQ((*sealer)->Update(std::string(kChunk, 'a')).value_or("?"), "");
  EXPECT_EQ((*sealer)->buffered_bytes(), kChunk);
  EXPECT_EQ((*sealer)->Update("b").value_or("").size(), kChunk + kTag);
  EXPECT_EQ((*sealer)->buffered_bytes(), 1u);
  EXPECT_EQ((*sealer)->Finish().value_or("").size(), 1 + kTag);
  EXPECT_EQ((*sealer)->buffered_bytes(), 0u);
  EXPECT_EQ((*sealer)->Update("c").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*sealer)->Finish().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StreamEncryptorTest, OpenerReleasesAChunkOnlyOnceItIsKnownNotToBeTheLast) {
  const std::string a(kChunk, 'a');
  const std::string stream = Seal(a + "b");
  const size_t header = HeaderSize(stream);
  auto opener = encryptor_->BeginDecrypt(kContext);
  ASSERT_TRUE(opener.ok());
  // The header byte by byte: nothing to release, no error.
  for (size_t i = 0; i < header; ++i) {
    ASSERT_EQ((*opener)->Update(stream.substr(i, 1)).value_or("?"), "") << i;
  }
  EXPECT_EQ((*opener)->buffered_bytes(), 0u);
  // A whole chunk may still be the last one: held back.
  EXPECT_EQ((*opener)->Update(stream.substr(header, kChunk + kTag)).value_or("?"), "");
  EXPECT_EQ((*opener)->buffered_bytes(), kChunk + kTag);
  // The next byte shows it is not.
  EXPECT_EQ((*opener)->Update(stream.substr(header + kChunk + kTag, 1)).value_or("?"), a);
  EXPECT_EQ((*opener)->Update(stream.substr(header + kChunk + kTag + 1)).value_or("?"), "");
  EXPECT_EQ((*opener)->Finish().value_or("?"), "b");
  EXPECT_EQ((*opener)->Finish().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StreamEncryptorTest, EmptyPlaintextIsOneEmptyLastChunk) {
  const std::string stream = Seal("");
  EXPECT_EQ(stream.size(), HeaderSize(stream) + kTag);
  EXPECT_EQ(Open(stream).value_or("?"), "");
  EXPECT_EQ(Open(stream.substr(0, stream.size() - kTag)).status().message(), "stream is truncated");
}

TEST_F(StreamEncryptorTest, TruncationAtEveryChunkBoundaryIsDetected) {
  const std::string stream =
      Seal(crypto::RandomBytes(4 * kChunk));  // 4 full chunks, the last final
  const Split split = SplitStream(stream, HeaderSize(stream));
  ASSERT_EQ(split.chunks.size(), 4u);
  for (size_t keep = 0; keep < 4; ++keep) {
    Split cut = split;
    cut.chunks.resize(keep);
    EXPECT_THAT(Open(cut.Join()).status().message(), "stream is truncated") << keep;
  }
  EXPECT_EQ(Open("").status().message(), "stream is truncated");
  EXPECT_EQ(Open(stream.substr(0, 5)).status().message(), "stream is truncated");
}

TEST_F(StreamEncryptorTest, EveryTruncationFails) {
  const std::string stream = Seal(crypto::RandomBytes(2 * kChunk + 100));
  const size_t header = HeaderSize(stream);
  for (size_t n = 0; n < stream.size(); n += (n < header ? 1 : 7)) {
    absl::StatusOr<std::string> opened = Open(stream.substr(0, n), 5000);
    ASSERT_FALSE(opened.ok()) << n;
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(std::string(opened.status().message()),
                MatchesRegex("stream is truncated|chunk [0-9]+ failed to decrypt"))
        << n;
  }
}

TEST_F(StreamEncryptorTest, TrailingDataAfterTheFinalChunkIsRefused) {
  // A full last chunk followed by anything: named as such.
  const std::string full = Seal(crypto::RandomBytes(2 * kChunk));
  for (const std::string& extra : {std::string("x"), std::string(kChunk + kTag, 'y'),
                                   full.substr(full.size() - kChunk - kTag)}) {
    EXPECT_EQ(Open(full + extra).status().message(), "trailing data after the final chunk");
  }
  // After a shorter last chunk, the extra bytes make it fail to decrypt.
  const std::string short_last = Seal(crypto::RandomBytes(2 * kChunk + 10));
  EXPECT_EQ(Open(short_last + "x").status().message(), "chunk 2 failed to decrypt");
  EXPECT_EQ(Open(short_last + std::string(kChunk, 'x')).status().message(),
            "chunk 2 failed to decrypt");
}

TEST_F(StreamEncryptorTest, ReorderedDuplicatedOrDroppedChunksAreRefused) {
  const std::string stream = Seal(crypto::RandomBytes(3 * kChunk + 10));
  const Split split = SplitStream(stream, HeaderSize(stream));
  ASSERT_EQ(split.chunks.size(), 4u);
  Split swapped = split;
  std::swap(swapped.chunks[0], swapped.chunks[1]);
  EXPECT_EQ(Open(swapped.Join()).status().message(), "chunk 0 failed to decrypt");
  Split duplicated = split;
  duplicated.chunks.insert(duplicated.chunks.begin() + 1, split.chunks[0]);
  EXPECT_EQ(Open(duplicated.Join()).status().message(), "chunk 1 failed to decrypt");
  Split dropped = split;
  dropped.chunks.erase(dropped.chunks.begin() + 1);
  EXPECT_EQ(Open(dropped.Join()).status().message(), "chunk 1 failed to decrypt");
  // The last chunk moved forward.
  Split moved = split;
  std::swap(moved.chunks[2], moved.chunks[3]);
  EXPECT_EQ(Open(moved.Join()).status().message(), "chunk 2 failed to decrypt");
  // A chunk of another stream of the same key, context and position.
  const std::string other = Seal(crypto::RandomBytes(3 * kChunk + 10));
  Split spliced = split;
  spliced.chunks[1] = SplitStream(other, HeaderSize(other)).chunks[1];
  EXPECT_EQ(Open(spliced.Join()).status().message(), "chunk 1 failed to decrypt");
}

TEST_F(StreamEncryptorTest, MislabelledChunksAreRefused) {
  // Streams the SDK would never write, built from the spec with a real blob.
  const std::string made = Seal("x");
  const SecretBytes dk = source_->IssuedKeys()[0].Clone();
  SpecStream s;
  s.key = kKey;
  s.segment = kSegment;
  s.data_key_blob = BlobOf(made);
  const std::string header = StreamSpecHeader(dk.view(), s);
  const std::string a(kChunk, 'a');
  auto chunk = [&](uint32_t i, bool last, absl::string_view p) {
    return StreamSpecChunk(dk.view(), s, p, i, last, kContext);
  };
  ASSERT_EQ(Open(header + chunk(0, false, a) + chunk(1, true, "b")).value_or("?"), a + "b");
  // No chunk marked last: cut at a boundary.
  EXPECT_EQ(Open(header + chunk(0, false, a) + chunk(1, false, a)).status().message(),
            "stream is truncated");
  // A short chunk not marked last is not a valid end.
  EXPECT_EQ(Open(header + chunk(0, false, a) + chunk(1, false, "b")).status().message(),
            "chunk 1 failed to decrypt");
  // A chunk marked last in the middle.
  EXPECT_EQ(Open(header + chunk(0, true, a) + chunk(1, true, "b")).status().message(),
            "trailing data after the final chunk");
  // Numbers that skip.
  EXPECT_EQ(Open(header + chunk(0, false, a) + chunk(2, true, "b")).status().message(),
            "chunk 1 failed to decrypt");
}

TEST_F(StreamEncryptorTest, AFlippedBitAnywhereFails) {
  const std::string stream = Seal(crypto::RandomBytes(kChunk + 100));
  for (size_t i = 0; i < stream.size(); ++i) {
    std::string altered = stream;
    altered[i] ^= static_cast<char>(1 << (i % 8));
    absl::StatusOr<std::string> opened = Open(altered, 2 * kChunk);
    ASSERT_FALSE(opened.ok()) << "byte " << i;
    ASSERT_FALSE(Leaks(opened.status().message())) << i << ": " << opened.status();
  }
}

TEST_F(StreamEncryptorTest, WrongContextSegmentOrKeyFails) {
  const std::string stream = Seal("secret");
  // Another context: the data key's blob is bound to it.
  absl::StatusOr<std::string> other_context = Open(stream, 100, {{"customer", "43"}});
  EXPECT_EQ(other_context.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Open(stream, 100, {}).ok());
  // Another segment named in the header (same length): the source refuses
  // the blob for it.
  std::string other_segment = stream;
  const size_t at = other_segment.find(kSegment);
  ASSERT_NE(at, std::string::npos);
  other_segment[at + std::string(kSegment).size() - 1] = '2';
  EXPECT_EQ(Open(other_segment).status().code(), absl::StatusCode::kInvalidArgument);
  // An encryptor of another key refuses before asking for the data key.
  auto other_key = MakeEncryptor("tenants/acme/keys/hr", kChunk);
  EXPECT_EQ(Open(stream, 100, kContext, other_key.get()).status().message(),
            "stream belongs to key \"tenants/acme/keys/crm\", not \"tenants/acme/keys/hr\"");
}

TEST_F(StreamEncryptorTest, NotAStreamIsNamed) {
  EXPECT_EQ(Open("hello world").status().message(), "not a Clavis stream (wrong magic)");
  EXPECT_EQ(Open(std::string("CLST\x09", 5)).status().message(),
            "unsupported stream format version 9 (this SDK reads version 1)");
  EXPECT_EQ(Open(std::string("CLST\x01\x02", 6)).status().message(),
            "unsupported stream algorithm 2");
}

TEST_F(StreamEncryptorTest, ErrorsStick) {
  const std::string stream = Seal(crypto::RandomBytes(3 * kChunk));
  std::string altered = stream;
  altered[HeaderSize(stream) + 3] ^= 1;
  auto opener = encryptor_->BeginDecrypt(kContext);
  ASSERT_TRUE(opener.ok());
  EXPECT_EQ((*opener)->Update(altered).status().message(), "chunk 0 failed to decrypt");
  EXPECT_EQ((*opener)->Update("more").status().message(), "chunk 0 failed to decrypt");
  EXPECT_EQ((*opener)->Finish().status().message(), "chunk 0 failed to decrypt");
  EXPECT_EQ((*opener)->buffered_bytes(), 0u);
}

TEST_F(StreamEncryptorTest, DataKeySourceErrorsPassThrough) {
  const std::string stream = Seal("x");
  source_->set_disabled(true);
  EXPECT_EQ(encryptor_->BeginEncrypt(kSegment, kContext).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Open(stream).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StreamEncryptorTest, ArgumentsAreChecked) {
  EXPECT_THAT(StreamEncryptor::New(nullptr, kKey).status().message(), HasSubstr("null"));
  EXPECT_EQ(StreamEncryptor::New(source_, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StreamEncryptor::New(source_, std::string(257, 'k')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(StreamEncryptor::New(source_, kKey, StreamOptions{4095}).status().message(),
              HasSubstr("chunk size must be 4096..16777216 bytes, not 4095"));
  EXPECT_FALSE(StreamEncryptor::New(source_, kKey, StreamOptions{(16 << 20) + 1}).ok());
  EXPECT_TRUE(StreamEncryptor::New(source_, kKey, StreamOptions{16 << 20}).ok());
  EXPECT_EQ((*StreamEncryptor::New(source_, kKey))->chunk_size(),
            StreamEncryptor::kDefaultChunkSize);

  EXPECT_EQ(encryptor_->BeginEncrypt("", kContext).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encryptor_->BeginEncrypt(std::string(257, 's'), kContext).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encryptor_->BeginEncrypt(kSegment, {{"", "v"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encryptor_->BeginDecrypt({{"", "v"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(source_->IssuedKeys().empty()) << "bad arguments must cost no data key";
}

// Plaintext byte at `position` of the large test stream: varied, cheap to
// recompute, so neither side ever holds the whole stream.
char PatternByte(uint64_t position) { return static_cast<char>((position * 2654435761u) >> 13); }

TEST_F(StreamEncryptorTest, SixtyFourMiBPassInConstantMemory) {
  constexpr size_t kBigChunk = 64 << 10;
  constexpr uint64_t kTotal = uint64_t{64} << 20;
  auto encryptor = MakeEncryptor(kKey, kBigChunk);
  auto sealer = encryptor->BeginEncrypt(kSegment, kContext);
  auto opener = encryptor->BeginDecrypt(kContext);
  ASSERT_TRUE(sealer.ok() && opener.ok());

  uint64_t produced = 0;  // plaintext bytes given to the sealer
  uint64_t checked = 0;   // plaintext bytes back from the opener, compared
  size_t max_sealer = 0, max_opener = 0, max_output = 0;
  bool same = true;
  auto check = [&](absl::string_view plaintext) {
    for (char c : plaintext) same = same && c == PatternByte(checked++);
    max_output = std::max(max_output, plaintext.size());
  };
  // Feeds sealed bytes to the opener in pieces cut differently from the
  // sealer's (1..100 KiB), so chunk boundaries fall everywhere.
  auto open = [&](absl::string_view sealed) {
    std::vector<absl::string_view> pieces = RandomSplits(sealed, rng_, 100 << 10);
    for (absl::string_view piece : pieces) {
      absl::StatusOr<std::string> plaintext = (*opener)->Update(piece);
      ASSERT_TRUE(plaintext.ok()) << plaintext.status();
      check(*plaintext);
      max_opener = std::max(max_opener, (*opener)->buffered_bytes());
    }
  };
  open((*sealer)->header());
  std::uniform_int_distribution<size_t> piece_size(1, 150 << 10);
  std::string piece;
  while (produced < kTotal) {
    piece.resize(std::min<uint64_t>(piece_size(rng_), kTotal - produced));
    for (char& c : piece) c = PatternByte(produced++);
    absl::StatusOr<std::string> sealed = (*sealer)->Update(piece);
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    max_sealer = std::max(max_sealer, (*sealer)->buffered_bytes());
    max_output = std::max(max_output, sealed->size());
    open(*sealed);
  }
  absl::StatusOr<std::string> last = (*sealer)->Finish();
  ASSERT_TRUE(last.ok());
  open(*last);
  absl::StatusOr<std::string> tail = (*opener)->Finish();
  ASSERT_TRUE(tail.ok()) << tail.status();
  check(*tail);

  EXPECT_TRUE(same);
  EXPECT_EQ(checked, kTotal);
  // Held back: at most one chunk (the opener: with its tag).
  EXPECT_LE(max_sealer, kBigChunk);
  EXPECT_LE(max_opener, kBigChunk + kTag);
  // Each call returns only what its input completes: a few chunks at most.
  EXPECT_LE(max_output, 3 * (kBigChunk + kTag));
}

TEST_F(StreamEncryptorTest, IostreamsRoundTrip) {
  const std::string plaintext = crypto::RandomBytes(300 * 1000);
  std::istringstream in(plaintext);
  std::ostringstream sealed;
  ASSERT_TRUE(encryptor_->Encrypt(kSegment, kContext, in, sealed).ok());
  std::istringstream sealed_in(sealed.str());
  std::ostringstream out;
  absl::Status s = encryptor_->Decrypt(kContext, sealed_in, out);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(out.str(), plaintext);
  EXPECT_EQ(Open(sealed.str()).value_or("?"), plaintext);

  std::istringstream empty;
  std::ostringstream sealed_empty;
  ASSERT_TRUE(encryptor_->Encrypt(kSegment, kContext, empty, sealed_empty).ok());
  EXPECT_EQ(Open(sealed_empty.str()).value_or("?"), "");
}

TEST_F(StreamEncryptorTest, IostreamDecryptReportsTruncation) {
  const std::string plaintext = crypto::RandomBytes(10 * kChunk);
  const std::string stream = Seal(plaintext);
  const Split split = SplitStream(stream, HeaderSize(stream));
  Split cut = split;
  cut.chunks.resize(5);
  std::istringstream in(cut.Join());
  std::ostringstream out;
  EXPECT_EQ(encryptor_->Decrypt(kContext, in, out).message(), "stream is truncated");
  // What was released is authentic, but only a prefix: the caller must discard it.
  EXPECT_EQ(out.str(), plaintext.substr(0, 4 * kChunk));
}

// A streambuf whose reads fail after `good` bytes.
class FailingBuf : public std::streambuf {
 public:
  explicit FailingBuf(size_t good) : data_(good, 'z') {
    setg(data_.data(), data_.data(), data_.data() + good);
  }

 protected:
  int_type underflow() override { throw std::ios_base::failure("disk on fire"); }

 private:
  std::string data_;
};

TEST_F(StreamEncryptorTest, IostreamErrorsAreDataLoss) {
  FailingBuf buf(10000);
  std::istream in(&buf);
  std::ostringstream out;
  EXPECT_EQ(encryptor_->Encrypt(kSegment, kContext, in, out).code(), absl::StatusCode::kDataLoss);

  std::istringstream plain("abc");
  std::ostringstream closed;
  closed.setstate(std::ios::badbit);
  EXPECT_EQ(encryptor_->Encrypt(kSegment, kContext, plain, closed).code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace clavis
