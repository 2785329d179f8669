// The SDK's stream format (docs/FORMAT.md "Stream (v1)"): a header, then
// AES-GCM chunks. Streams come back from object stores and files.
//
// For every input:
//  - ParseStreamHeader must not crash; "need more bytes" (nullopt) only for
//    a proper prefix of something that could still be a header; an accepted
//    header is a prefix of the input, re-parses to itself, and every shorter
//    prefix of it asks for more bytes;
//  - the whole input is decoded as a stream with the fixture data key;
//  - the input as an XOR mask and tail over a stream sealed at start-up:
//    only the unchanged stream may decode.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/src/stream_format.h"
#include "crypto/encryption_context.h"
#include "tests/fuzz/fuzz_fixtures.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {
namespace {

using client_internal::ParsedStreamHeader;
using client_internal::StreamChunkCipher;

// Decodes a whole stream: the header, then chunks of chunk_size() + tag,
// the last one shorter (or empty but for its tag) and flagged last.
absl::StatusOr<std::string> DecodeStream(absl::string_view input) {
  auto header = client_internal::ParseStreamHeader(input);
  if (!header.ok()) {
    FUZZ_CHECK(header.status().code() == absl::StatusCode::kInvalidArgument);
    return header.status();
  }
  if (!header->has_value()) return absl::InvalidArgumentError("stream is truncated");
  const ParsedStreamHeader& h = **header;
  auto cipher = StreamChunkCipher::ForReading(h, FixtureDataKey(),
                                              crypto::CanonicalEncryptionContext(FixtureContext()));
  if (!cipher.ok()) return cipher.status();
  FUZZ_CHECK((*cipher)->header() == h.header);
  absl::string_view rest = input.substr(h.header.size());
  const size_t sealed_chunk = size_t{(*cipher)->chunk_size()} + client_internal::kStreamTagSize;
  std::string plaintext;
  for (uint64_t index = 0;; ++index) {
    const bool last = rest.size() <= sealed_chunk;
    auto chunk = (*cipher)->OpenChunk(index, rest.substr(0, sealed_chunk), last);
    if (!chunk.ok()) return chunk.status();
    FUZZ_CHECK(chunk->size() <= (*cipher)->chunk_size());
    plaintext += *chunk;
    if (last) return plaintext;
    rest.remove_prefix(sealed_chunk);
  }
}

void CheckHeader(absl::string_view input) {
  auto header = client_internal::ParseStreamHeader(input);
  if (!header.ok()) return;
  if (!header->has_value()) {
    FUZZ_CHECK(input.size() < client_internal::kStreamMaxHeaderSize);
    return;
  }
  const ParsedStreamHeader& h = **header;
  FUZZ_CHECK(absl::StartsWith(input, h.header));
  FUZZ_CHECK(client_internal::ValidateStreamHeaderFields(h.fields).ok());
  auto alone = client_internal::ParseStreamHeader(h.header);
  FUZZ_CHECK(alone.ok() && alone->has_value() && (*alone)->header == h.header);
  for (size_t cut : {size_t{0}, h.header.size() / 2, h.header.size() - 1}) {
    auto prefix = client_internal::ParseStreamHeader(h.header.substr(0, cut));
    FUZZ_CHECK(prefix.ok() && !prefix->has_value());
  }
}

struct Original {
  std::string stream;
  std::string plaintext;
};

const Original& TheOriginal() {
  static const Original* original = [] {
    auto* o = new Original();
    client_internal::StreamHeaderFields fields{kFixtureKey, kFixtureSegment, kFixtureDataKeyBlob,
                                               client_internal::kStreamMinChunkSize};
    auto cipher = StreamChunkCipher::ForWriting(
        FixtureDataKey(), fields, crypto::CanonicalEncryptionContext(FixtureContext()));
    FUZZ_CHECK(cipher.ok());
    o->plaintext = std::string(client_internal::kStreamMinChunkSize + 100, 'p');
    auto first = (*cipher)->SealChunk(0, o->plaintext.substr(0, fields.chunk_size), false);
    auto second = (*cipher)->SealChunk(1, o->plaintext.substr(fields.chunk_size), true);
    FUZZ_CHECK(first.ok() && second.ok());
    o->stream = absl::StrCat((*cipher)->header(), *first, *second);
    return o;
  }();
  return *original;
}

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clavis::fuzz;
  const absl::string_view input = AsView(data, size);
  CheckHeader(input);
  (void)DecodeStream(input);

  const Original& o = TheOriginal();
  const std::string tampered = XorOnto(o.stream, input);
  auto decoded = DecodeStream(tampered);
  if (tampered == o.stream) {
    FUZZ_CHECK(decoded.ok() && *decoded == o.plaintext);
  } else {
    FUZZ_CHECK(!decoded.ok());
  }
  return 0;
}
