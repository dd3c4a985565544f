// Stop requests by signal: the handler records the first and re-raises the second with the
// default action; the training loops poll received() at step boundaries.
#include "cli/signals.h"

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "cli/report.h"

namespace bb {

namespace {

std::atomic<int> g_received{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  if (g_received.compare_exchange_strong(expected, sig)) return;
  std::signal(sig, SIG_DFL);  // the second signal: stop now, as the user asks
  std::raise(sig);
}

void set_handler(int sig, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes in flight continue rather than fail with EINTR
  sigaction(sig, &sa, nullptr);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./:,@%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

StopSignals::StopSignals() {
  g_received = 0;
  set_handler(SIGINT, on_stop_signal);
  set_handler(SIGTERM, on_stop_signal);
}

StopSignals::~StopSignals() {
  set_handler(SIGINT, SIG_DFL);
  set_handler(SIGTERM, SIG_DFL);
}

int StopSignals::received() const { return g_received.load(); }

std::string resume_command(const TrainArgs& a) {
  std::string cmd = shell_quote(program_invocation_name) + " train";
  if (!a.config.empty()) cmd += " " + shell_quote(a.config);
  for (const std::string& o : a.overrides) cmd += " " + shell_quote(o);
  if (!a.memory_budget.empty()) cmd += " --memory-budget " + shell_quote(a.memory_budget);
  if (a.stop_after > 0) cmd += fmt::format(" --stop-after {}", a.stop_after);
  return cmd + " --resume";
}

std::string interrupted_message(int signal, int64_t step, const std::string& checkpoint, const TrainArgs& a) {
  return fmt::format("interrupted by {} after step {}: checkpoint saved in {}; continue with:\n  {}",
                     signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : strsignal(signal), step,
                     checkpoint, resume_command(a));
}

std::optional<int> stop_after_step(int signal, bool stop_after, bool last, int64_t step, int64_t run_steps,
                                   const std::string& checkpoint, const TrainArgs& a) {
  if (last) return std::nullopt;
  if (signal) {
    fmt::print(stderr, "{}\n", interrupted_message(signal, step, checkpoint, a));
    return 128 + signal;
  }
  if (stop_after) {
    fmt::print("stopped after {} at step {}; continue with --resume\n", count_of(run_steps, "step"), step);
    return 0;
  }
  return std::nullopt;
}

}  // namespace bb
