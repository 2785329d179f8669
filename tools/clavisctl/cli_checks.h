// CLI11 validators for clavisctl's value syntaxes, built on args.h, so that a
// malformed duration, time or key=value entry is rejected while parsing: it
// then gets CLI11's usage message and exit code 2 like any other usage error.
#ifndef CLAVIS_TOOLS_CLAVISCTL_CLI_CHECKS_H_
#define CLAVIS_TOOLS_CLAVISCTL_CLI_CHECKS_H_

#include <string>

#include "CLI/CLI.hpp"

namespace clavis::clavisctl {

// "90d", "1h30m", "0s" (ParseDuration).
CLI::Validator DurationCheck();
// A duration in (0s, 1d], for --timeout: a longer deadline is no deadline in
// practice, and the bound keeps now + timeout far from time_point overflow.
CLI::Validator TimeoutCheck();
// RFC 3339 (ParseTime).
CLI::Validator TimeCheck();
// One "key=value" entry (ParseKeyValue). Duplicate keys across entries are
// caught later, by ParseKeyValues in the command.
CLI::Validator KeyValueCheck();

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_CLI_CHECKS_H_
