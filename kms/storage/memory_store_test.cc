#include "kms/storage/memory_store.h"

#include <memory>

#include "gtest/gtest.h"
#include "kms/storage/store_conformance.h"

namespace clavis::kms {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, StoreConformanceTest,
                         ::testing::Values(StoreFactory([]() -> std::unique_ptr<Store> {
                           return std::make_unique<MemoryStore>();
                         })));

}  // namespace
}  // namespace clavis::kms
