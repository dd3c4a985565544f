// The profiling backend: forwards every kernel call to the backend it wraps and books the
// call's time (and a product's FLOPs) in the per-op profile. The registry hands it out in
// place of the CPU backend while the profile is on.
#pragma once
#include "backend/backend.h"

namespace bb {

Backend& profiling_backend(Backend& inner);

}  // namespace bb
