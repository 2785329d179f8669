// SecurePool: fixed-size slots for small secrets (keys of up to 64 bytes)
// carved out of large sodium_malloc arenas.
//
// Why: sodium_malloc maps four pages per allocation (guard pages around the
// data), so a cache of 100,000 keys would need 400,000 memory mappings, far
// past Linux's default vm.max_map_count (65,530), and lock far more memory
// than RLIMIT_MEMLOCK allows. Arenas keep sodium_malloc's guarantees for the
// region as a whole (locked, guard pages around it, wiped and unmapped only
// at exit) while one mapping holds 1,024 keys. Slots are wiped on free.
//
// Thread safety: Allocate and Free may be called concurrently.
#ifndef CLAVIS_CRYPTO_INTERNAL_SECURE_POOL_H_
#define CLAVIS_CRYPTO_INTERNAL_SECURE_POOL_H_

#include <cstddef>
#include <cstdint>

namespace clavis::crypto::internal {

constexpr size_t kSecurePoolSlotSize = 64;

// A zeroed slot of kSecurePoolSlotSize bytes; aborts if no secure memory can
// be had (never falls back to ordinary memory).
uint8_t* SecurePoolAllocate();
// Wipes the slot and returns it to the pool. REQUIRES: from SecurePoolAllocate.
void SecurePoolFree(uint8_t* slot);

}  // namespace clavis::crypto::internal

#endif  // CLAVIS_CRYPTO_INTERNAL_SECURE_POOL_H_
