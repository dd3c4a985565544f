// What the CLI does differently under mpirun: rank 0 alone prints progress and writes the
// run folder (metrics, checkpoints, the saved model, the report); every rank trains.
#pragma once
#include <string>

#include "dist/communicator.h"

namespace bb {

// True on rank 0 (and in a single process).
inline bool lead_rank() { return world().rank() == 0; }

// "2 ranks x " under mpirun, else empty: the start of "effective batch 64 = 2 ranks x 4 ...".
std::string ranks_times();

// A stop signal any rank received, so that all ranks checkpoint and stop after the same step
// (mpirun forwards SIGINT and SIGTERM to every rank, but not at the same instant).
int agreed_signal(int local);

}  // namespace bb
