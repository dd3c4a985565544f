// The per-op profile: kernels booked by name and phase with their calls and a product's
// FLOPs, phases timed exclusively (a nested scope books to itself alone), the profiling
// backend in the registry only while the profile is on, and the table's rows.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "autograd/backward.h"
#include "backend/backend.h"
#include "backend/profile.h"
#include "ops/ops.h"

namespace bb {
namespace {

const ProfileRow* find(const Profile& p, std::string_view op, Phase phase) {
  for (const ProfileRow& r : p.rows)
    if (r.op == op && r.phase == phase) return &r;
  return nullptr;
}

TEST(Profile, KernelsAreBookedByPhaseWithTheirProductsFlops) {
  Backend* plain = &backend_for(Device::CPU);
  start_profile();
  EXPECT_NE(&backend_for(Device::CPU), plain) << "the registry hands out the profiler while on";
  Tensor a = Tensor::full(Shape{32, 16}, 0.5f), w = Tensor::full(Shape{16, 8}, 0.25f);
  w.set_requires_grad(true);
  Tensor loss;
  {
    PhaseScope phase(Phase::kForward);
    loss = sum_all(gelu(matmul(a, w)));
  }
  {
    PhaseScope phase(Phase::kBackward);
    backward(loss);
  }
  const Profile p = stop_profile();
  EXPECT_EQ(&backend_for(Device::CPU), plain) << "and the plain CPU backend once off";

  const ProfileRow* fwd = find(p, "matmul", Phase::kForward);
  ASSERT_NE(fwd, nullptr);
  EXPECT_EQ(fwd->calls, 1);
  EXPECT_DOUBLE_EQ(fwd->flops, 2.0 * 32 * 16 * 8);
  EXPECT_GT(fwd->seconds, 0);
  ASSERT_NE(find(p, "gelu_tanh", Phase::kForward), nullptr);
  ASSERT_NE(find(p, "gelu_tanh_backward", Phase::kBackward), nullptr);
  const ProfileRow* bwd = find(p, "matmul", Phase::kBackward);
  ASSERT_NE(bwd, nullptr);  // only w needs a gradient: one product, (16 x 32) x (32 x 8)
  EXPECT_DOUBLE_EQ(bwd->flops, 2.0 * 32 * 16 * 8);
  EXPECT_EQ(find(p, "matmul", Phase::kOptimizer), nullptr);

  // Kernel time lies within its phase's wall time.
  double forward_kernels = 0;
  for (const ProfileRow& r : p.rows)
    if (r.phase == Phase::kForward) forward_kernels += r.seconds;
  EXPECT_LE(forward_kernels, p.phase_seconds[int(Phase::kForward)]);
}

TEST(Profile, NestedPhasesBookTheirTimeToTheInnermostOnly) {
  start_profile();
  {
    PhaseScope backward(Phase::kBackward);
    {
      PhaseScope recompute(Phase::kRecompute);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
  }
  const Profile p = stop_profile();
  EXPECT_GE(p.phase_seconds[int(Phase::kRecompute)], 0.03);
  EXPECT_LT(p.phase_seconds[int(Phase::kBackward)], p.phase_seconds[int(Phase::kRecompute)]);
  EXPECT_NEAR(p.total_seconds(), p.phase_seconds[int(Phase::kRecompute)] + p.phase_seconds[int(Phase::kBackward)] +
                                     p.phase_seconds[int(Phase::kOther)], 1e-9);
}

TEST(Profile, TheTableHasARowPerKernelAndPhaseAndTheTimeOutsideKernels) {
  Profile p;
  p.rows.push_back(ProfileRow{.op = "matmul", .phase = Phase::kForward, .calls = 8, .seconds = 0.5, .flops = 1e11});
  p.rows.push_back(ProfileRow{.op = "adamw", .phase = Phase::kOptimizer, .calls = 4, .seconds = 0.1});
  p.phase_seconds[int(Phase::kForward)] = 0.6;
  p.phase_seconds[int(Phase::kOptimizer)] = 0.1;
  const std::string t = format_profile(p, 2);
  EXPECT_NE(t.find("profile of 2 steps: 0.350 s a step"), std::string::npos) << t;
  // 4 calls a step, 250 ms a step, 71.4% of the time, 200 GFLOP/s.
  EXPECT_NE(t.find("forward    matmul                          4     250.00   71.4%     200.0"), std::string::npos) << t;
  EXPECT_NE(t.find("forward    (outside kernels)                      50.00   14.3%"), std::string::npos) << t;
  EXPECT_NE(t.find("optimizer  adamw                           2      50.00   14.3%"), std::string::npos) << t;
}

}  // namespace
}  // namespace bb
