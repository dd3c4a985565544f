// MPI ranks (Open MPI): every MPI call runs on one thread that this communicator owns, so the
// training thread can post a gradient bucket and go on with the backward while the bucket
// travels (overlap), and OpenMP's threads never enter MPI.
//
// Sums are ring all-reduces written here over point-to-point messages: chunk c is summed in
// the order c+1, c+2, ..., c (mod N), the same on every run, and every rank ends with the
// same bits. Waits poll with a deadline (timeout_s): a rank that died or hangs ends the job
// with a message naming it instead of blocking forever.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dist/communicator.h"

namespace bb {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator();  // initialises MPI on its thread; throws Error when that fails
  ~MpiCommunicator() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* data, int64_t n) override;
  void allreduce_sum(double* data, int64_t n) override;
  void allreduce_sum(int64_t* data, int64_t n) override;
  void reduce_scatter_sum(float* data, int64_t n) override;
  void allgather_shards(float* data, int64_t n) override;
  void broadcast(void* data, int64_t bytes) override;
  void allgather(const void* in, int64_t bytes, void* out) override;
  void post(std::function<void()> work) override;
  void drain() override;
  CommStats stats() const override;
  void reset_stats() override;
  void set_timeout(double seconds) override { timeout_s_ = seconds; }

 private:
  bool on_own_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  void call(const std::function<void()>& work);  // runs it on the MPI thread and waits
  void loop();
  // The ring's two phases (ring_allreduce is both): reduce-scatter leaves rank r with chunk
  // r + 1 summed; the all-gather passes each chunk on from its owner.
  template <typename T>
  void ring_allreduce(T* data, int64_t n);
  template <typename T>
  void ring_pass(T* data, int64_t n, bool reduce);
  void wait_for(void* requests, int count, int peer, const char* what);

  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool busy_ = false, stopping_ = false, ready_ = false;
  std::exception_ptr error_;  // sticky: after a failed collective the ranks disagree
  std::string init_error_;
  int rank_ = 0, size_ = 1;
  std::atomic<double> timeout_s_{600.0};
  std::vector<unsigned char> scratch_;  // the ring's receive buffer (MPI thread only)
  std::atomic<int64_t> bytes_sent_{0};
  double wait_seconds_ = 0;  // training thread only
};

}  // namespace bb
