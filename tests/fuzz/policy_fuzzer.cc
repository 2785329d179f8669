// Key-policy documents (docs/POLICY.md): JSON that tenant administrators
// send with SetKeyPolicy and CreateKey, parsed on the server.
//
// ParsePolicy must not crash and only ever say InvalidArgument; a policy
// it accepts survives PolicyToJson -> ParsePolicy -> PolicyToJson
// unchanged. Both a key scope and a tenant scope are tried.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kms/policy/policy_parser.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void Check(absl::string_view json, const clavis::kms::policy::PolicyScope& scope) {
  namespace policy = clavis::kms::policy;
  auto parsed = policy::ParsePolicy(json, scope);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  const std::string canonical = policy::PolicyToJson(*parsed);
  auto again = policy::ParsePolicy(canonical, scope);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(policy::PolicyToJson(*again) == canonical);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json = clavis::fuzz::AsView(data, size);
  Check(json, {"acme", "crm"});
  Check(json, {"acme", ""});
  return 0;
}
