// Communicator: how the trainer sums gradients and token counts over data-parallel ranks.
// One process is the identity; MPI ranks implement the same calls.
#pragma once
#include <cstdint>
#include <memory>

namespace bb {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place sums over all ranks.
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  virtual void allreduce_sum(int64_t* data, int64_t n) = 0;
  // Rank 0's bytes to every rank.
  virtual void broadcast(void* data, int64_t bytes) = 0;
};

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_sum(int64_t*, int64_t) override {}
  void broadcast(void*, int64_t) override {}
};

}  // namespace bb
