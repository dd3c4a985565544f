// train.profile: the per-op profile of a few steps of a run, printed as one table.
#pragma once
#include <cstdint>

namespace bb {

// Profiles steps 2 to 4 of this run (the first warms caches and kernels up; a run of one
// step has it profiled), or as many of them as the run has.
class StepProfile {
 public:
  StepProfile(bool on, int64_t steps_left) : on_(on), skip_(steps_left > 1 ? 1 : 0) {}
  void before_step();
  void after_step(bool last);  // prints the table when its steps are done or the run ends

 private:
  bool on_;
  int64_t skip_;
  int64_t seen_ = 0, profiled_ = 0;
};

}  // namespace bb
