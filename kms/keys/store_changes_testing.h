// Test helpers: what a store change feed would report for what happened
// between two snapshots of a (single-process) store, so the code that
// consumes a feed (StoreFollower, record_events) can be tested with real
// records written by the real domain code.
#ifndef CLAVIS_KMS_KEYS_STORE_CHANGES_TESTING_H_
#define CLAVIS_KMS_KEYS_STORE_CHANGES_TESTING_H_

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kms/storage/store.h"

namespace clavis::kms::testing {

using StoreSnapshot = std::map<std::string, std::string>;

inline StoreSnapshot Snapshot(Store& store) {
  StoreSnapshot out;
  absl::Status s = store.ExportSnapshot([&](absl::string_view k, absl::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// Every entry that differs, in key order, with its old and new value.
inline std::vector<StoreChange> Diff(const StoreSnapshot& before, const StoreSnapshot& after) {
  std::vector<StoreChange> out;
  for (const auto& [key, value] : after) {
    auto it = before.find(key);
    if (it == before.end()) {
      out.push_back(StoreChange{key, std::nullopt, value});
    } else if (it->second != value) {
      out.push_back(StoreChange{key, it->second, value});
    }
  }
  for (const auto& [key, value] : before) {
    if (after.count(key) == 0) out.push_back(StoreChange{key, value, std::nullopt});
  }
  return out;
}

}  // namespace clavis::kms::testing

#endif  // CLAVIS_KMS_KEYS_STORE_CHANGES_TESTING_H_
