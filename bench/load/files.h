// Small file helpers of clavis-bench. A benchmark has nothing sensible to
// measure once its set-up fails, so these end the process with a message.
#ifndef CLAVIS_BENCH_LOAD_FILES_H_
#define CLAVIS_BENCH_LOAD_FILES_H_

#include <string>

namespace clavis::bench {

[[noreturn]] void DieWith(const std::string& what);
std::string ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& contents);
// "" when the file does not exist (yet).
std::string ReadFileIfPresent(const std::string& path);

}  // namespace clavis::bench

#endif  // CLAVIS_BENCH_LOAD_FILES_H_
