// GPT-2's pre-tokeniser and byte mapping. The regex is matched by hand because std::regex
// has no \p{L}; its alternatives are tried in order at each position, as a regex engine
// would, with the letter and number classes from the generated data/unicode_tables.h.
#include "data/byte_level.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <iterator>

#include "data/unicode_tables.h"

namespace bb::byte_level {
namespace {

enum class Class : uint8_t { kLetter, kNumber, kSpace, kOther };

template <size_t N>
bool in_ranges(const unicode::CodeRange (&table)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(table), std::end(table), cp,
                             [](uint32_t c, const unicode::CodeRange& r) { return c < r.first; });
  return it != std::begin(table) && cp <= std::prev(it)->last;
}

bool is_white_space(uint32_t cp) {  // the Unicode White_Space property
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

Class classify(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return Class::kLetter;
    if (cp >= '0' && cp <= '9') return Class::kNumber;
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) ? Class::kSpace : Class::kOther;
  }
  if (is_white_space(cp)) return Class::kSpace;
  if (in_ranges(unicode::kLetterRanges, cp)) return Class::kLetter;
  if (in_ranges(unicode::kNumberRanges, cp)) return Class::kNumber;
  return Class::kOther;
}

// Decodes the character at text[i]; returns its length in bytes (1 for an invalid byte).
size_t decode_utf8(std::string_view text, size_t i, uint32_t& cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char c = b(0);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > text.size()) len = 0;
  cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) >> 6) != 2) len = 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (len == 0 || cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    cp = 0xFFFD;  // not valid UTF-8: an "other" character one byte long
    return 1;
  }
  return len;
}

// The character at a byte offset, decoded on demand (the pattern needs no copy of the text).
struct Char {
  size_t len;  // in bytes
  char ascii;  // the character when it is ASCII, else 0 (for the contractions)
  Class cls;
};

Char char_at(std::string_view text, size_t i) {
  uint32_t cp;
  const size_t len = decode_utf8(text, i, cp);
  return {len, cp < 0x80 ? static_cast<char>(cp) : '\0', classify(cp)};
}

// Length in bytes of the contraction ('s 't 're 've 'm 'll 'd) at text[i], or 0.
size_t contraction(std::string_view text, size_t i) {
  if (text[i] != '\'' || i + 1 >= text.size()) return 0;
  const char a = text[i + 1], b = i + 2 < text.size() ? text[i + 2] : 0;
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// The end of the run of characters of class cls that starts at text[i].
size_t run_end(std::string_view text, size_t i, Class cls) {
  while (i < text.size()) {
    const Char c = char_at(text, i);
    if (c.cls != cls) break;
    i += c.len;
  }
  return i;
}

std::array<std::string, 256> make_byte_chars() {
  std::array<std::string, 256> out;
  int next = 256;  // bytes that are not printable map to U+0100 onwards, in byte order
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : next++;
    if (cp < 0x80) out[b] = std::string(1, static_cast<char>(cp));
    else out[b] = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
  }
  return out;
}

}  // namespace

void pretokenize(std::string_view text, const std::function<void(std::string_view)>& emit) {
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const Char c = char_at(text, i);
    const Char next = c.ascii == ' ' && i + 1 < n ? char_at(text, i + 1) : c;
    size_t end;
    if (const size_t len = contraction(text, i)) {
      end = i + len;
    } else if (c.cls != Class::kSpace) {
      // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" without the space
      end = run_end(text, i + c.len, c.cls);
    } else if (next.cls != Class::kSpace) {
      end = run_end(text, i + 1 + next.len, next.cls);  // with one space leading the run
    } else {
      // "\s+(?!\S)" leaves the last space of a run before a non-space to lead the next
      // piece; a lone space there falls through to "\s+"
      size_t last = i, count = 0;
      for (end = i; end < n; ++count) {
        const Char d = char_at(text, end);
        if (d.cls != Class::kSpace) break;
        last = end;
        end += d.len;
      }
      if (end < n && count > 1) end = last;
    }
    emit(text.substr(i, end - i));
    i = end;
  }
}

namespace {

// The contraction at text[i] in any case ('S, 'Re, ...), or 0.
size_t contraction_any_case(std::string_view text, size_t i) {
  if (text[i] != '\'' || i + 1 >= text.size()) return 0;
  const auto lower = [&](size_t k) { return k < text.size() ? static_cast<char>(text[k] | 0x20) : '\0'; };
  const char a = lower(i + 1), b = lower(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

bool is_newline(char c) { return c == '\r' || c == '\n'; }

// The end of the white space piece at text[i] (a space character): "\s*[\r\n]+" up to the
// run's last newline when it has one, else "\s+(?!\S)" (all but the last space before a
// non-space), else "\s+".
size_t space_piece_end(std::string_view text, size_t i) {
  size_t end = i, last = i, count = 0, after_newline = 0;
  while (end < text.size()) {
    const Char d = char_at(text, end);
    if (d.cls != Class::kSpace) break;
    last = end;
    end += d.len;
    ++count;
    if (is_newline(d.ascii)) after_newline = end;
  }
  if (after_newline) return after_newline;
  if (end < text.size() && count > 1) return last;
  return end;
}

}  // namespace

void pretokenize_llama3(std::string_view text, int max_digits, const std::function<void(std::string_view)>& emit) {
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const Char c = char_at(text, i);
    const Char next = i + c.len < n ? char_at(text, i + c.len) : Char{0, '\0', Class::kSpace};
    size_t end;
    if (const size_t len = contraction_any_case(text, i)) {
      end = i + len;
    } else if (c.cls == Class::kLetter) {
      end = run_end(text, i, Class::kLetter);
    } else if (c.cls != Class::kNumber && !is_newline(c.ascii) && next.len && next.cls == Class::kLetter) {
      end = run_end(text, i + c.len, Class::kLetter);  // one leading non-letter, non-digit
    } else if (c.cls == Class::kNumber) {
      end = i;
      for (int k = 0; k < max_digits && end < n; ++k) {
        const Char d = char_at(text, end);
        if (d.cls != Class::kNumber) break;
        end += d.len;
      }
    } else if (c.cls == Class::kOther || (c.ascii == ' ' && next.len && next.cls == Class::kOther)) {
      end = run_end(text, c.cls == Class::kOther ? i : i + 1, Class::kOther);
      while (end < n && is_newline(text[end])) ++end;
    } else {
      end = space_piece_end(text, i);
    }
    emit(text.substr(i, end - i));
    i = end;
  }
}

const std::string& byte_to_char(unsigned char b) {
  static const std::array<std::string, 256> table = make_byte_chars();
  return table[b];
}

std::string chars_to_bytes(std::string_view s) {
  static const std::array<int, 512> reverse = [] {
    std::array<int, 512> r;
    r.fill(-1);
    for (int b = 0; b < 256; ++b) {
      uint32_t cp;
      const std::string& c = byte_to_char(static_cast<unsigned char>(b));
      decode_utf8(c, 0, cp);
      r[cp] = b;
    }
    return r;
  }();
  std::string out;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t len = decode_utf8(s, i, cp);
    if (cp < reverse.size() && reverse[cp] >= 0 && len > 0) out.push_back(static_cast<char>(reverse[cp]));
    else out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace bb::byte_level
