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
// A whole number of at least 1 that fits an int (counts, page and batch
// sizes). CLI::PositiveNumber would say "Value 0 not in range 0.000000 to
// 1.797...e+308", which reads as if 0 were allowed.
CLI::Validator CountCheck();
// RFC 3339 (ParseTime).
CLI::Validator TimeCheck();
// One "key=value" entry (ParseKeyValue). Duplicate keys across entries are
// caught later, by ParseKeyValues in the command.
CLI::Validator KeyValueCheck();

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_CLI_CHECKS_H_
