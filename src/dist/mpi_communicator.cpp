// The MPI communicator; see mpi_communicator.h for the threading and the fixed sum order.
#include "dist/mpi_communicator.h"

#include <fmt/format.h>
#include <mpi.h>

#include <chrono>
#include <cstring>

#include "core/error.h"

namespace bb {
namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <>
MPI_Datatype mpi_type<int64_t>() { return MPI_INT64_T; }

constexpr int kRingTag = 17;

}  // namespace

MpiCommunicator::MpiCommunicator() {
  thread_ = std::thread([this] { loop(); });
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return ready_; });
  if (!init_error_.empty()) {
    lock.unlock();
    thread_.join();
    throw Error(init_error_);
  }
}

MpiCommunicator::~MpiCommunicator() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MpiCommunicator::loop() {
  int provided = 0;
  // MULTIPLE only so that abort_world may call MPI_Abort from the training thread; every
  // other call is made here.
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    std::lock_guard lock(mutex_);
    init_error_ = "MPI_Init_thread failed: the process was started by mpirun but could not join its job";
    ready_ = true;
    cv_.notify_all();
    return;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  {
    std::lock_guard lock(mutex_);
    ready_ = true;
  }
  cv_.notify_all();
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and nothing left to do
      work = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    std::exception_ptr err;
    {
      std::lock_guard lock(mutex_);
      err = error_;
    }
    if (!err) {  // after an error the ranks are out of step: run nothing more
      try {
        work();
      } catch (...) {
        err = std::current_exception();
      }
    }
    {
      std::lock_guard lock(mutex_);
      if (err && !error_) error_ = err;
      busy_ = false;
    }
    cv_.notify_all();
  }
  MPI_Finalize();
}

void MpiCommunicator::post(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(work));
  }
  cv_.notify_all();
}

void MpiCommunicator::drain() {
  const auto t0 = Clock::now();
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
  wait_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
  if (error_) std::rethrow_exception(error_);
}

void MpiCommunicator::call(const std::function<void()>& work) {
  if (on_own_thread()) return work();
  post(work);
  drain();
}

CommStats MpiCommunicator::stats() const {
  return CommStats{.bytes_sent = bytes_sent_.load(), .wait_seconds = wait_seconds_};
}

void MpiCommunicator::reset_stats() {
  bytes_sent_ = 0;
  wait_seconds_ = 0;
}

void MpiCommunicator::wait_for(void* requests, int count, int peer, const char* what) {
  auto* reqs = static_cast<MPI_Request*>(requests);
  const auto start = Clock::now();
  int idle_us = 0;
  for (;;) {
    int done = 0;
    if (MPI_Testall(count, reqs, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
      throw Error(fmt::format("rank {}: MPI failed during {} with rank {}", rank_, what, peer));
    if (done) return;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited > timeout_s_) {
      // A collective (peer < 0) cannot tell who is missing, except that with two ranks it
      // can only be the other one.
      if (peer < 0 && size_ == 2) peer = 1 - rank_;
      throw Error(fmt::format("rank {}: {} did not answer for {:.0f} s during {} (dist.timeout_s); it has died or "
                              "hangs",
                              rank_, peer < 0 ? std::string("a rank") : fmt::format("rank {}", peer), waited, what));
    }
    // Poll, then back off to sleeps of up to 50 us: MPI makes progress only inside these
    // tests, and a spinning thread would take a core from the computation it overlaps.
    if (idle_us < 50) idle_us = idle_us == 0 ? 1 : idle_us * 2;
    std::this_thread::sleep_for(std::chrono::microseconds(idle_us));
  }
}

template <typename T>
void MpiCommunicator::ring_pass(T* data, int64_t n, bool reduce) {
  const int N = size_;
  if (N == 1 || n == 0) return;
  auto mod = [N](int c) { return (c % N + N) % N; };
  auto begin = [&](int c) { return n * mod(c) / N; };
  auto chunk_len = [&](int c) { return n * (mod(c) + 1) / N - n * mod(c) / N; };
  const int right = (rank_ + 1) % N, left = (rank_ + N - 1) % N;
  T* recv = nullptr;
  if (reduce) {
    scratch_.resize(static_cast<size_t>((n / N + 1) * static_cast<int64_t>(sizeof(T))));
    recv = reinterpret_cast<T*>(scratch_.data());
  }
  auto exchange = [&](int send_chunk, int recv_chunk, T* recv_to, const char* what) {
    MPI_Request req[2];
    const int64_t ns = chunk_len(send_chunk), nr = chunk_len(recv_chunk);
    if (ns > INT32_MAX || nr > INT32_MAX) throw Error("ring all-reduce: a chunk over 2^31 elements");
    MPI_Irecv(recv_to, static_cast<int>(nr), mpi_type<T>(), left, kRingTag, MPI_COMM_WORLD, &req[0]);
    MPI_Isend(data + begin(send_chunk), static_cast<int>(ns), mpi_type<T>(), right, kRingTag, MPI_COMM_WORLD,
              &req[1]);
    bytes_sent_ += ns * static_cast<int64_t>(sizeof(T));
    wait_for(req, 2, left, what);
  };
  if (reduce) {
    // Reduce-scatter: after step s, the chunk received holds the sum of s + 2 ranks' parts,
    // accumulated in ring order; after N - 1 steps rank r holds chunk r + 1 summed over all.
    for (int s = 0; s < N - 1; ++s) {
      const int send_c = rank_ - s, recv_c = rank_ - s - 1;
      exchange(send_c, recv_c, recv, "a gradient sum");
      T* dst = data + begin(recv_c);
      const int64_t m = chunk_len(recv_c);
      for (int64_t i = 0; i < m; ++i) dst[i] = recv[i] + dst[i];
    }
    return;
  }
  // All-gather: pass each finished chunk on around the ring.
  for (int s = 0; s < N - 1; ++s) {
    const int send_c = rank_ + 1 - s, recv_c = rank_ - s;
    exchange(send_c, recv_c, data + begin(recv_c), "a gradient sum");
  }
}

template <typename T>
void MpiCommunicator::ring_allreduce(T* data, int64_t n) {
  ring_pass(data, n, true);
  ring_pass(data, n, false);
}

void MpiCommunicator::reduce_scatter_sum(float* data, int64_t n) {
  call([&] { ring_pass(data, n, true); });
}
void MpiCommunicator::allgather_shards(float* data, int64_t n) {
  call([&] { ring_pass(data, n, false); });
}

void MpiCommunicator::allreduce_sum(float* data, int64_t n) {
  call([&] { ring_allreduce(data, n); });
}
void MpiCommunicator::allreduce_sum(double* data, int64_t n) {
  call([&] { ring_allreduce(data, n); });
}
void MpiCommunicator::allreduce_sum(int64_t* data, int64_t n) {
  call([&] { ring_allreduce(data, n); });
}

void MpiCommunicator::broadcast(void* data, int64_t bytes) {
  call([&] {
    if (bytes > INT32_MAX) throw Error("broadcast over 2 GiB");
    MPI_Request req;
    MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, 0, MPI_COMM_WORLD, &req);
    if (rank_ == 0) bytes_sent_ += bytes * (size_ - 1);
    wait_for(&req, 1, rank_ == 0 ? -1 : 0, "a broadcast");  // rank 0 waits on the others
  });
}

void MpiCommunicator::allgather(const void* in, int64_t bytes, void* out) {
  call([&] {
    if (bytes > INT32_MAX) throw Error("allgather over 2 GiB");
    MPI_Request req;
    MPI_Iallgather(in, static_cast<int>(bytes), MPI_BYTE, out, static_cast<int>(bytes), MPI_BYTE, MPI_COMM_WORLD,
                   &req);
    bytes_sent_ += bytes * (size_ - 1);
    wait_for(&req, 1, -1, "an exchange of statistics");
  });
}

}  // namespace bb
