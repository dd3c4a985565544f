// The process's resident memory as the kernel reports it (/proc/self/status), for progress
// lines and benchmarks next to the allocator's own counts.
#pragma once
#include <cstdint>

namespace bb {

int64_t current_rss_bytes();
int64_t peak_rss_bytes();  // VmHWM: the high-water mark since start

}  // namespace bb
