// Everything clavisctl's main() does, minus the process: parse the command
// line, run the chosen command against clavisd, print any error, and return
// the exit code (exit_codes.h). main() only passes the real argv, streams and
// $CLAVIS_ENDPOINT, so tests drive the whole CLI through this function.
#ifndef CLAVIS_TOOLS_CLAVISCTL_RUN_H_
#define CLAVIS_TOOLS_CLAVISCTL_RUN_H_

#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

// `endpoint_env` is getenv("CLAVIS_ENDPOINT") (may be null). Never throws.
int Run(int argc, const char* const* argv, const Io& io, const char* endpoint_env);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_RUN_H_
