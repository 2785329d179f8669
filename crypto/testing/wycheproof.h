// Test-only loader of the Wycheproof JSON vectors in ../shared.
//
// Files are read from CLAVIS_WYCHEPROOF_DIR (set by CMake relative to the
// repository root). A missing or unreadable file fails the test loudly
// through ADD_FAILURE: vectors silently skipped would prove nothing.
#ifndef CLAVIS_CRYPTO_TESTING_WYCHEPROOF_H_
#define CLAVIS_CRYPTO_TESTING_WYCHEPROOF_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/struct.pb.h"

namespace clavis::crypto::testing {

// One test case with the fields of its group, for convenience.
struct WycheproofCase {
  const google::protobuf::Struct* group = nullptr;  // owned by WycheproofFile
  const google::protobuf::Struct* test = nullptr;   // owned by WycheproofFile
  int tc_id = 0;
  std::string result;  // "valid", "invalid" or "acceptable"
  std::string comment;

  // The named string field of the test (or of the group, if the test has
  // none); hex fields are decoded. Empty if absent.
  std::string Str(const std::string& name) const;
  std::string Hex(const std::string& name) const;
  double Num(const std::string& name) const;
  bool HasFlag(const std::string& flag) const;
};

struct WycheproofFile {
  google::protobuf::Struct root;
  std::vector<WycheproofCase> cases;
};

// Loads `file_name` (e.g. "aes_gcm_test.json"). Errors name the path tried.
// Heap-allocated because the cases point into `root`.
absl::StatusOr<std::unique_ptr<WycheproofFile>> LoadWycheproof(const std::string& file_name);

// Decodes lower-case hex; aborts the test on malformed input (vectors are
// trusted test data).
std::string HexToBytes(const std::string& hex);

}  // namespace clavis::crypto::testing

#endif  // CLAVIS_CRYPTO_TESTING_WYCHEPROOF_H_
