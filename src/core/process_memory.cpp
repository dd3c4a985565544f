// Reads VmRSS / VmHWM from /proc/self/status, restarts VmHWM, reads the physical memory and
// sets glibc's threshold for pages of their own.
#include "core/process_memory.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
namespace {
// The high-water marks before the restarts: the whole process's peak stays what it was.
std::atomic<int64_t> g_peak_before_restarts{0};
void keep_peak(int64_t bytes) {
  int64_t seen = g_peak_before_restarts.load();
  while (bytes > seen && !g_peak_before_restarts.compare_exchange_weak(seen, bytes)) {
  }
}
}  // namespace

int64_t peak_rss_since_restart() { return status_kib("VmHWM:"); }
int64_t peak_rss_bytes() { return std::max(g_peak_before_restarts.load(), peak_rss_since_restart()); }

namespace {
std::atomic<bool> g_refuse_restarts{false};
}  // namespace

void refuse_peak_restarts_for_testing(bool refuse) { g_refuse_restarts = refuse; }

bool restart_peak_rss() {
  keep_peak(peak_rss_since_restart());
  if (g_refuse_restarts) return false;
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool written = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && written;
}

int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? int64_t(pages) * page : 0;
}

void give_large_blocks_their_own_pages() { mallopt(M_MMAP_THRESHOLD, 256 << 10); }

}  // namespace bb
