// Helpers for the tokenizer tests: temporary folders, files, Debian's text corpora, and
// running a command for its output.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace bb::test {

// A new empty folder under the test temporary folder.
inline std::string make_temp_dir(const std::string& stem) {
  std::string templ = std::string(::testing::TempDir()) + "/" + stem + "_XXXXXX";
  if (!mkdtemp(templ.data())) throw std::runtime_error("cannot make a folder in " + ::testing::TempDir());
  return templ;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The file's bytes (gunzipped when it is gzip); empty when it cannot be read.
inline std::string read_text(const std::string& path) {
  std::string out;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, n);
  gzclose(f);
  return out;
}

// At most max_bytes of the file, cut after a newline (so never inside a UTF-8 character).
inline std::string read_head(const std::string& path, size_t max_bytes) {
  std::string text = read_text(path);
  if (text.size() > max_bytes) text.resize(text.rfind('\n', max_bytes) + 1);
  return text;
}

struct CommandResult {
  int code = -1;
  std::string output;  // stdout only
};

inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 1 << 16> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline const std::string kFortunes = "/usr/share/games/fortunes";
inline const std::string kTokenizerTests = std::string(BIGBATCH_FIXTURES) + "/../tokenizer";

}  // namespace bb::test
