#include "crypto/internal/secure_pool.h"

#include <sodium.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "crypto/internal/sodium_init.h"

namespace clavis::crypto::internal {
namespace {

constexpr size_t kSlotsPerArena = 1024;
constexpr size_t kArenaSize = kSlotsPerArena * kSecurePoolSlotSize;  // 64 KiB

class Pool {
 public:
  uint8_t* Allocate() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) Grow();
    uint8_t* slot = free_.back();
    free_.pop_back();
    return slot;
  }

  void Free(uint8_t* slot) {
    sodium_memzero(slot, kSecurePoolSlotSize);
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(slot);
  }

 private:
  void Grow() {
    EnsureSodiumInitialized();
    // Arenas are never returned: their slots are wiped on free, and keeping
    // them avoids unmapping memory another thread's slot lives in.
    auto* arena = static_cast<uint8_t*>(sodium_malloc(kArenaSize));
    if (arena == nullptr) std::abort();
    sodium_memzero(arena, kArenaSize);
    free_.reserve(free_.size() + kSlotsPerArena);
    for (size_t i = kSlotsPerArena; i > 0; --i) {
      free_.push_back(arena + (i - 1) * kSecurePoolSlotSize);
    }
  }

  std::mutex mu_;
  std::vector<uint8_t*> free_;
};

Pool& ThePool() {
  static Pool* pool = new Pool();  // never destroyed: slots may outlive statics
  return *pool;
}

}  // namespace

uint8_t* SecurePoolAllocate() { return ThePool().Allocate(); }

void SecurePoolFree(uint8_t* slot) { ThePool().Free(slot); }

}  // namespace clavis::crypto::internal
