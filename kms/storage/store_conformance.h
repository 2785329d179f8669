// The Store conformance suite: the behaviour store.h promises, as GoogleTest
// tests that every backend must pass.
//
// A backend's test file instantiates the suite with a factory that returns a
// fresh, empty store for each test (and owns whatever it needs, such as a
// temporary directory, for the store's lifetime):
//
//   INSTANTIATE_TEST_SUITE_P(Memory, StoreConformanceTest,
//                            ::testing::Values(StoreFactory([] {
//                              return std::make_unique<MemoryStore>();
//                            })));
//
// The tests use only the Store interface. Some are concurrent (several
// threads on one store), so backends are exercised for thread safety too.
#ifndef CLAVIS_KMS_STORAGE_STORE_CONFORMANCE_H_
#define CLAVIS_KMS_STORAGE_STORE_CONFORMANCE_H_

#include <functional>
#include <memory>

#include "gtest/gtest.h"
#include "kms/storage/store.h"

namespace clavis::kms {

// Returns a new, empty store, or nullptr on failure (the test then fails).
using StoreFactory = std::function<std::unique_ptr<Store>()>;

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store& store() { return *store_; }

 private:
  std::unique_ptr<Store> store_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_STORAGE_STORE_CONFORMANCE_H_
