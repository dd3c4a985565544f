// BatchNorm's window statistics over data-parallel ranks: each rank's window (its K
// micro-batches, merged by Chan's formula) is exchanged and merged in rank order, so the
// running statistics are those of the whole N*K*B window, as on one rank (float rounding).
#pragma once
#include "dist/communicator.h"
#include "nn/module.h"

namespace bb {

// Replaces every BatchNorm2d's window under `m` by the merge of all ranks' windows.
void merge_batchnorm_windows(const Module& m, Communicator& comm);

}  // namespace bb
