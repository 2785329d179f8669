// Human-readable views of the API's resources, as clavisctl prints them
// without --json. Pure functions of the messages, so the layout is
// unit-tested and commands only choose which view to print.
//
// Key material never goes through here: the data-plane commands print their
// plaintext themselves (data_commands.cc), where it is the whole point.
#ifndef CLAVIS_TOOLS_CLAVISCTL_RESOURCE_FORMAT_H_
#define CLAVIS_TOOLS_CLAVISCTL_RESOURCE_FORMAT_H_

#include <string>

#include "clavis/v1/key_admin.pb.h"
#include "clavis/v1/resources.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"

namespace clavis::clavisctl {

// RFC 3339 in UTC ("2026-12-01T00:00:00Z"), or "-" when unset (zero).
std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp);
// "90d", "1h30m"; "none" when zero (no rotation schedule).
std::string FormatPeriod(const google::protobuf::Duration& duration);
// "keep", "disable", "disable, then schedule destruction".
std::string FormatRetirement(clavis::v1::VersionRetirement retirement);
// "ENABLED", "PENDING_DESTRUCTION", ...
std::string FormatState(clavis::v1::KeyState state);

// A field table (name, state, origin, ..., labels) followed by one row per
// version: VERSION, STATE, CREATED, KEY CHECK VALUE (and DESTROY TIME when
// any version is pending destruction). The primary version is marked. The
// approvals quorum is shown only when the key has one (non-zero).
std::string FormatKey(const clavis::v1::Key& key);
// FormatKey plus a SEGMENT KEYS column (segment-key versions each version
// still protects) and the re-wrap progress line.
std::string FormatKeyWithUsage(const clavis::v1::Key& key,
                               const clavis::v1::KeyVersionUsage& usage);
// "re-wrap: 40 of 50 segment keys on the primary version (80%); 10 still on
// older versions (clavis-rotator or clavisctl key rewrap moves them)".
std::string FormatRewrapProgress(const clavis::v1::KeyVersionUsage& usage);
// One row per key: NAME, STATE, PRIMARY, ROTATION, CREATED.
std::string FormatKeyList(const google::protobuf::RepeatedPtrField<clavis::v1::Key>& keys);

// A field table followed by one row per segment-key version: VERSION,
// WRAPPED UNDER KEY VERSION, CREATED.
std::string FormatSegment(const clavis::v1::Segment& segment);
// One row per segment: SEGMENT, STATE, PRIMARY, CREATED.
std::string FormatSegmentList(
    const google::protobuf::RepeatedPtrField<clavis::v1::Segment>& segments);

// "re-wrapped N segment keys; M already on the primary version".
std::string FormatRewrapSummary(const clavis::v1::RewrapSegmentsResponse& totals);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_RESOURCE_FORMAT_H_
