#include "tools/clavisctl/resource_format.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

bool IsSet(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.empty()) return "-";
  // protobuf maps have no stable order; sort so output is reproducible.
  const std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  return absl::StrJoin(sorted, ", ", absl::PairFormatter("="));
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

}  // namespace

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp) {
  if (!IsSet(timestamp)) return "-";
  // RFC3339_sec would write "+00:00"; "Z" is shorter and what users type.
  // Sub-second digits are dropped: nobody schedules key work by the millisecond.
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", FromProtoTimestamp(timestamp), absl::UTCTimeZone());
}

std::string FormatPeriod(const google::protobuf::Duration& duration) {
  const absl::Duration d = FromProtoDuration(duration);
  if (d == absl::ZeroDuration()) return "none";
  return FormatCompactDuration(d);
}

std::string FormatState(clavis::v1::KeyState state) {
  const std::string& name = clavis::v1::KeyState_Name(state);
  // A state added to the API after this binary was built has no name here.
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

namespace {

// FormatKey with, when `usage` is set, a SEGMENT KEYS column.
std::string FormatKeyTable(const clavis::v1::Key& key, const clavis::v1::KeyVersionUsage* usage) {
  std::vector<TableRow> fields = {
      {"name", key.name()},
      {"state", FormatState(key.state())},
      {"origin", clavis::v1::KeyOrigin_Name(key.origin())},
      {"description", OrDash(key.description())},
      {"labels", FormatLabels(key.labels())},
      {"created", FormatTimestamp(key.create_time())},
      {"state changed", FormatTimestamp(key.state_change_time())},
      {"primary version", absl::StrCat(key.primary_version())},
      {"rotation period", FormatPeriod(key.rotation_period())},
      {"next rotation", FormatTimestamp(key.next_rotation_time())},
      {"segment rotation", FormatPeriod(key.segment_rotation_period())},
      {"unused versions", FormatRetirement(key.version_retirement())},
      {"explicit segments", key.require_explicit_segments() ? "required" : "not required"},
  };
  if (key.approvals_required() > 0) {
    // 1 means the same as 0 (no approval), but show what the key says.
    fields.push_back({"approvals required", absl::StrCat(key.approvals_required())});
  }
  if (IsSet(key.destroy_time())) {
    fields.push_back({"destroy time", FormatTimestamp(key.destroy_time())});
  }
  std::string out = FormatTable(fields);
  if (key.versions().empty()) return out;

  std::map<uint32_t, uint64_t> segment_keys;
  if (usage != nullptr) {
    for (const auto& v : usage->versions()) segment_keys[v.version()] = v.segment_key_versions();
  }
  bool any_destroy_time = false, any_expiry = false, any_compromise = false;
  for (const clavis::v1::KeyVersion& v : key.versions()) {
    any_destroy_time = any_destroy_time || IsSet(v.destroy_time());
    any_expiry = any_expiry || IsSet(v.material_expire_time());
    any_compromise = any_compromise || IsSet(v.compromise_time());
  }
  std::vector<TableRow> rows;
  TableRow header = {"VERSION", "STATE", "CREATED"};
  if (any_destroy_time) header.push_back("DESTROY TIME");
  if (any_expiry) header.push_back("MATERIAL EXPIRES");
  if (any_compromise) header.push_back("COMPROMISED");
  if (usage != nullptr) header.push_back("SEGMENT KEYS");
  header.push_back("KEY CHECK VALUE");
  rows.push_back(std::move(header));
  for (const clavis::v1::KeyVersion& v : key.versions()) {
    TableRow row = {
        absl::StrCat(v.version(), v.version() == key.primary_version() ? " (primary)" : ""),
        FormatState(v.state()), FormatTimestamp(v.create_time())};
    if (any_destroy_time) row.push_back(FormatTimestamp(v.destroy_time()));
    if (any_expiry) row.push_back(FormatTimestamp(v.material_expire_time()));
    if (any_compromise) row.push_back(FormatTimestamp(v.compromise_time()));
    if (usage != nullptr) {
      auto found = segment_keys.find(v.version());
      // A version created after the scan began is not in it.
      row.push_back(found == segment_keys.end() ? "-" : absl::StrCat(found->second));
    }
    row.push_back(OrDash(v.key_check_value()));
    rows.push_back(std::move(row));
  }
  absl::StrAppend(&out, "\n", FormatTable(rows));
  if (usage != nullptr) absl::StrAppend(&out, FormatRewrapProgress(*usage), "\n");
  return out;
}

}  // namespace

std::string FormatRetirement(clavis::v1::VersionRetirement retirement) {
  switch (retirement) {
    case clavis::v1::DISABLE_UNUSED_VERSIONS:
      return "disable";
    case clavis::v1::DESTROY_UNUSED_VERSIONS:
      return "disable, then schedule destruction";
    default:
      return "keep";
  }
}

std::string FormatKey(const clavis::v1::Key& key) { return FormatKeyTable(key, nullptr); }

std::string FormatKeyWithUsage(const clavis::v1::Key& key,
                               const clavis::v1::KeyVersionUsage& usage) {
  return FormatKeyTable(key, &usage);
}

std::string FormatRewrapProgress(const clavis::v1::KeyVersionUsage& usage) {
  uint64_t on_primary = 0, total = 0;
  for (const auto& v : usage.versions()) {
    total += v.segment_key_versions();
    if (v.primary()) on_primary += v.segment_key_versions();
  }
  if (total == 0) {
    return absl::StrCat("re-wrap: no segment keys yet (", usage.segments_scanned(),
                        " segments scanned)");
  }
  const uint64_t old = total - on_primary;
  std::string out =
      absl::StrCat("re-wrap: ", on_primary, " of ", total, " segment keys on the primary version (",
                   on_primary * 100 / total, "%)");
  if (old > 0) {
    absl::StrAppend(&out, "; ", old,
                    " still on older versions (clavis-rotator or clavisctl key rewrap moves them)");
  }
  return out;
}

std::string FormatKeyList(const google::protobuf::RepeatedPtrField<clavis::v1::Key>& keys) {
  std::vector<TableRow> rows = {{"NAME", "STATE", "PRIMARY", "ROTATION", "CREATED"}};
  for (const clavis::v1::Key& key : keys) {
    rows.push_back({key.name(), FormatState(key.state()), absl::StrCat(key.primary_version()),
                    FormatPeriod(key.rotation_period()), FormatTimestamp(key.create_time())});
  }
  return FormatTable(rows);
}

std::string FormatSegment(const clavis::v1::Segment& segment) {
  std::vector<TableRow> fields = {
      {"name", segment.name()},
      {"segment", segment.segment()},
      {"state", FormatState(segment.state())},
      {"created", FormatTimestamp(segment.create_time())},
      {"state changed", FormatTimestamp(segment.state_change_time())},
      {"primary version", absl::StrCat(segment.primary_version())},
  };
  if (IsSet(segment.destroy_time())) {
    fields.push_back({"destroy time", FormatTimestamp(segment.destroy_time())});
  }
  std::string out = FormatTable(fields);
  if (segment.versions().empty()) return out;

  std::vector<TableRow> rows = {{"VERSION", "WRAPPED UNDER KEY VERSION", "CREATED"}};
  for (const clavis::v1::SegmentVersion& v : segment.versions()) {
    rows.push_back(
        {absl::StrCat(v.version(), v.version() == segment.primary_version() ? " (primary)" : ""),
         absl::StrCat(v.wrapped_under_key_version()), FormatTimestamp(v.create_time())});
  }
  absl::StrAppend(&out, "\n", FormatTable(rows));
  return out;
}

std::string FormatSegmentList(
    const google::protobuf::RepeatedPtrField<clavis::v1::Segment>& segments) {
  std::vector<TableRow> rows = {{"SEGMENT", "STATE", "PRIMARY", "CREATED"}};
  for (const clavis::v1::Segment& s : segments) {
    rows.push_back({s.segment(), FormatState(s.state()), absl::StrCat(s.primary_version()),
                    FormatTimestamp(s.create_time())});
  }
  return FormatTable(rows);
}

std::string FormatRewrapSummary(const clavis::v1::RewrapSegmentsResponse& totals) {
  std::string out = absl::StrCat("re-wrapped ", totals.rewrapped(), " segment keys; ",
                                 totals.already_current(), " already on the primary version\n");
  if (totals.compromised_rewrapped() > 0 || totals.segments_rotated() > 0) {
    absl::StrAppend(&out, totals.compromised_rewrapped(),
                    " segment keys moved off compromised versions (each audited); ",
                    totals.segments_rotated(), " segments got a fresh segment key for new data\n");
  }
  return out;
}

}  // namespace clavis::clavisctl
