// The one allocator every tensor byte goes through. It counts live and peak bytes by
// category, enforces an optional budget, and keeps freed blocks in an exact-size cache so
// that a training loop, which repeats the same shapes every step, does not churn malloc.
// A meta allocator runs the same accounting (cache included) without touching memory:
// see docs/notes/memory-accounting.md.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace bb {

// QuantizedWeights: a frozen LoRA base held in q8_0 / q4_0 blocks, apart from the parameters so
// that `plan` and the reports show what quantizing saved.
enum class Category : uint8_t { Parameters, Gradients, OptimizerState, Activations, Workspace, QuantizedWeights };
inline constexpr int kNumCategories = 6;
std::string_view category_name(Category c);

enum class Device : uint8_t { CPU, Meta };
std::string_view device_name(Device d);

struct MemoryStats {
  std::array<int64_t, kNumCategories> live{};  // bytes held by live tensors, by category
  std::array<int64_t, kNumCategories> peak{};  // the highest `live` each category reached
  int64_t total_live = 0;                      // sum of live
  int64_t total_peak = 0;                      // highest total_live (not the sum of peaks)
  int64_t cached = 0;                          // freed blocks kept for reuse
  int64_t reserved_peak = 0;                   // highest total_live + cached
  int64_t allocations = 0;                     // calls that were not served by the cache
  // The same peaks since the last reset_window_peaks(): a training step's own peak, which
  // the run's report draws step by step while `peak` keeps the whole run's.
  std::array<int64_t, kNumCategories> window_peak{};
  int64_t window_total_peak = 0;
};

class Allocator {
 public:
  explicit Allocator(Device device);
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // The process-wide allocator of a device.
  static Allocator& of(Device device);

  // Bytes are rounded up to the block size the cache works in; returns nullptr on meta. A
  // CPU block larger than the machine's memory is refused (OutOfBudget) before asking for it.
  void* allocate(size_t bytes, Category category);
  // Never throws (it runs in destructors): a block the cache cannot take is freed.
  void release(void* ptr, size_t bytes, Category category) noexcept;
  static size_t round_size(size_t bytes);
  // Memory made elsewhere (a mapped weights file) that a tensor uses: counted as live, never
  // cached. `bytes` is negative when it goes. Never throws.
  void count_external(int64_t bytes, Category category) noexcept;

  // A budget of 0 means none. An allocation that would take the live total past the
  // budget throws OutOfBudget naming the category, size, op and budget.
  void set_budget(int64_t bytes);
  int64_t budget() const { return budget_; }

  MemoryStats stats() const;
  void reset_peaks();   // peaks restart from the current live bytes
  void reset_window_peaks();  // only the window peaks restart
  void empty_cache();   // hands cached blocks back to the system

  Device device() const { return device_; }

 private:
  void drop_cache_locked();
  void evict_locked(int64_t bytes);  // frees cached blocks, largest first, until `bytes` are freed
  void grow_locked(int c, int64_t bytes);  // live bytes of category c grow; peaks follow

  Device device_;
  mutable std::mutex mu_;
  MemoryStats stats_;
  int64_t budget_ = 0;
  std::map<size_t, std::vector<void*>> cache_;  // rounded size -> free blocks
};

// The op whose allocations are being made, for budget errors ("while running matmul").
class OpScope {
 public:
  explicit OpScope(std::string_view op);
  ~OpScope();
  static std::string_view current();

 private:
  std::string_view prev_;
};

// Tensors created inside this scope are counted under `category` unless they name another.
class CategoryScope {
 public:
  explicit CategoryScope(Category c);
  ~CategoryScope();
  static Category current();

 private:
  Category prev_;
};

std::string format_bytes(int64_t bytes);  // "1.50 GiB"
int64_t parse_bytes(const std::string& text);  // "2GiB", "512MiB", "1e9"; throws ConfigError

}  // namespace bb
