// Communicator: how the trainer sums gradients and token counts over data-parallel ranks.
// One process is the identity; MPI ranks (dist/mpi_communicator.h) implement the same calls.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

namespace bb {

// What a rank has sent and waited for since the last reset (the benchmark's figures).
struct CommStats {
  int64_t bytes_sent = 0;
  double wait_seconds = 0;  // the training thread blocked on communication
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place sums over all ranks, in a fixed order (the same on every run of the same N).
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  virtual void allreduce_sum(int64_t* data, int64_t n) = 0;
  // ZeRO-1's halves of an all-reduce: after reduce_scatter_sum, the elements shard_range(n)
  // of data hold the sum over all ranks (the same bits allreduce_sum gives; the rest is
  // left partial); allgather_shards then copies every rank's shard_range(n) to all ranks.
  virtual void reduce_scatter_sum(float* data, int64_t n) = 0;
  virtual void allgather_shards(float* data, int64_t n) = 0;
  std::pair<int64_t, int64_t> shard_range(int64_t n) const;
  // Rank 0's bytes to every rank.
  virtual void broadcast(void* data, int64_t bytes) = 0;
  // Every rank's `bytes` bytes, in rank order, into out (size() * bytes).
  virtual void allgather(const void* in, int64_t bytes, void* out) = 0;
  // Runs `work` on the communicator's own thread, after the work posted before it, so that
  // communication overlaps the caller's computation; work may call the collectives above.
  virtual void post(std::function<void()> work) = 0;
  // Waits for all posted work; rethrows the first error it raised.
  virtual void drain() = 0;
  // Seconds a wait may last before its peer is declared dead (dist.timeout_s).
  virtual void set_timeout(double seconds) {}
  virtual CommStats stats() const { return {}; }
  virtual void reset_stats() {}
};

// The elements [first, second) of an n-element buffer that `rank` of `size` owns after a
// reduce-scatter: the ring's chunk c = (rank + 1) mod size, n * c / size to n * (c + 1) / size.
inline std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int size) {
  const int64_t c = (rank + 1) % size;
  return {n * c / size, n * (c + 1) / size};
}
inline std::pair<int64_t, int64_t> Communicator::shard_range(int64_t n) const {
  return bb::shard_range(n, rank(), size());
}

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_sum(int64_t*, int64_t) override {}
  void reduce_scatter_sum(float*, int64_t) override {}
  void allgather_shards(float*, int64_t) override {}
  void broadcast(void*, int64_t) override {}
  void allgather(const void* in, int64_t bytes, void* out) override;
  void post(std::function<void()> work) override { work(); }
  void drain() override {}
};

// The process's communicator: MPI ranks when the process was started by mpirun (Open MPI's
// environment says so), else one process. Made on first use; MPI is initialised then.
Communicator& world();
// Ends MPI on every rank after an error on this one, with `code` as mpirun's exit status.
[[noreturn]] void abort_world(int code);

}  // namespace bb
