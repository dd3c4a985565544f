// Utf8Stream: turns bytes that arrive in pieces (one decoded token at a time) into valid
// UTF-8 as soon as each character is complete. An incomplete multi-byte sequence at the end
// is held back until its remaining bytes come; a byte that cannot start or continue a
// character becomes U+FFFD, so what is written is always valid UTF-8.
#pragma once
#include <string>
#include <string_view>

namespace bb {

class Utf8Stream {
 public:
  // The complete characters that `bytes` finishes (invalid bytes replaced); keeps the rest.
  std::string push(std::string_view bytes);
  // What is still held back, as U+FFFD (the text ended inside a character); empty if nothing.
  std::string finish();

 private:
  std::string pending_;
};

// `bytes` as valid UTF-8: every byte that is not part of a well-formed character becomes U+FFFD.
std::string valid_utf8(std::string_view bytes);

}  // namespace bb
