// Counting allocator with an exact-size block cache; see allocator.h.
#include "core/allocator.h"

#include <fmt/format.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace bb {

std::string_view category_name(Category c) {
  switch (c) {
    case Category::Parameters: return "parameters";
    case Category::Gradients: return "gradients";
    case Category::OptimizerState: return "optimizer state";
    case Category::Activations: return "activations";
    case Category::Workspace: return "workspace";
    case Category::QuantizedWeights: return "quantized weights";
  }
  return "?";
}

std::string_view device_name(Device d) { return d == Device::CPU ? "cpu" : "meta"; }

namespace {
constexpr size_t kAlign = 64;          // one cache line, and what AVX-512 loads like
constexpr size_t kPage = 4096;
// Past this, freed blocks go back to the system at once. A training step repeats its sizes,
// so the cache settles at about the step's peak; the cap only guards odd workloads.
constexpr int64_t kMaxCached = int64_t(16) << 30;

// Blocks of a page or more get pages mapped for them alone, so that the allocator's bytes are
// what the process holds for them, to the page, and a freed block goes back to the system
// whole. Through malloc a block past its mmap threshold cost one page more (its header),
// about 2.5% of a GPT step's bytes that a budget did not see, and the smaller blocks that a
// budget's eviction freed stayed resident in malloc's heap, so the resident peak passed the
// budget by their sum. AddressSanitizer keeps malloc: it watches the bytes around heap
// blocks, not mappings.
constexpr size_t kOwnPages = kPage;
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMapBlocks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kMapBlocks = false;
#else
constexpr bool kMapBlocks = true;
#endif
#else
constexpr bool kMapBlocks = true;
#endif

bool mapped(size_t size) { return kMapBlocks && size >= kOwnPages; }

void* system_alloc(size_t size) {
  if (!mapped(size)) return std::aligned_alloc(kAlign, size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void system_free(void* p, size_t size) noexcept {
  if (mapped(size)) {
    munmap(p, size);
  } else {
    std::free(p);
  }
}
}  // namespace

Allocator::Allocator(Device device) : device_(device) {}

Allocator::~Allocator() { drop_cache_locked(); }

Allocator& Allocator::of(Device device) {
  static Allocator cpu(Device::CPU);
  static Allocator meta(Device::Meta);
  return device == Device::CPU ? cpu : meta;
}

size_t Allocator::round_size(size_t bytes) {
  if (bytes == 0) return kAlign;
  size_t unit = bytes < kPage ? kAlign : kPage;
  if (bytes > SIZE_MAX - unit) return SIZE_MAX / unit * unit;  // refused by allocate
  return (bytes + unit - 1) / unit * unit;
}

namespace {
// The machine's physical memory: no single block can be larger.
size_t physical_memory() {
  static const size_t bytes = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : SIZE_MAX;
  }();
  return bytes;
}
}  // namespace

void* Allocator::allocate(size_t bytes, Category category) {
  size_t size = round_size(bytes);
  if (device_ == Device::CPU && (size > physical_memory() || size > size_t(INT64_MAX)))
    throw OutOfBudget(fmt::format("allocating {} of {} while running {} needs more than the machine's {} of memory",
                                  format_bytes(static_cast<int64_t>(std::min(size, size_t(INT64_MAX)))),
                                  category_name(category), OpScope::current().empty() ? "setup" : OpScope::current(),
                                  format_bytes(static_cast<int64_t>(physical_memory()))));
  std::lock_guard<std::mutex> lock(mu_);
  int c = static_cast<int>(category);
  // The budget holds for live bytes whether or not the block comes from the cache.
  if (budget_ > 0 && stats_.total_live + int64_t(size) > budget_)
    throw OutOfBudget(fmt::format(
        "allocating {} of {} while running {} would pass the memory budget of {} "
        "({} already live)",
        format_bytes(size), category_name(category),
        OpScope::current().empty() ? "setup" : OpScope::current(), format_bytes(budget_),
        format_bytes(stats_.total_live)));
  void* ptr = nullptr;
  bool from_cache = false;
  auto it = cache_.find(size);
  if (it != cache_.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    stats_.cached -= size;
    from_cache = true;
  }
  if (!from_cache) {
    if (budget_ > 0 && stats_.total_live + stats_.cached + int64_t(size) > budget_)
      evict_locked(stats_.total_live + stats_.cached + int64_t(size) - budget_);
    if (device_ == Device::CPU) {
      ptr = system_alloc(size);
      if (!ptr) {
        drop_cache_locked();
        ptr = system_alloc(size);
        if (!ptr) throw OutOfBudget(fmt::format("the system refused {} of {}", format_bytes(size),
                                                category_name(category)));
      }
    }
    stats_.allocations++;
  }
  grow_locked(c, int64_t(size));
  return ptr;
}

void Allocator::release(void* ptr, size_t bytes, Category category) noexcept {
  size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  int c = static_cast<int>(category);
  stats_.live[c] -= size;
  stats_.total_live -= size;
  if (stats_.cached + int64_t(size) > kMaxCached) {
    if (device_ == Device::CPU) system_free(ptr, size);
    return;
  }
  try {
    cache_[size].push_back(ptr);  // may need memory itself
  } catch (...) {
    if (device_ == Device::CPU) system_free(ptr, size);
    return;
  }
  stats_.cached += size;
}

void Allocator::count_external(int64_t bytes, Category category) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  int c = static_cast<int>(category);
  grow_locked(c, bytes);
}

void Allocator::grow_locked(int c, int64_t bytes) {
  stats_.live[c] += bytes;
  stats_.peak[c] = std::max(stats_.peak[c], stats_.live[c]);
  stats_.window_peak[c] = std::max(stats_.window_peak[c], stats_.live[c]);
  stats_.total_live += bytes;
  stats_.total_peak = std::max(stats_.total_peak, stats_.total_live);
  stats_.window_total_peak = std::max(stats_.window_total_peak, stats_.total_live);
  stats_.reserved_peak = std::max(stats_.reserved_peak, stats_.total_live + stats_.cached);
}

void Allocator::set_budget(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  budget_ = bytes;
}

MemoryStats Allocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Allocator::reset_peaks() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak = stats_.live;
  stats_.total_peak = stats_.total_live;
  stats_.reserved_peak = stats_.total_live + stats_.cached;
  stats_.window_peak = stats_.live;
  stats_.window_total_peak = stats_.total_live;
}

void Allocator::reset_window_peaks() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.window_peak = stats_.live;
  stats_.window_total_peak = stats_.total_live;
}

void Allocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  drop_cache_locked();
}

void Allocator::drop_cache_locked() {
  for (auto& [size, blocks] : cache_)
    for (void* p : blocks)
      if (device_ == Device::CPU) system_free(p, size);
  cache_.clear();
  stats_.cached = 0;
}

// The largest blocks go first: the fewest blocks give the room, and the sizes a step uses
// most often (its many small ones) stay cached.
void Allocator::evict_locked(int64_t bytes) {
  while (bytes > 0 && !cache_.empty()) {
    auto it = std::prev(cache_.end());
    const size_t size = it->first;
    for (; bytes > 0 && !it->second.empty(); bytes -= int64_t(size)) {
      if (device_ == Device::CPU) system_free(it->second.back(), size);
      it->second.pop_back();
      stats_.cached -= int64_t(size);
    }
    if (it->second.empty()) cache_.erase(it);
  }
}

namespace {
thread_local std::string_view t_op;
thread_local Category t_category = Category::Activations;
}  // namespace

OpScope::OpScope(std::string_view op) : prev_(t_op) { t_op = op; }
OpScope::~OpScope() { t_op = prev_; }
std::string_view OpScope::current() { return t_op; }

CategoryScope::CategoryScope(Category c) : prev_(t_category) { t_category = c; }
CategoryScope::~CategoryScope() { t_category = prev_; }
Category CategoryScope::current() { return t_category; }

std::string format_bytes(int64_t bytes) {
  double b = static_cast<double>(bytes);
  if (std::abs(b) >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (std::abs(b) >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (std::abs(b) >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

int64_t parse_bytes(const std::string& text) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("'{}' is not a memory size (write e.g. 2GiB or 512MiB)", text));
  }
  std::string unit = text.substr(pos);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  double mult = 1;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB" || unit == "K" || unit == "k") mult = 1024.0;
  else if (unit == "MiB" || unit == "M") mult = 1024.0 * 1024;
  else if (unit == "GiB" || unit == "G") mult = 1024.0 * 1024 * 1024;
  else if (unit == "KB" || unit == "kB") mult = 1e3;
  else if (unit == "MB") mult = 1e6;
  else if (unit == "GB") mult = 1e9;
  else throw ConfigError(fmt::format("'{}' has an unknown unit '{}' (use B, KiB, MiB, GiB, KB, MB, GB)", text, unit));
  if (!(value > 0)) throw ConfigError(fmt::format("memory size '{}' must be positive", text));
  // Past 2^62 bytes (4 EiB) no machine has it, and the conversion to int64 would overflow.
  if (!(value * mult <= 0x1p62))
    throw ConfigError(fmt::format("memory size '{}' is larger than any machine's memory", text));
  return static_cast<int64_t>(value * mult);
}

}  // namespace bb
