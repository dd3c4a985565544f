// The process's communicator, and the two calls that need Open MPI's environment or MPI_Abort.
#include <mpi.h>

#include <cstdlib>
#include <string>

#include "dist/communicator.h"
#include "dist/mpi_communicator.h"

#include <cstring>

namespace bb {

void SingleProcess::allgather(const void* in, int64_t bytes, void* out) { std::memcpy(out, in, bytes); }

namespace {

// mpirun (Open MPI) sets OMPI_COMM_WORLD_SIZE in every rank's environment; a single rank
// needs no MPI at all.
bool started_by_mpirun() {
  const char* n = std::getenv("OMPI_COMM_WORLD_SIZE");
  return n && std::atoi(n) > 1;
}

std::unique_ptr<Communicator>& instance() {
  static std::unique_ptr<Communicator> c;
  return c;
}

}  // namespace

Communicator& world() {
  auto& c = instance();
  if (!c) {
    if (started_by_mpirun())
      c = std::make_unique<MpiCommunicator>();
    else
      c = std::make_unique<SingleProcess>();
  }
  return *c;
}

void abort_world(int code) {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (initialised && !finalised) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace bb
