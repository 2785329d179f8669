// --json output: the response message in the proto3 JSON mapping, one JSON
// document per command, so scripts can pipe clavisctl into jq.
#ifndef CLAVIS_TOOLS_CLAVISCTL_JSON_OUTPUT_H_
#define CLAVIS_TOOLS_CLAVISCTL_JSON_OUTPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace clavis::clavisctl {

// Indented JSON with lowerCamelCase field names (the canonical mapping, as
// grpcurl prints it). Fields at their default value are printed too, so a
// script sees "requireExplicitSegments": false instead of a missing field.
// Ends with a newline.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_JSON_OUTPUT_H_
