// Memory the CPU kernels take inside a call (attention's per-thread tiles, the f16 matmul's
// widened operands) goes through the allocator as workspace, and the meta backend counts
// the same bytes, so the planner's peak includes it.
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "ops/ops.h"

namespace bb {
namespace {

int64_t workspace_peak_of(Device device, DType dtype, bool attention_op) {
  Allocator& alloc = Allocator::of(device);
  alloc.empty_cache();
  Tensor x = Tensor::zeros(Shape{2, 256, 4, 32}, DType::F32, Device::CPU);
  Tensor q = device == Device::CPU ? cast(x, dtype) : Tensor::empty(x.shape(), dtype, device);
  Tensor w = device == Device::CPU ? cast(Tensor::zeros(Shape{128, 512}), dtype) : Tensor::empty(Shape{128, 512}, dtype, device);
  alloc.reset_peaks();
  const int64_t live = alloc.stats().live[int(Category::Workspace)];
  if (attention_op) attention(q, q, q, true);
  else matmul(q.view({512, 128}), w);
  return alloc.stats().peak[int(Category::Workspace)] - live;
}

TEST(KernelWorkspace, AttentionTilesAreCountedOnCpuAndMeta) {
  for (DType dt : {DType::F32, DType::BF16}) {
    AttentionArgs a{.batch = 2, .heads = 4, .kv_heads = 4, .seq = 256, .head_dim = 32, .causal = true};
    const int64_t expect = int64_t(Allocator::round_size(attention_scratch_floats(a, dt, false) * 4));
    const int64_t cpu = workspace_peak_of(Device::CPU, dt, true);
    EXPECT_GE(cpu, expect) << dtype_name(dt);
    EXPECT_EQ(workspace_peak_of(Device::Meta, dt, true), cpu) << dtype_name(dt);
  }
}

TEST(KernelWorkspace, Fp16MatmulCopiesAreCountedOnCpuAndMeta) {
  const int64_t cpu = workspace_peak_of(Device::CPU, DType::F16, false);
  // a (512 x 128), b (128 x 512) and the f16 output (512 x 512) widened to f32.
  EXPECT_GE(cpu, (512 * 128 + 128 * 512 + 512 * 512) * 4);
  EXPECT_EQ(workspace_peak_of(Device::Meta, DType::F16, false), cpu);
}

}  // namespace
}  // namespace bb
