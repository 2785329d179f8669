// Plain-text tables for clavisctl's human-readable output: columns padded to
// their widest cell and separated by two spaces, like kubectl or gcloud, so
// that the output is readable and still easy to cut with awk.
#ifndef CLAVIS_TOOLS_CLAVISCTL_TABLE_H_
#define CLAVIS_TOOLS_CLAVISCTL_TABLE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace clavis::clavisctl {

using TableRow = std::vector<std::string>;

// Renders rows (the first one is usually a header) with aligned columns and a
// trailing newline per row; the last column is not padded. Rows may have
// different lengths. Every cell goes through TerminalSafe.
std::string FormatTable(const std::vector<TableRow>& rows);

// Text from the server (descriptions, labels, segment names) shown as is,
// except that control characters are C-escaped ("\x1b"): a stored value must
// not be able to move the cursor or recolour the admin's terminal. UTF-8 is
// kept.
std::string TerminalSafe(absl::string_view text);

// The display width of TerminalSafe output: UTF-8 code points, which is
// right for the Latin, Greek and Cyrillic text labels usually hold.
size_t DisplayWidth(absl::string_view text);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_TABLE_H_
