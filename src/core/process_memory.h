// The process's resident memory as the kernel reports it (/proc/self/status), for progress
// lines and benchmarks next to the allocator's own counts.
#pragma once
#include <cstdint>

namespace bb {

int64_t current_rss_bytes();
int64_t peak_rss_bytes();  // the high-water mark since start, restarts or not
// The kernel's high-water mark (VmHWM) starts again from the resident memory now (Linux's
// clear_refs "5"), so that the peak of one piece of work can be read with
// peak_rss_since_restart(); false where the kernel does not allow it.
bool restart_peak_rss();
int64_t peak_rss_since_restart();
// Makes restart_peak_rss() fail as it does where /proc/self/clear_refs is not writable (some
// containers and sandboxes), so that what depends on it can be tested on either kind of host.
void refuse_peak_restarts_for_testing(bool refuse);

// The machine's physical memory (sysconf), the most a memory budget can mean here.
int64_t physical_memory_bytes();

// malloc's blocks of 256 KiB and more get pages of their own from the system, handed back when
// freed. glibc would otherwise raise its threshold after each large free and keep the large
// buffers of other code (oneDNN's scratch, the bf16 products' widened copies) in a heap it
// cannot shrink: resident memory above what the allocator holds. The allocator's own blocks
// of a page or more are mapped by the allocator itself, and this threshold does not touch them.
// Called first thing by the CLI and by every benchmark, so both measure the same process.
void give_large_blocks_their_own_pages();

}  // namespace bb
