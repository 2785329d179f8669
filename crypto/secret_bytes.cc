#include "crypto/secret_bytes.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "crypto/internal/secure_pool.h"
#include "crypto/internal/sodium_init.h"

namespace clavis::crypto {

// Small secrets (keys) share locked arenas; larger ones get their own
// sodium_malloc region. The size alone says which, so Release needs no flag.
SecretBytes::SecretBytes(size_t size) {
  if (size == 0) return;
  internal::EnsureSodiumInitialized();
  if (size <= internal::kSecurePoolSlotSize) {
    data_ = internal::SecurePoolAllocate();  // zeroed
  } else {
    // sodium_malloc: guard pages, canary, mlock; sodium_free wipes and unlocks.
    data_ = static_cast<uint8_t*>(sodium_malloc(size));
    if (data_ == nullptr) std::abort();  // never fall back to unprotected memory
    sodium_memzero(data_, size);
  }
  size_ = size;
}

SecretBytes SecretBytes::CopyOf(absl::Span<const uint8_t> bytes) {
  SecretBytes out(bytes.size());
  if (!bytes.empty()) std::memcpy(out.data_, bytes.data(), bytes.size());
  return out;
}

SecretBytes SecretBytes::CopyOf(absl::string_view bytes) {
  return CopyOf(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Release(); }

void SecretBytes::Release() {
  if (data_ != nullptr) {
    if (size_ <= internal::kSecurePoolSlotSize) {
      internal::SecurePoolFree(data_);  // wipes the slot
    } else {
      sodium_free(data_);  // zeroes before unmapping
    }
  }
  data_ = nullptr;
  size_ = 0;
}

SecretBytes SecretBytes::Clone() const { return CopyOf(span()); }

bool SecretBytes::Equals(const SecretBytes& other) const {
  return ConstantTimeEquals(view(), other.view());
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  internal::EnsureSodiumInitialized();
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void SecureWipe(void* bytes, size_t size) {
  if (bytes != nullptr && size > 0) sodium_memzero(bytes, size);
}

}  // namespace clavis::crypto
