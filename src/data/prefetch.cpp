// The background batch thread.
#include "data/prefetch.h"

#include <algorithm>

namespace bb {

PrefetchDataset::PrefetchDataset(const Dataset& inner, int64_t depth)
    : inner_(inner), depth_(std::max<int64_t>(depth, 1)) {
  thread_ = std::thread([this] { run(); });
}

PrefetchDataset::~PrefetchDataset() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PrefetchDataset::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || (next_first_ >= 0 && static_cast<int64_t>(ready_.size()) < depth_); });
    if (stop_) return;
    const int64_t first = next_first_, count = next_count_;
    lock.unlock();
    Batch b;
    std::exception_ptr err;
    try {
      b = inner_.batch(first, count);
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    if (err) {
      error_ = err;
      next_first_ = -1;
    } else if (next_first_ == first && next_count_ == count) {  // still wanted
      ready_.push_back(Ready{first, count, std::move(b)});
      next_first_ = first + count;
    }
    cv_.notify_all();
  }
}

Batch PrefetchDataset::batch(int64_t first, int64_t count) const {
  std::unique_lock<std::mutex> lock(mu_);
  // While the thread is making exactly this batch, wait for it rather than make it twice.
  cv_.wait(lock, [&] { return !(ready_.empty() && !error_ && next_first_ == first && next_count_ == count); });
  if (!ready_.empty() && ready_.front().first == first && ready_.front().count == count) {
    Batch out = std::move(ready_.front().batch);
    ready_.pop_front();
    ++hits_;
    if (next_first_ < 0) {  // the thread had stopped on an error: go on after the queue
      next_first_ = ready_.empty() ? first + count : ready_.back().first + ready_.back().count;
      next_count_ = count;
      error_ = nullptr;
    }
    cv_.notify_all();
    return out;
  }
  // Not what was guessed (the first request, a resume, a partial window, an error): make it
  // here, on this thread, while the background thread starts on the one after it.
  ready_.clear();
  error_ = nullptr;
  next_first_ = first + count;
  next_count_ = count;
  cv_.notify_all();
  lock.unlock();
  return inner_.batch(first, count);
}

}  // namespace bb
