// A Dataset wrapper that prepares the next batches on one background thread, so the trainer
// does not wait on decoding and augmentation. Batches are keyed by (first, count): a request
// that was prefetched is handed over, any other is made on the spot, so the result is always
// exactly what the wrapped dataset gives.
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "data/dataset.h"

namespace bb {

class PrefetchDataset final : public Dataset {
 public:
  // Keeps up to `depth` batches ready, guessing that after batch(first, count) comes
  // batch(first + count, count).
  PrefetchDataset(const Dataset& inner, int64_t depth = 2);
  ~PrefetchDataset() override;
  PrefetchDataset(const PrefetchDataset&) = delete;
  PrefetchDataset& operator=(const PrefetchDataset&) = delete;

  Batch batch(int64_t first, int64_t count) const override;
  int64_t size() const override { return inner_.size(); }
  int64_t hits() const { return hits_; }  // requests served from the prefetch queue

 private:
  struct Ready {
    int64_t first, count;
    Batch batch;
  };
  void run();

  const Dataset& inner_;
  const int64_t depth_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::deque<Ready> ready_;
  mutable int64_t next_first_ = -1, next_count_ = 0;  // what the thread makes next; -1: nothing
  mutable int64_t hits_ = 0;
  mutable std::exception_ptr error_;  // a failure of the thread, raised on the next request
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace bb
