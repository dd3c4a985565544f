// The one shared range check of configuration fields.
#include "core/error.h"

#include <fmt/format.h>

namespace bb {

void require_positive(int64_t v, const std::string& field) {
  if (v <= 0) throw ConfigError(fmt::format("{} must be positive, got {}", field, v));
}

}  // namespace bb
