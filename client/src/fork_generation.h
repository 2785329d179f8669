// How many times this process image has been forked into a child: 0 in the
// original process, incremented in a child right after fork(). Key material
// that hands out nonces from a counter must not be used on both sides of a
// fork (parent and child would repeat nonces), so it remembers the
// generation it was made in and refuses to seal in another.
#ifndef CLAVIS_CLIENT_SRC_FORK_GENERATION_H_
#define CLAVIS_CLIENT_SRC_FORK_GENERATION_H_

#include <cstdint>

namespace clavis::client_internal {

uint64_t ForkGeneration();

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_FORK_GENERATION_H_
