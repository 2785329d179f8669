#include "kms/policy/policy.h"

#include "absl/strings/str_cat.h"
#include "kms/keys/names.h"

namespace clavis::kms::policy {

std::string PolicyScope::ToString() const {
  if (key_id.empty()) return absl::StrCat("tenants/", tenant);
  return absl::StrCat("tenants/", tenant, "/keys/", key_id);
}

uint32_t DailyHours::HourMask() const {
  uint32_t mask = 0;
  for (int hour = 0; hour < 24; ++hour) {
    bool inside = start_hour < end_hour ? (hour >= start_hour && hour < end_hour)
                                        : (hour >= start_hour || hour < end_hour);
    if (inside) mask |= uint32_t{1} << hour;
  }
  return mask;
}

std::string DescribeStatement(const Policy& policy, size_t index) {
  const Statement& statement = policy.statements[index];
  if (statement.sid.empty()) return absl::StrCat("statement ", index);
  // Sids are validated to a safe charset; quoting keeps the format uniform.
  return absl::StrCat("statement ", index, " (sid \"", statement.sid, "\")");
}

}  // namespace clavis::kms::policy
