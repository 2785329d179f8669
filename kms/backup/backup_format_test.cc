// BackupWriter and BackupReader: the backup file format of docs/BACKUP.md
// round trips, and every kind of damage to a file is refused with a clear
// error instead of restoring something else.
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/backup/backup_format.h"
#include "kms/backup/backup_reader.h"
#include "kms/backup/backup_writer.h"
#include "kms/root/key_file_provider.h"
#include "kms/root/root_key_testing.h"

namespace clavis::kms {
namespace {

using root_testing::ScopedTempDir;
using ::testing::HasSubstr;
using Entries = std::vector<std::pair<std::string, std::string>>;

std::unique_ptr<RootKeyProvider> NewRoot(const ScopedTempDir& dir, const std::string& name) {
  auto root = KeyFileRootKeyProvider::Open(dir.Join(name), /*create_if_missing=*/true);
  EXPECT_TRUE(root.ok()) << root.status();
  return root.ok() ? std::unique_ptr<RootKeyProvider>(*std::move(root)) : nullptr;
}

std::string Write(RootKeyProvider* root, const Entries& entries) {
  std::string file;
  auto writer = BackupWriter::New(root, "clavisd test; root key under test",
                                  absl::FromUnixSeconds(1800000000), [&](absl::string_view bytes) {
                                    file.append(bytes.data(), bytes.size());
                                    return absl::OkStatus();
                                  });
  EXPECT_TRUE(writer.ok()) << writer.status();
  if (!writer.ok()) return "";
  for (const auto& [k, v] : entries) EXPECT_TRUE((*writer)->Add(k, v).ok());
  EXPECT_TRUE((*writer)->Finish().ok());
  EXPECT_EQ((*writer)->bytes_written(), file.size());
  return file;
}

// Reads the whole file: the entries, or the first error.
absl::StatusOr<Entries> Read(RootKeyProvider* root, const std::string& file) {
  std::istringstream in(file);
  auto reader = BackupReader::Open(&in, root);
  if (!reader.ok()) return reader.status();
  Entries out;
  std::string k, v;
  while (true) {
    absl::StatusOr<bool> next = (*reader)->Next(&k, &v);
    if (!next.ok()) return next.status();
    if (!*next) return out;
    out.emplace_back(k, v);
  }
}

// Offsets of the frames: [header end, frame 1, ..., end of file].
std::vector<size_t> FrameOffsets(const std::string& file) {
  crypto::ByteReader r(file);
  absl::string_view skipped;
  uint32_t header_size = 0;
  r.ReadBytes(9, &skipped);
  r.ReadU32(&header_size);
  r.ReadBytes(header_size, &skipped);
  std::vector<size_t> offsets;
  while (r.remaining() > 0) {
    offsets.push_back(file.size() - r.remaining());
    uint8_t flags = 0;
    uint32_t size = 0;
    r.ReadU8(&flags);
    r.ReadU32(&size);
    r.ReadBytes(size, &skipped);
  }
  offsets.push_back(file.size());
  return offsets;
}

Entries ManyEntries(int n, size_t value_size) {
  Entries entries;
  for (int i = 0; i < n; ++i) {
    entries.emplace_back(absl::StrCat(std::string("s\0acme\0crm\0seg-", 15), 100000 + i),
                         std::string(value_size, static_cast<char>('a' + i % 26)));
  }
  return entries;
}

class BackupFormatTest : public ::testing::Test {
 protected:
  ScopedTempDir dir_;
  std::unique_ptr<RootKeyProvider> root_ = NewRoot(dir_, "root.key");
};

TEST_F(BackupFormatTest, EmptyStoreRoundTrips) {
  const std::string file = Write(root_.get(), {});
  EXPECT_TRUE(absl::string_view(file).substr(0, 9) == absl::string_view("CLAVISBK\x01", 9));
  auto read = Read(root_.get(), file);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->empty());
}

TEST_F(BackupFormatTest, EntriesRoundTripInOrderAcrossChunks) {
  Entries entries = ManyEntries(300, 700);  // ~210 KiB: several chunks
  entries.emplace_back(std::string("\0\xff", 2), "");
  entries.emplace_back("big", std::string(3 << 20, 'x'));  // a chunk of its own
  entries.emplace_back("z", "last");
  const std::string file = Write(root_.get(), entries);
  EXPECT_GE(FrameOffsets(file).size(), 6u);
  auto read = Read(root_.get(), file);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, entries);
}

TEST_F(BackupFormatTest, HeaderSaysWhoMadeItAndWhen) {
  const std::string file = Write(root_.get(), {{"a", "b"}});
  std::istringstream in(file);
  auto reader = BackupReader::Open(&in, root_.get());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->header().source, "clavisd test; root key under test");
  EXPECT_EQ((*reader)->header().created, absl::FromUnixSeconds(1800000000));
  EXPECT_EQ((*reader)->header().backup_id.size(), 16u);
}

TEST_F(BackupFormatTest, EachBackupHasItsOwnIdAndKey) {
  const std::string a = Write(root_.get(), {{"k", "v"}});
  const std::string b = Write(root_.get(), {{"k", "v"}});
  EXPECT_NE(a, b);
  // The value is nowhere in clear.
  EXPECT_EQ(Write(root_.get(), {{"k", "a distinctive plaintext value"}})
                .find("a distinctive plaintext value"),
            std::string::npos);
}

TEST_F(BackupFormatTest, WrongRootKeyIsRefusedNamingBothRootKeys) {
  const std::string file = Write(root_.get(), {{"k", "v"}});
  std::unique_ptr<RootKeyProvider> other = NewRoot(dir_, "other.key");
  auto read = Read(other.get(), file);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(read.status().message(), HasSubstr("cannot unwrap the backup key"));
  EXPECT_THAT(read.status().message(), HasSubstr(other->Describe()));
  EXPECT_THAT(read.status().message(), HasSubstr("root key under test"));
}

TEST_F(BackupFormatTest, NotABackupIsRefused) {
  for (const std::string& file :
       {std::string(), std::string("CLAVIS"), std::string("{\"not\": \"a backup\"}")}) {
    auto read = Read(root_.get(), file);
    EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument) << file;
    EXPECT_THAT(read.status().message(), HasSubstr("not a Clavis backup file"));
  }
}

TEST_F(BackupFormatTest, OtherFormatVersionIsRefused) {
  std::string file = Write(root_.get(), {{"k", "v"}});
  file[8] = 2;
  auto read = Read(root_.get(), file);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(read.status().message(),
              HasSubstr("backup format version 2 is not supported: this clavisd reads version 1"));
}

TEST_F(BackupFormatTest, TruncationAnywhereIsDetected) {
  const std::string file = Write(root_.get(), ManyEntries(200, 1000));
  const std::vector<size_t> frames = FrameOffsets(file);
  ASSERT_GE(frames.size(), 4u);
  std::vector<size_t> cuts = {9, 12, 20, frames[0] - 1};
  for (size_t i = 0; i + 1 < frames.size(); ++i) {
    cuts.push_back(frames[i]);          // at a chunk boundary: a whole chunk missing
    cuts.push_back(frames[i] + 3);      // inside a frame header
    cuts.push_back(frames[i + 1] - 1);  // one byte short of the chunk's end
  }
  for (size_t cut : cuts) {
    auto read = Read(root_.get(), file.substr(0, cut));
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << "cut at " << cut;
    EXPECT_THAT(read.status().message(), HasSubstr("truncated")) << "cut at " << cut;
  }
}

TEST_F(BackupFormatTest, DataAfterTheFinalChunkIsRefused) {
  const std::string file = Write(root_.get(), {{"k", "v"}});
  auto read = Read(root_.get(), file + "x");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("data after its final chunk"));
  // A second backup appended whole, too.
  read = Read(root_.get(), file + file);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(BackupFormatTest, OversizedLengthsAreRefusedBeforeReading) {
  std::string file = Write(root_.get(), {{"k", "v"}});
  std::string huge_header = file;
  huge_header.replace(9, 4, std::string("\xff\xff\xff\xff", 4));
  auto read = Read(root_.get(), huge_header);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("length 4294967295 is out of range"));

  std::string huge_chunk = file;
  const size_t frame = FrameOffsets(file)[0];
  huge_chunk.replace(frame + 1, 4, std::string("\x7f\xff\xff\xff", 4));
  read = Read(root_.get(), huge_chunk);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("chunk 0 is damaged: its length"));
}

TEST_F(BackupFormatTest, EveryFlippedBitIsDetected) {
  // Small enough to flip every bit of the file: header, frames, ciphertext
  // and tags alike. No flip may ever read back as a backup.
  const std::string file = Write(root_.get(), {{"k1", "v1"}, {"k2", "v2"}});
  for (size_t offset = 0; offset < file.size(); ++offset) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = file;
      damaged[offset] = static_cast<char>(damaged[offset] ^ (1 << bit));
      auto read = Read(root_.get(), damaged);
      ASSERT_FALSE(read.ok()) << "bit " << bit << " of byte " << offset << " went unnoticed";
    }
  }
}

TEST_F(BackupFormatTest, FlippedBitsInALargeBackupAreDetected) {
  const std::string file = Write(root_.get(), ManyEntries(200, 1000));
  const std::vector<size_t> frames = FrameOffsets(file);
  for (size_t offset : {size_t{20}, frames[0] + 2, frames[0] + 5, frames[1] + 100, frames[2] - 1,
                        file.size() / 2, file.size() - 1}) {
    std::string damaged = file;
    damaged[offset] = static_cast<char>(damaged[offset] ^ 0x10);
    auto read = Read(root_.get(), damaged);
    EXPECT_FALSE(read.ok()) << "byte " << offset;
    EXPECT_NE(read.status().code(), absl::StatusCode::kInternal) << read.status();
  }
  std::string in_chunk = file;
  in_chunk[frames[1] + 100] = static_cast<char>(in_chunk[frames[1] + 100] ^ 0x10);
  auto read = Read(root_.get(), in_chunk);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("backup chunk 1 failed authentication"));
}

TEST_F(BackupFormatTest, ReorderedDroppedAndForeignChunksAreDetected) {
  const std::string file = Write(root_.get(), ManyEntries(300, 1000));
  const std::vector<size_t> f = FrameOffsets(file);
  ASSERT_GE(f.size(), 5u);
  auto frame = [&](const std::string& of, const std::vector<size_t>& offsets, size_t i) {
    return of.substr(offsets[i], offsets[i + 1] - offsets[i]);
  };
  const std::string header = file.substr(0, f[0]);
  std::string rest;
  for (size_t i = 3; i + 1 < f.size(); ++i) rest += frame(file, f, i);

  auto swapped =
      Read(root_.get(), header + frame(file, f, 1) + frame(file, f, 0) + frame(file, f, 2) + rest);
  EXPECT_THAT(swapped.status().message(), HasSubstr("chunk 0 failed authentication"));

  auto dropped = Read(root_.get(), header + frame(file, f, 0) + frame(file, f, 2) + rest);
  EXPECT_THAT(dropped.status().message(), HasSubstr("chunk 1 failed authentication"));

  auto duplicated = Read(root_.get(), header + frame(file, f, 0) + frame(file, f, 0) +
                                          frame(file, f, 1) + frame(file, f, 2) + rest);
  EXPECT_THAT(duplicated.status().message(), HasSubstr("chunk 1 failed authentication"));

  // A chunk from another backup under the same root key (another backup
  // key, another header) never opens.
  const std::string other = Write(root_.get(), ManyEntries(300, 1000));
  const std::vector<size_t> g = FrameOffsets(other);
  auto foreign =
      Read(root_.get(), header + frame(file, f, 0) + frame(other, g, 1) + frame(file, f, 2) + rest);
  EXPECT_THAT(foreign.status().message(), HasSubstr("chunk 1 failed authentication"));

  // Cutting the file after a non-final chunk: truncated, not a shorter backup.
  auto cut = Read(root_.get(), header + frame(file, f, 0) + frame(file, f, 1));
  EXPECT_THAT(cut.status().message(), HasSubstr("truncated"));
}

TEST_F(BackupFormatTest, ClearingTheFinalFlagIsDetected) {
  const std::string file = Write(root_.get(), {{"k", "v"}});
  std::string damaged = file;
  damaged[FrameOffsets(file)[0]] = 0;  // final chunk no longer flagged final
  auto read = Read(root_.get(), damaged);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("failed authentication"));
}

TEST_F(BackupFormatTest, TooLargeEntriesAreRefusedByTheWriter) {
  auto writer = BackupWriter::New(root_.get(), "test", absl::Now(),
                                  [](absl::string_view) { return absl::OkStatus(); });
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->Add(std::string(backup_format::kMaxKeySize + 1, 'k'), "v").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*writer)->Add("k", std::string(backup_format::kMaxValueSize + 1, 'v')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*writer)->Finish().ok());
  EXPECT_EQ((*writer)->Add("k", "v").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(BackupFormatTest, ErrorsNameNoValueBytes) {
  const std::string secret = "wrapped-key-material-7f3a9c";
  const std::string file = Write(root_.get(), {{"k", secret}});
  for (size_t offset : {size_t{30}, file.size() - 5}) {
    std::string damaged = file;
    damaged[offset] = static_cast<char>(damaged[offset] ^ 1);
    auto read = Read(root_.get(), damaged);
    ASSERT_FALSE(read.ok());
    EXPECT_THAT(std::string(read.status().message()), ::testing::Not(HasSubstr(secret)));
  }
}

}  // namespace
}  // namespace clavis::kms
