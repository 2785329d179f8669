#include "client/src/fork_generation.h"

#include <pthread.h>

#include <atomic>
#include <mutex>

namespace clavis::client_internal {
namespace {

std::atomic<uint64_t> generation{0};

void InChild() { generation.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

uint64_t ForkGeneration() {
  static std::once_flag registered;
  std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, &InChild); });
  return generation.load(std::memory_order_relaxed);
}

}  // namespace clavis::client_internal
