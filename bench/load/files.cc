#include "bench/load/files.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace clavis::bench {

void DieWith(const std::string& what) {
  std::fprintf(stderr, "clavis-bench: %s\n", what.c_str());
  std::exit(1);
}

std::string ReadFileIfPresent(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) DieWith("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFileOrDie(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  if (!out.flush()) DieWith("cannot write " + path);
}

}  // namespace clavis::bench
