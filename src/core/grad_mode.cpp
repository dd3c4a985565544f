// The thread-local switch behind NoGradGuard.
#include "core/grad_mode.h"

namespace bb {
namespace {
thread_local bool t_grad_enabled = true;
}
bool GradMode::enabled() { return t_grad_enabled; }
void GradMode::set_enabled(bool on) { t_grad_enabled = on; }
}  // namespace bb
