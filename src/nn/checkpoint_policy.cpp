// Parsing and printing checkpoint policies.
#include "nn/checkpoint_policy.h"

#include <fmt/format.h>

#include "core/error.h"

namespace bb {

CheckpointPolicy CheckpointPolicy::parse(const std::string& text) {
  CheckpointPolicy p;
  if (text == "none" || text.empty()) return p;
  if (text == "full") {
    p.kind = Kind::kFull;
    return p;
  }
  if (text == "selective") {
    p.kind = Kind::kSelective;
    return p;
  }
  if (text.rfind("every:", 0) == 0) {
    try {
      size_t pos = 0;
      p.every = std::stoll(text.substr(6), &pos);
      if (pos == text.size() - 6 && p.every > 0) {
        p.kind = Kind::kEvery;
        return p;
      }
    } catch (const std::exception&) {
    }
  }
  throw ConfigError(fmt::format(
      "train.checkpointing '{}' is not known (none, full, every:N with N > 0, or selective)", text));
}

std::string CheckpointPolicy::str() const {
  switch (kind) {
    case Kind::kNone: return "none";
    case Kind::kFull: return "full";
    case Kind::kEvery: return fmt::format("every:{}", every);
    case Kind::kSelective: return "selective";
  }
  return "?";
}

}  // namespace bb
