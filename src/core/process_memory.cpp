// Reads VmRSS / VmHWM from /proc/self/status, and sets glibc's threshold for pages of their own.
#include "core/process_memory.h"

#include <malloc.h>

#include <cstdio>
#include <cstring>

namespace bb {
namespace {
int64_t status_kib(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  int64_t kib = 0;
  const size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, field, n) == 0) {
      std::sscanf(line + n, " %ld", &kib);
      break;
    }
  std::fclose(f);
  return kib * 1024;
}
}  // namespace

int64_t current_rss_bytes() { return status_kib("VmRSS:"); }
int64_t peak_rss_bytes() { return status_kib("VmHWM:"); }

void give_large_blocks_their_own_pages() { mallopt(M_MMAP_THRESHOLD, 256 << 10); }

}  // namespace bb
