// Whether ops record themselves on the autograd tape. Thread-local, switched only by the
// NoGradGuard / EnableGradGuard scopes (gradient rules run under NoGrad).
#pragma once

namespace bb {

class GradMode {
 public:
  static bool enabled();
  static void set_enabled(bool on);
};

class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }

 private:
  bool prev_;
};

class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(GradMode::enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(prev_); }

 private:
  bool prev_;
};

}  // namespace bb
