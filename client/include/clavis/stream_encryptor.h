// StreamEncryptor: encrypts objects of any size (files, backups, blobs) in
// constant memory, as "streams" (docs/FORMAT.md "Stream (v1)"), with one
// data key per stream from a DataKeySource, usually a clavis::Client.
//
//   auto encryptor = clavis::StreamEncryptor::New(client, "tenants/acme/keys/crm");
//   std::ifstream in("backup.tar", std::ios::binary);
//   std::ofstream out("backup.tar.clst", std::ios::binary);
//   absl::Status s = (*encryptor)->Encrypt("acme/backups/2026-11", {{"host", "db1"}}, in, out);
//   ...
//   absl::Status s = (*encryptor)->Decrypt({{"host", "db1"}}, sealed_in, plain_out);
//   if (!s.ok()) { /* discard everything written to plain_out */ }
//
// A stream is a header (naming its key and segment, carrying the wrapped data
// key) followed by chunks of chunk_size plaintext bytes, each AES-256-GCM
// encrypted on its own under a key derived from the data key, numbered, the
// last one marked as last (the STREAM construction of Hoang, Reyhanitabar,
// Rogaway and Vizár, as in Tink's streaming AEAD). Key committing: a stream
// opens under exactly one data key. Decrypting detects a changed, dropped,
// duplicated or reordered chunk, a stream cut anywhere (including exactly
// between chunks), bytes appended after the last chunk, an altered header, and
// another key or context.
//
// !!! Decrypted plaintext is released chunk by chunk, before the end of the
// !!! stream has been seen. Each released chunk is authentic and in its
// !!! place, but the stream as a whole is only known complete (not cut
// !!! short) when StreamOpener::Finish, or Decrypt, returns OK. On any
// !!! failure a caller MUST discard all plaintext it was given for the
// !!! stream (e.g. decrypt into a temporary file and rename it only on OK).
//
// Memory: a sealer or opener holds at most one chunk (plus its 16-byte tag,
// and, while the opener reads the header, up to ~8.6 KiB of it), whatever
// the stream's size; Update returns what is complete at once.
//
// Thread safety: a StreamEncryptor is immutable after New and may be used
// from many threads at once (if the DataKeySource allows it, as every
// implementation must). A StreamSealer or StreamOpener is one stream's state:
// use it from one thread at a time.
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_STREAM_ENCRYPTOR_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_STREAM_ENCRYPTOR_H_

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clavis/data_key_source.h"
#include "clavis/encryption_context.h"

namespace clavis {

struct StreamOptions {
  // Plaintext bytes per chunk when encrypting: 4 KiB..16 MiB. Larger chunks
  // cost less per byte; smaller ones less memory and earlier output. (The
  // decrypting side reads the chunk size from the stream.)
  size_t chunk_size = size_t{1} << 20;
};

// Encrypts one stream. The encrypted stream is header() followed by the
// output of every Update call and then of Finish, in order, concatenated.
class StreamSealer {
 public:
  virtual ~StreamSealer() = default;

  // The stream's header: write it first. Available from the start.
  virtual const std::string& header() const = 0;

  // Takes the next `plaintext` bytes (any amount, including none) and returns
  // the encrypted chunks they complete, possibly none: a full chunk is held
  // back until a byte after it arrives, since only Finish shows whether it is
  // the last. Fails with InvalidArgument("stream is too long: ...") past 2^32
  // chunks. After a failure every call returns the same error; after Finish,
  // FailedPrecondition.
  virtual absl::StatusOr<std::string> Update(absl::string_view plaintext) = 0;

  // Ends the stream: returns the last chunk (held-back bytes; an empty
  // plaintext makes one empty last chunk). Without it the stream is
  // truncated and will not decrypt. Errors as for Update.
  virtual absl::StatusOr<std::string> Finish() = 0;

  // Plaintext bytes held back, for tests and monitoring: at most chunk_size.
  virtual size_t buffered_bytes() const = 0;
};

// Decrypts one stream. Read the warning at the top of this file.
class StreamOpener {
 public:
  virtual ~StreamOpener() = default;

  // Takes the next bytes of the stream, split anywhere (inside the header,
  // inside chunks), and returns the plaintext of the chunks they show to be
  // authentic and not last, possibly none. A complete chunk is held back
  // until the byte after it arrives (then it is not the last) or Finish is
  // called. The first call that completes the header asks the DataKeySource
  // for the data key.
  //
  // Failures, each with InvalidArgument unless said otherwise, and never with
  // stream bytes, key bytes or context values in the message:
  //  - not a stream: "not a Clavis stream (wrong magic)";
  //  - "unsupported stream format version N (this SDK reads version 1)",
  //    "unsupported stream algorithm N";
  //  - a field out of range: "stream <field> of N bytes is outside A..B";
  //  - "stream belongs to key \"A\", not \"B\"" (another encryptor's key);
  //  - the DataKeySource's errors, with their codes (a wrong context or
  //    segment, a disabled key: FAILED_PRECONDITION, ...);
  //  - "stream does not match its data key" (key commitment failed);
  //  - "chunk N failed to decrypt" (N from 0): the chunk was altered, moved,
  //    duplicated or dropped, or the header or context differs;
  //  - "trailing data after the final chunk" (when the last chunk is full;
  //    bytes appended after a shorter last chunk make it fail to decrypt);
  //  - "stream is too long: ..." past 2^32 chunks.
  // After a failure every call returns the same error; after Finish,
  // FailedPrecondition.
  virtual absl::StatusOr<std::string> Update(absl::string_view sealed_bytes) = 0;

  // Declares the end of the input and returns the plaintext of the last
  // chunk. Only when Finish returns OK is the stream known to be complete.
  // Fails with "stream is truncated" if the input ended inside the header, in
  // a chunk's tag, or after a chunk that is not the last, and with
  // "chunk N failed to decrypt" if the last bytes do not form an authentic
  // last chunk (cut inside a chunk, or altered); otherwise as Update.
  virtual absl::StatusOr<std::string> Finish() = 0;

  // Stream bytes held back, for tests and monitoring: at most the stream's
  // chunk size + 16, or, before the header is complete, the header so far.
  virtual size_t buffered_bytes() const = 0;
};

class StreamEncryptor {
 public:
  static constexpr size_t kMinChunkSize = size_t{4} << 10;      // 4 KiB
  static constexpr size_t kMaxChunkSize = size_t{16} << 20;     // 16 MiB
  static constexpr size_t kDefaultChunkSize = size_t{1} << 20;  // 1 MiB

  // An encryptor for the key named `key` ("tenants/{t}/keys/{k}"), sharing
  // ownership of `source`. InvalidArgument if `source` is null, `key` is
  // empty or longer than 256 bytes, or options.chunk_size is outside
  // kMinChunkSize..kMaxChunkSize.
  static absl::StatusOr<std::unique_ptr<StreamEncryptor>> New(std::shared_ptr<DataKeySource> source,
                                                              std::string key,
                                                              StreamOptions options = {});

  // Starts a stream under a new data key of `segment`, bound to `context`.
  // InvalidArgument for a segment outside 1..256 bytes or a context beyond
  // its limits (checked before any call); otherwise the DataKeySource's
  // errors (e.g. FAILED_PRECONDITION for a disabled key).
  absl::StatusOr<std::unique_ptr<StreamSealer>> BeginEncrypt(
      absl::string_view segment, const EncryptionContext& context) const;

  // Starts decrypting a stream made with this encryptor's key (of any
  // segment and chunk size) and the same `context`. InvalidArgument for a
  // context beyond its limits; everything else shows in the opener's calls.
  absl::StatusOr<std::unique_ptr<StreamOpener>> BeginDecrypt(
      const EncryptionContext& context) const;

  // Encrypts all of `in` (read until end of file) to `out`. Errors as for
  // BeginEncrypt and StreamSealer, and DataLoss if `in` cannot be read or
  // `out` written; `out` then holds an unusable partial stream.
  absl::Status Encrypt(absl::string_view segment, const EncryptionContext& context,
                       std::istream& in, std::ostream& out) const;

  // Decrypts a whole stream from `in` to `out`. Errors as for StreamOpener,
  // and DataLoss if `in` cannot be read or `out` written.
  // !!! Plaintext is written to `out` chunk by chunk as it is authenticated;
  // !!! the stream is only known complete when Decrypt returns OK. On
  // !!! failure, `out` may hold a prefix of the plaintext: discard it.
  absl::Status Decrypt(const EncryptionContext& context, std::istream& in, std::ostream& out) const;

  const std::string& key() const { return key_; }
  size_t chunk_size() const { return chunk_size_; }

 private:
  StreamEncryptor(std::shared_ptr<DataKeySource> source, std::string key, size_t chunk_size);

  // Constant after construction.
  const std::shared_ptr<DataKeySource> source_;
  const std::string key_;
  const size_t chunk_size_;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_STREAM_ENCRYPTOR_H_
