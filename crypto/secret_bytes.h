// SecretBytes: key material in locked, guarded memory that is zeroed on free.
//
// Guarantees:
//  - The bytes live in memory from sodium_malloc(): locked into RAM (best
//    effort: mlock failure under a low RLIMIT_MEMLOCK is tolerated by
//    libsodium), guard pages around the region, and wiped with a call the
//    compiler cannot drop when the object is destroyed. Secrets of up to 64
//    bytes share 64 KiB arenas (internal/secure_pool.h), so millions of
//    cached keys do not exhaust the process's memory mappings.
//  - Move-only: a copy must be asked for by name (Clone), so every duplication
//    of key material is visible in review.
//  - Never printable: there is no operator<< and no conversion to string.
//  - Equality is constant-time in the contents (the lengths are not secret).
//
// Thread safety: like std::string: concurrent const access is safe.
#ifndef CLAVIS_CRYPTO_SECRET_BYTES_H_
#define CLAVIS_CRYPTO_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace clavis::crypto {

class SecretBytes {
 public:
  // An empty value (size 0, no allocation).
  SecretBytes() = default;
  // `size` zero bytes. Aborts if secure memory cannot be allocated: running on
  // without it would silently put keys in ordinary memory.
  explicit SecretBytes(size_t size);
  // A copy of `bytes` in secure memory. The caller stays responsible for
  // wiping its own copy.
  static SecretBytes CopyOf(absl::Span<const uint8_t> bytes);
  static SecretBytes CopyOf(absl::string_view bytes);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  // An explicit deep copy.
  SecretBytes Clone() const;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  absl::Span<const uint8_t> span() const { return {data_, size_}; }
  // A view for APIs that take bytes as a string_view. Do not copy it into an
  // ordinary std::string unless that string is wiped afterwards.
  absl::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

  // Constant-time comparison of the contents; false when sizes differ.
  bool Equals(const SecretBytes& other) const;
  friend bool operator==(const SecretBytes& a, const SecretBytes& b) { return a.Equals(b); }
  friend bool operator!=(const SecretBytes& a, const SecretBytes& b) { return !a.Equals(b); }

 private:
  void Release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Constant-time equality of two byte strings of the same length; false when
// the lengths differ (lengths are not treated as secret).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Wipes `bytes` with a call the compiler cannot remove.
void SecureWipe(void* bytes, size_t size);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_SECRET_BYTES_H_
