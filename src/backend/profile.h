// The per-op profile: while it is on, every CPU kernel call is timed and booked under its
// name and the phase of the step it ran in (forward, backward, checkpoint recompute, the
// gradients' finish, the optimizer, data), and each phase's wall time is kept, so that the
// time outside kernels (the op layer, allocation, the tape) shows too. While it is off, the
// only cost is one relaxed atomic load per kernel dispatch and per phase change.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bb {

enum class Phase : uint8_t { kOther, kData, kForward, kBackward, kRecompute, kGradients, kOptimizer, kCount };
std::string_view phase_name(Phase p);

namespace profile_detail {
extern std::atomic<bool> enabled;
void switch_phase(Phase p);  // books the wall time since the last switch to the phase left
Phase current();
}  // namespace profile_detail

inline bool profiling() { return profile_detail::enabled.load(std::memory_order_relaxed); }

// Runs its scope in phase `p` (nested scopes book time to the innermost only) and restores
// the phase it found.
class PhaseScope {
 public:
  explicit PhaseScope(Phase p) : on_(profiling()) {
    if (!on_) return;
    previous_ = profile_detail::current();
    profile_detail::switch_phase(p);
  }
  ~PhaseScope() {
    if (on_ && profiling()) profile_detail::switch_phase(previous_);
  }
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  bool on_;
  Phase previous_ = Phase::kOther;
};

struct ProfileRow {
  std::string_view op;  // a kernel's name (a string literal)
  Phase phase = Phase::kOther;
  int64_t calls = 0;
  double seconds = 0;
  double flops = 0;     // products only (matmul, attention, convolution)
};

struct Profile {
  std::vector<ProfileRow> rows;
  double phase_seconds[int(Phase::kCount)] = {};
  double total_seconds() const;
};

// Clears what was booked and starts booking; stop_profile ends it and returns the bookings.
void start_profile();
Profile stop_profile();
// Books one kernel call (the profiling backend's part).
void book_kernel(std::string_view op, double seconds, double flops);

// The table: per phase, its kernels by time (calls, ms a step, share of the step, GFLOP/s
// for products) and the phase's time outside kernels; `steps` divides the times.
std::string format_profile(const Profile& p, int64_t steps);

}  // namespace bb
