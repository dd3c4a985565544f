// What every harness shares: the rule that a thrown bb::Error (src/core/error.h) is the
// parser rejecting its input, and anything else (another exception, a crash, a sanitizer
// report) is a finding; and a scratch file for parsers that only read paths.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"

namespace bb::fuzz {

// Runs `parse`; a bb::Error is a normal rejection. Other exceptions are let out, so that
// libFuzzer reports them (std::terminate aborts).
template <class F>
int run(F&& parse) {
  try {
    parse();
  } catch (const bb::Error&) {
  }
  return 0;
}

inline std::string bytes(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// A file of this process under TMPDIR (or /tmp), rewritten with each input.
inline std::string scratch_file(const char* name, std::string_view content) {
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir && *dir ? dir : "/tmp") + "/bigbatch-fuzz-" + std::to_string(getpid()) +
                           "-" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();  // the harness itself cannot run
  if (!content.empty() && std::fwrite(content.data(), 1, content.size(), f) != content.size()) __builtin_trap();
  std::fclose(f);
  return path;
}

}  // namespace bb::fuzz
