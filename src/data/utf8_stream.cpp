// Streaming UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
#include "data/utf8_stream.h"

namespace bb {
namespace {

constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Bytes of the character that lead byte `b` starts; 0 when b cannot start one.
int sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Whether `c` may follow lead byte `lead` as byte number `i` (1-based) of its character.
bool continues(unsigned char lead, int i, unsigned char c) {
  if (i == 1) {
    if (lead == 0xE0) return c >= 0xA0 && c <= 0xBF;  // no overlong 3-byte forms
    if (lead == 0xED) return c >= 0x80 && c <= 0x9F;  // no surrogates
    if (lead == 0xF0) return c >= 0x90 && c <= 0xBF;  // no overlong 4-byte forms
    if (lead == 0xF4) return c >= 0x80 && c <= 0x8F;  // nothing past U+10FFFF
  }
  return c >= 0x80 && c <= 0xBF;
}

// Appends the valid characters of `in` to `out`; returns how many bytes at the end were left
// because they may still become a character (only when `final` is false).
size_t convert(std::string_view in, std::string& out, bool final) {
  size_t i = 0;
  while (i < in.size()) {
    const auto lead = static_cast<unsigned char>(in[i]);
    const int n = sequence_length(lead);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    int good = 1;
    while (good < n && i + good < in.size() && continues(lead, good, static_cast<unsigned char>(in[i + good]))) ++good;
    if (good == n) {
      out.append(in.substr(i, n));
      i += n;
    } else if (i + good == in.size() && !final) {
      return in.size() - i;  // a character cut short by the end of what has come so far
    } else {
      out += kReplacement;  // the lead and its valid continuation bytes are one bad sequence
      i += good;
    }
  }
  return 0;
}

}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  const size_t held = convert(pending_, out, false);
  pending_.erase(0, pending_.size() - held);
  return out;
}

std::string Utf8Stream::finish() {
  std::string out;
  convert(pending_, out, true);
  pending_.clear();
  return out;
}

std::string valid_utf8(std::string_view bytes) {
  std::string out;
  convert(bytes, out, true);
  return out;
}

}  // namespace bb
