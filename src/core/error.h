// The error types library code throws. Only cli/ turns them into a message and an exit
// code; each message is one sentence naming the op, tensor, file or field at fault.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace bb {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A shape or dtype that an op cannot take.
struct ShapeError : Error {
  using Error::Error;
};
// An allocation that would pass the memory budget.
struct OutOfBudget : Error {
  using Error::Error;
};
// A file that cannot be read or does not hold what it should.
struct FormatError : Error {
  using Error::Error;
};
// A configuration key or value that is unknown or out of range.
struct ConfigError : Error {
  using Error::Error;
};

// Throws ConfigError "<field> must be positive, got <v>" unless v > 0.
void require_positive(int64_t v, const std::string& field);

}  // namespace bb
