// The policy simulator behind `clavisctl policy simulate`: parses a policy
// document as the policy of the resource's key (or tenant) and decides one
// request, so an administrator can check a draft before SetPolicy.
//
// Thread safety: stateless; safe to call concurrently.
#ifndef CLAVIS_KMS_POLICY_SIMULATOR_H_
#define CLAVIS_KMS_POLICY_SIMULATOR_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kms/policy/evaluator.h"

namespace clavis::kms::policy {

struct SimulationResult {
  Decision decision;
  // The deciding statement as a JSON document fragment (empty when none
  // decided), so the CLI can print what matched.
  std::string deciding_statement_json;
};

// InvalidArgument for an invalid policy (the parser's message, pointing at
// the field), an unknown action name, or a malformed principal or resource.
// The principal's tenant is the one in its name. A valid request that the
// policy refuses is OK with decision.allowed == false.
absl::StatusOr<SimulationResult> Simulate(absl::string_view policy_json,
                                          const std::string& principal,
                                          const std::vector<std::string>& groups,
                                          absl::string_view action, const std::string& resource,
                                          const std::optional<std::string>& segment,
                                          const std::map<std::string, std::string>& context,
                                          absl::Time time);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_SIMULATOR_H_
