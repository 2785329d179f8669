// Code blocks of the documentation, for tests that run what the docs tell a
// user to run, verbatim. A block is marked by an HTML comment on the line
// before its fence:
//
//   <!-- test:byok-import -->
//   ```sh
//   clavisctl key import ...
//   ```
//
// Test-only, header-only.
#ifndef CLAVIS_TESTS_TESTING_DOC_BLOCKS_H_
#define CLAVIS_TESTS_TESTING_DOC_BLOCKS_H_

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace clavis::testing {

// The body of the fenced block marked `<!-- test:NAME -->` in the Markdown
// file at `path` (without the fences). NotFound if there is none.
inline absl::StatusOr<std::string> DocBlock(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  const std::string marker = absl::StrCat("<!-- test:", name, " -->");
  std::string line;
  while (std::getline(in, line)) {
    if (line != marker) continue;
    if (!std::getline(in, line) || line.rfind("```", 0) != 0) break;
    std::ostringstream body;
    while (std::getline(in, line) && line.rfind("```", 0) != 0) body << line << "\n";
    return body.str();
  }
  return absl::NotFoundError(absl::StrCat("no block ", marker, " followed by a fence in ", path));
}

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_TESTING_DOC_BLOCKS_H_
