#include "clavis/stream_encryptor.h"

#include <algorithm>
#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/src/stream_format.h"
#include "crypto/encryption_context.h"

namespace clavis {
namespace {

using client_internal::kStreamTagSize;
using client_internal::StreamChunkCipher;

static_assert(StreamEncryptor::kMinChunkSize == client_internal::kStreamMinChunkSize);
static_assert(StreamEncryptor::kMaxChunkSize == client_internal::kStreamMaxChunkSize);
static_assert(StreamEncryptor::kDefaultChunkSize == StreamOptions{}.chunk_size);

// How much Encrypt and Decrypt read from an istream at a time.
constexpr size_t kIoBlockSize = size_t{64} << 10;

absl::Status Truncated() { return absl::InvalidArgumentError("stream is truncated"); }

absl::Status AlreadyFinished() {
  return absl::FailedPreconditionError("the stream was already finished");
}

absl::Status CheckDataKeySize(size_t size) {
  if (size == DataKeySource::kDataKeySize) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("data key source returned a ", size, "-byte data key; expected 32"));
}

class Sealer final : public StreamSealer {
 public:
  explicit Sealer(std::unique_ptr<StreamChunkCipher> cipher)
      : cipher_(std::move(cipher)), header_(cipher_->header()) {}

  const std::string& header() const override { return header_; }

  absl::StatusOr<std::string> Update(absl::string_view plaintext) override {
    if (!status_.ok()) return status_;
    if (finished_) return AlreadyFinished();
    const size_t n = cipher_->chunk_size();
    std::string out;
    while (!plaintext.empty()) {
      if (pending_.size() == n) {
        // A byte follows the held-back chunk: it is not the last.
        if (absl::Status s = Seal(pending_, /*last=*/false, &out); !s.ok()) return s;
        pending_.clear();
      } else if (pending_.empty() && plaintext.size() > n) {
        // A whole chunk with more after it, sealed without copying it first.
        if (absl::Status s = Seal(plaintext.substr(0, n), /*last=*/false, &out); !s.ok()) return s;
        plaintext.remove_prefix(n);
      } else {
        if (pending_.capacity() < n) pending_.reserve(n);
        const size_t take = std::min(n - pending_.size(), plaintext.size());
        pending_.append(plaintext.data(), take);
        plaintext.remove_prefix(take);
      }
    }
    return out;
  }

  absl::StatusOr<std::string> Finish() override {
    if (!status_.ok()) return status_;
    if (finished_) return AlreadyFinished();
    finished_ = true;
    std::string out;
    if (absl::Status s = Seal(pending_, /*last=*/true, &out); !s.ok()) return s;
    std::string().swap(pending_);
    return out;
  }

  size_t buffered_bytes() const override { return pending_.size(); }

 private:
  // Seals chunk number next_index_ onto *out; a failure sticks.
  absl::Status Seal(absl::string_view plaintext, bool last, std::string* out) {
    absl::StatusOr<std::string> chunk = cipher_->SealChunk(next_index_, plaintext, last);
    if (!chunk.ok()) {
      status_ = chunk.status();
      return status_;
    }
    out->append(*chunk);
    ++next_index_;
    return absl::OkStatus();
  }

  const std::unique_ptr<StreamChunkCipher> cipher_;
  const std::string header_;
  std::string pending_;  // plaintext of the next chunk, at most chunk_size bytes
  uint64_t next_index_ = 0;
  bool finished_ = false;
  absl::Status status_;  // the first failure, returned by every later call
};

class Opener final : public StreamOpener {
 public:
  Opener(std::shared_ptr<DataKeySource> source, std::string key, EncryptionContext context)
      : source_(std::move(source)),
        key_(std::move(key)),
        context_(std::move(context)),
        canonical_context_(crypto::CanonicalEncryptionContext(context_)) {}

  absl::StatusOr<std::string> Update(absl::string_view sealed) override {
    if (!status_.ok()) return status_;
    if (finished_) return AlreadyFinished();
    if (cipher_ == nullptr) {
      if (absl::Status s = TakeHeader(&sealed); !s.ok()) return Fail(s);
      if (cipher_ == nullptr) return std::string();  // all of `sealed` was header
    }
    const size_t full = size_t{cipher_->chunk_size()} + kStreamTagSize;
    std::string out;
    while (!sealed.empty()) {
      if (pending_.size() == full) {
        // A byte follows the held-back chunk: it is not the last.
        if (absl::Status s = OpenNotLast(pending_, &out); !s.ok()) return Fail(s);
        pending_.clear();
      } else if (pending_.empty() && sealed.size() > full) {
        // A whole chunk with more after it, opened without copying it first.
        if (absl::Status s = OpenNotLast(sealed.substr(0, full), &out); !s.ok()) return Fail(s);
        sealed.remove_prefix(full);
      } else {
        if (pending_.capacity() < full) pending_.reserve(full);
        const size_t take = std::min(full - pending_.size(), sealed.size());
        pending_.append(sealed.data(), take);
        sealed.remove_prefix(take);
      }
    }
    return out;
  }

  absl::StatusOr<std::string> Finish() override {
    if (!status_.ok()) return status_;
    if (finished_) return AlreadyFinished();
    finished_ = true;
    // No header, or not even a tag after the last authentic chunk.
    if (cipher_ == nullptr || pending_.size() < kStreamTagSize) return Fail(Truncated());
    absl::StatusOr<std::string> last = cipher_->OpenChunk(next_index_, pending_, /*last=*/true);
    if (!last.ok()) {
      // A full chunk that opens as "not last": the stream was cut right
      // after it, at a chunk boundary.
      if (pending_.size() == size_t{cipher_->chunk_size()} + kStreamTagSize &&
          cipher_->OpenChunk(next_index_, pending_, /*last=*/false).ok()) {
        return Fail(Truncated());
      }
      return Fail(last.status());
    }
    std::string().swap(pending_);
    return last;
  }

  size_t buffered_bytes() const override { return header_.size() + pending_.size(); }

 private:
  absl::Status Fail(absl::Status status) {
    status_ = std::move(status);
    std::string().swap(header_);
    std::string().swap(pending_);
    return status_;
  }

  // Moves header bytes from the front of *sealed into header_ until the
  // header is complete, then sets up cipher_. Copies only a header that
  // arrives in pieces.
  absl::Status TakeHeader(absl::string_view* sealed) {
    absl::string_view input = *sealed;
    size_t already = 0;
    if (!header_.empty()) {
      // Never more than a header can hold: a longer input has a complete
      // header or an invalid one.
      already = header_.size();
      const absl::string_view more =
          sealed->substr(0, client_internal::kStreamMaxHeaderSize - already);
      header_.append(more.data(), more.size());
      input = header_;
    }
    absl::StatusOr<std::optional<client_internal::ParsedStreamHeader>> parsed =
        client_internal::ParseStreamHeader(input);
    if (!parsed.ok()) return parsed.status();
    if (!parsed->has_value()) {
      if (header_.empty()) header_ = std::string(input);
      sealed->remove_prefix(header_.size() - already);
      return absl::OkStatus();
    }
    const client_internal::ParsedStreamHeader& header = **parsed;
    sealed->remove_prefix(header.header.size() - already);
    if (header.fields.key != key_) {
      // Key names are not secret; naming both tells the operator what to fix.
      return absl::InvalidArgumentError(
          absl::StrCat("stream belongs to key \"", header.fields.key, "\", not \"", key_, "\""));
    }
    // The source refuses a blob of another key or segment, so the header's
    // names are vouched for by the server, not just by the stream.
    absl::StatusOr<SecretBytes> data_key = source_->DecryptDataKey(
        header.fields.key, header.fields.segment, header.fields.data_key_blob, context_);
    if (!data_key.ok()) return data_key.status();
    if (absl::Status s = CheckDataKeySize(data_key->size()); !s.ok()) return s;
    absl::StatusOr<std::unique_ptr<StreamChunkCipher>> cipher =
        StreamChunkCipher::ForReading(header, *data_key, canonical_context_);
    if (!cipher.ok()) return cipher.status();
    cipher_ = std::move(*cipher);
    std::string().swap(header_);  // the cipher keeps its own copy
    return absl::OkStatus();
  }

  // Opens chunk number next_index_, known not to be the last, onto *out.
  absl::Status OpenNotLast(absl::string_view chunk, std::string* out) {
    absl::StatusOr<std::string> plaintext = cipher_->OpenChunk(next_index_, chunk, /*last=*/false);
    if (!plaintext.ok()) {
      // A full-size last chunk followed by more bytes.
      if (cipher_->OpenChunk(next_index_, chunk, /*last=*/true).ok()) {
        return absl::InvalidArgumentError("trailing data after the final chunk");
      }
      return plaintext.status();
    }
    out->append(*plaintext);
    ++next_index_;
    return absl::OkStatus();
  }

  const std::shared_ptr<DataKeySource> source_;
  const std::string key_;
  const EncryptionContext context_;
  const std::string canonical_context_;
  std::string header_;                         // a header that has arrived in part
  std::unique_ptr<StreamChunkCipher> cipher_;  // set once the header is complete
  std::string pending_;  // the next chunk (ciphertext || tag), at most chunk_size + 16 bytes
  uint64_t next_index_ = 0;
  bool finished_ = false;
  absl::Status status_;  // the first failure, returned by every later call
};

absl::Status ReadFailed() { return absl::DataLossError("reading the input stream failed"); }
absl::Status WriteFailed() { return absl::DataLossError("writing the output stream failed"); }

absl::Status Write(std::ostream& out, absl::string_view bytes) {
  if (!bytes.empty()) out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out ? absl::OkStatus() : WriteFailed();
}

// Feeds all of `in` through `update` in blocks, writing what it returns.
template <typename UpdateFn>
absl::Status Pump(std::istream& in, std::ostream& out, UpdateFn update) {
  if (in.fail()) return ReadFailed();
  std::string block(kIoBlockSize, '\0');
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    if (in.bad()) return ReadFailed();
    const size_t got = static_cast<size_t>(in.gcount());
    if (got == 0) continue;
    absl::StatusOr<std::string> output = update(absl::string_view(block.data(), got));
    if (!output.ok()) return output.status();
    if (absl::Status s = Write(out, *output); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<StreamEncryptor>> StreamEncryptor::New(
    std::shared_ptr<DataKeySource> source, std::string key, StreamOptions options) {
  if (source == nullptr) return absl::InvalidArgumentError("data key source is null");
  if (key.empty() || key.size() > client_internal::kStreamMaxKeyNameSize) {
    return absl::InvalidArgumentError(absl::StrCat("key name must be 1..",
                                                   client_internal::kStreamMaxKeyNameSize,
                                                   " bytes, not ", key.size()));
  }
  if (options.chunk_size < kMinChunkSize || options.chunk_size > kMaxChunkSize) {
    return absl::InvalidArgumentError(absl::StrCat("chunk size must be ", kMinChunkSize, "..",
                                                   kMaxChunkSize, " bytes, not ",
                                                   options.chunk_size));
  }
  return std::unique_ptr<StreamEncryptor>(
      new StreamEncryptor(std::move(source), std::move(key), options.chunk_size));
}

StreamEncryptor::StreamEncryptor(std::shared_ptr<DataKeySource> source, std::string key,
                                 size_t chunk_size)
    : source_(std::move(source)), key_(std::move(key)), chunk_size_(chunk_size) {}

absl::StatusOr<std::unique_ptr<StreamSealer>> StreamEncryptor::BeginEncrypt(
    absl::string_view segment, const EncryptionContext& context) const {
  // Checked before asking for a data key, so bad input costs no round trip.
  if (segment.empty() || segment.size() > client_internal::kStreamMaxSegmentSize) {
    return absl::InvalidArgumentError(absl::StrCat("segment must be 1..",
                                                   client_internal::kStreamMaxSegmentSize,
                                                   " bytes, not ", segment.size()));
  }
  if (absl::Status s = crypto::ValidateEncryptionContext(context); !s.ok()) return s;

  absl::StatusOr<DataKey> data_key = source_->GenerateDataKey(key_, segment, context);
  if (!data_key.ok()) return data_key.status();
  if (absl::Status s = CheckDataKeySize(data_key->plaintext.size()); !s.ok()) return s;
  client_internal::StreamHeaderFields fields{key_, segment, data_key->ciphertext_blob,
                                             static_cast<uint32_t>(chunk_size_)};
  absl::StatusOr<std::unique_ptr<StreamChunkCipher>> cipher = StreamChunkCipher::ForWriting(
      data_key->plaintext, fields, crypto::CanonicalEncryptionContext(context));
  if (!cipher.ok()) return cipher.status();
  return std::make_unique<Sealer>(std::move(*cipher));
}

absl::StatusOr<std::unique_ptr<StreamOpener>> StreamEncryptor::BeginDecrypt(
    const EncryptionContext& context) const {
  if (absl::Status s = crypto::ValidateEncryptionContext(context); !s.ok()) return s;
  return std::make_unique<Opener>(source_, key_, context);
}

absl::Status StreamEncryptor::Encrypt(absl::string_view segment, const EncryptionContext& context,
                                      std::istream& in, std::ostream& out) const {
  absl::StatusOr<std::unique_ptr<StreamSealer>> sealer = BeginEncrypt(segment, context);
  if (!sealer.ok()) return sealer.status();
  if (absl::Status s = Write(out, (*sealer)->header()); !s.ok()) return s;
  if (absl::Status s = Pump(in, out, [&](absl::string_view b) { return (*sealer)->Update(b); });
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> last = (*sealer)->Finish();
  if (!last.ok()) return last.status();
  if (absl::Status s = Write(out, *last); !s.ok()) return s;
  return out.flush() ? absl::OkStatus() : WriteFailed();
}

absl::Status StreamEncryptor::Decrypt(const EncryptionContext& context, std::istream& in,
                                      std::ostream& out) const {
  absl::StatusOr<std::unique_ptr<StreamOpener>> opener = BeginDecrypt(context);
  if (!opener.ok()) return opener.status();
  if (absl::Status s = Pump(in, out, [&](absl::string_view b) { return (*opener)->Update(b); });
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> last = (*opener)->Finish();
  if (!last.ok()) return last.status();
  if (absl::Status s = Write(out, *last); !s.ok()) return s;
  return out.flush() ? absl::OkStatus() : WriteFailed();
}

}  // namespace clavis
