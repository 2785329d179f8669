#include "tools/clavisctl/table.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace clavis::clavisctl {

std::string TerminalSafe(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      absl::StrAppend(&out, absl::CHexEscape(absl::string_view(&c, 1)));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

size_t DisplayWidth(absl::string_view text) {
  // Counts every byte that does not continue a UTF-8 sequence.
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

std::string FormatTable(const std::vector<TableRow>& rows) {
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  cells.reserve(rows.size());
  for (const TableRow& row : rows) {
    std::vector<std::string>& safe = cells.emplace_back();
    for (size_t i = 0; i < row.size(); ++i) {
      safe.push_back(TerminalSafe(row[i]));
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], DisplayWidth(safe.back()));
    }
  }
  std::string out;
  for (const std::vector<std::string>& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - DisplayWidth(row[i]) + 2, ' ');
    }
    // A trailing empty cell would otherwise leave trailing blanks.
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace clavis::clavisctl
