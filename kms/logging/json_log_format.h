// Structured logs for the Clavis daemons: spdlog's output as JSON Lines, one
// object per record, so a log shipper (journald, Loki, Elasticsearch) gets
// fields instead of text to parse:
//   {"time":"2026-11-24T05:15:37.148Z","level":"info","logger":"","msg":"..."}
// Time is UTC with milliseconds; `msg` is the record's text, JSON-escaped
// (quotes, backslashes, control characters; invalid UTF-8 is replaced), so a
// value that came from a request cannot break the line or forge a field.
//
// Thread safety: as spdlog's (set the format before starting threads).
#ifndef CLAVIS_KMS_LOGGING_JSON_LOG_FORMAT_H_
#define CLAVIS_KMS_LOGGING_JSON_LOG_FORMAT_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/formatter.h"

namespace clavis::logging {

// A formatter writing the JSON Lines above (for a logger or a sink).
std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter();

// Applies `--log_format`: "text" (spdlog's default pattern) or "json" to
// every registered logger. InvalidArgument for anything else.
absl::Status SetLogFormat(absl::string_view format);

}  // namespace clavis::logging

#endif  // CLAVIS_KMS_LOGGING_JSON_LOG_FORMAT_H_
