// --json output: the response message in the proto3 JSON mapping, one JSON
// document per command, so scripts can pipe clavisctl into jq.
#ifndef CLAVIS_TOOLS_CLAVISCTL_JSON_OUTPUT_H_
#define CLAVIS_TOOLS_CLAVISCTL_JSON_OUTPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace clavis::clavisctl {

// Indented JSON with lowerCamelCase field names (the canonical mapping, as
// grpcurl prints it). Fields at their default value are printed too, so a
// script sees "requireExplicitSegments": false instead of a missing field.
// Ends with a newline.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// A JSON document from the server (a key policy), re-indented by two spaces
// per level with members in their original order, ending with a newline.
// Only the layout changes: strings and numbers are copied as they are,
// except that a raw control character inside a string becomes \u00XX. Text
// that is not well-formed JSON (unbalanced brackets, an open string) comes
// back unchanged but for TerminalSafe escaping and the final newline.
std::string IndentJson(absl::string_view json);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_JSON_OUTPUT_H_
