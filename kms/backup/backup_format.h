// Constants of the backup file format, version 1. The format is specified
// byte by byte in docs/BACKUP.md; change both together, and never change
// what a version means once released (add a version instead).
#ifndef CLAVIS_KMS_BACKUP_BACKUP_FORMAT_H_
#define CLAVIS_KMS_BACKUP_BACKUP_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace clavis::kms::backup_format {

// The first 8 bytes of every backup file.
inline constexpr absl::string_view kMagic = "CLAVISBK";
// The format version this code writes and the only one it reads.
inline constexpr uint8_t kVersion = 1;
// Header body bounds (the u32 after the version byte).
inline constexpr uint32_t kMaxHeaderSize = 64 * 1024;
// Header body: AEAD algorithm of the chunks.
inline constexpr uint8_t kAeadAes256Gcm = 1;
inline constexpr size_t kBackupIdSize = 16;
inline constexpr size_t kBackupKeySize = 32;

// Associated data of the root-wrapped backup key: this label (ending in a
// 0x00 byte) followed by the backup id.
inline constexpr absl::string_view kKeyWrapLabel{"clavis/backup-key/v1\0", 21};
// Associated data of each chunk: this label, the SHA-256 of the header
// (magic to the end of the header body), the chunk index (u64) and flags (u8).
inline constexpr absl::string_view kChunkLabel{"clavis/backup-chunk/v1\0", 23};

// Frame flags: bit 0 marks the final chunk; the other bits must be zero.
inline constexpr uint8_t kFlagFinal = 0x01;

// Records inside the decrypted chunks; a record never spans two chunks.
inline constexpr uint8_t kRecordEntry = 0x01;  // u32 key length, key, u32 value length, value
inline constexpr uint8_t kRecordEnd = 0x02;    // u64 number of entries; last record of the file

// Limits a reader enforces before allocating anything (and a writer before
// writing an entry no reader would accept).
inline constexpr uint32_t kMaxKeySize = 64 * 1024;
inline constexpr uint32_t kMaxValueSize = 16 * 1024 * 1024;
// The largest chunk plaintext: one entry of maximum size and its framing.
inline constexpr uint32_t kMaxChunkPlaintext = 1 + 4 + kMaxKeySize + 4 + kMaxValueSize;
// The writer closes a chunk once it holds this much (unless a single entry
// is larger, which then fills a chunk of its own).
inline constexpr uint32_t kTargetChunkPlaintext = 64 * 1024;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kNonceSize = 12;

}  // namespace clavis::kms::backup_format

#endif  // CLAVIS_KMS_BACKUP_BACKUP_FORMAT_H_
