// Bookings of the per-op profile and its table.
#include "backend/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>

namespace bb {

namespace profile_detail {
std::atomic<bool> enabled{false};
}

namespace {
using Clock = std::chrono::steady_clock;

// Kernels are dispatched from the training thread (OpenMP runs inside them), but a mutex
// keeps a booking from any other thread correct at a cost far below a kernel's.
struct State {
  std::mutex mutex;
  std::vector<ProfileRow> rows;
  double phase_seconds[int(Phase::kCount)] = {};
  Phase phase = Phase::kOther;
  Clock::time_point since;
};
State& state() {
  static State s;
  return s;
}
}  // namespace

std::string_view phase_name(Phase p) {
  switch (p) {
    case Phase::kData: return "data";
    case Phase::kForward: return "forward";
    case Phase::kBackward: return "backward";
    case Phase::kRecompute: return "recompute";
    case Phase::kGradients: return "gradients";
    case Phase::kOptimizer: return "optimizer";
    default: return "other";
  }
}

namespace profile_detail {
void switch_phase(Phase p) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  const Clock::time_point now = Clock::now();
  s.phase_seconds[int(s.phase)] += std::chrono::duration<double>(now - s.since).count();
  s.since = now;
  s.phase = p;
}
Phase current() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return s.phase;
}
}  // namespace profile_detail

double Profile::total_seconds() const {
  double t = 0;
  for (double s : phase_seconds) t += s;
  return t;
}

void start_profile() {
  State& s = state();
  {
    std::lock_guard lock(s.mutex);
    s.rows.clear();
    std::fill(std::begin(s.phase_seconds), std::end(s.phase_seconds), 0.0);
    s.phase = Phase::kOther;
    s.since = Clock::now();
  }
  profile_detail::enabled.store(true, std::memory_order_relaxed);
}

Profile stop_profile() {
  profile_detail::switch_phase(Phase::kOther);  // books the phase still open
  profile_detail::enabled.store(false, std::memory_order_relaxed);
  State& s = state();
  std::lock_guard lock(s.mutex);
  Profile p;
  p.rows = s.rows;
  std::copy(std::begin(s.phase_seconds), std::end(s.phase_seconds), p.phase_seconds);
  return p;
}

void book_kernel(std::string_view op, double seconds, double flops) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto it = std::find_if(s.rows.begin(), s.rows.end(),
                         [&](const ProfileRow& r) { return r.phase == s.phase && r.op == op; });
  if (it == s.rows.end()) it = s.rows.insert(s.rows.end(), ProfileRow{.op = op, .phase = s.phase});
  it->calls += 1;
  it->seconds += seconds;
  it->flops += flops;
}

std::string format_profile(const Profile& p, int64_t steps) {
  const double total = p.total_seconds(), per = 1.0 / double(std::max<int64_t>(steps, 1));
  auto line = [&](std::string_view phase, std::string_view op, int64_t calls, double seconds, double flops) {
    const std::string rate = flops > 0 && seconds > 0 ? fmt::format("{:.1f}", flops / seconds * 1e-9) : "";
    const std::string count = calls >= 0 ? fmt::format("{}", (calls + steps / 2) / std::max<int64_t>(steps, 1)) : "";
    return fmt::format("{:<10} {:<24} {:>8} {:>10.2f} {:>6.1f}% {:>9}\n", phase, op, count, seconds * per * 1e3,
                       total > 0 ? 100.0 * seconds / total : 0.0, rate);
  };
  std::string s = fmt::format("profile of {} step{}: {:.3f} s a step\n", steps, steps == 1 ? "" : "s", total * per);
  s += fmt::format("{:<10} {:<24} {:>8} {:>10} {:>7} {:>9}\n", "phase", "op", "calls", "ms/step", "share", "GFLOP/s");
  for (int ph = 0; ph < int(Phase::kCount); ++ph) {
    const Phase phase = Phase(ph);
    std::vector<ProfileRow> rows;
    double in_kernels = 0;
    for (const ProfileRow& r : p.rows)
      if (r.phase == phase) {
        rows.push_back(r);
        in_kernels += r.seconds;
      }
    if (rows.empty() && p.phase_seconds[ph] <= 0) continue;
    std::sort(rows.begin(), rows.end(), [](const ProfileRow& a, const ProfileRow& b) { return a.seconds > b.seconds; });
    for (const ProfileRow& r : rows) s += line(phase_name(phase), r.op, r.calls, r.seconds, r.flops);
    s += line(phase_name(phase), "(outside kernels)", -1, std::max(0.0, p.phase_seconds[ph] - in_kernels), 0);
  }
  return s;
}

}  // namespace bb
