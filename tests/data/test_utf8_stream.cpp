// Utf8Stream: bytes that arrive a token at a time come out as valid UTF-8, a character split
// over pieces waits for its last byte, and bytes that cannot form a character become U+FFFD.
#include <gtest/gtest.h>

#include "data/utf8_stream.h"

namespace bb::test {
namespace {

const std::string kBad = "\xEF\xBF\xBD";

TEST(Utf8Stream, HoldsBackASplitCharacterUntilItCompletes) {
  Utf8Stream s;
  EXPECT_EQ(s.push("a\xC3"), "a");  // the first byte of é waits
  EXPECT_EQ(s.push("\xA9"), "\xC3\xA9");
  EXPECT_EQ(s.push("\xF0\x9F"), "");  // half an emoji
  EXPECT_EQ(s.push("\x98"), "");
  EXPECT_EQ(s.push("\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(s.finish(), "");
}

TEST(Utf8Stream, ReplacesBytesThatCannotFormACharacter) {
  EXPECT_EQ(valid_utf8("\x80"), kBad);                    // a lone continuation byte
  EXPECT_EQ(valid_utf8("\xC0\xAF"), kBad + kBad);         // overlong '/'
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), kBad + kBad + kBad);  // a surrogate
  EXPECT_EQ(valid_utf8("\xF5\x80"), kBad + kBad);         // past U+10FFFF
  EXPECT_EQ(valid_utf8("\xC3x"), kBad + "x");             // cut short by an ASCII byte
  EXPECT_EQ(valid_utf8("\xE2\x82\xAC"), "\xE2\x82\xAC");  // the euro sign passes
  Utf8Stream s;
  EXPECT_EQ(s.push("ok\xE2\x82"), "ok");
  EXPECT_EQ(s.push("y"), kBad + "y");  // the held bytes did not become a character
  EXPECT_EQ(s.push("\xE2"), "");
  EXPECT_EQ(s.finish(), kBad);  // the text ended inside a character
}

TEST(Utf8Stream, AnyByteSequenceComesOutValid) {
  // Every output of random bytes, pushed in random pieces, is what valid_utf8 makes of the
  // whole, and that holds only well-formed characters.
  uint64_t x = 88172645463325252ull;
  for (int round = 0; round < 200; ++round) {
    std::string bytes;
    for (int i = 0; i < 64; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      bytes += static_cast<char>(x & 0xFF);
    }
    Utf8Stream s;
    std::string out;
    for (size_t i = 0; i < bytes.size();) {
      const size_t n = 1 + (x >> (i % 50)) % 3;
      out += s.push(bytes.substr(i, n));
      i += n;
    }
    out += s.finish();
    EXPECT_EQ(out, valid_utf8(bytes));
    EXPECT_EQ(valid_utf8(out), out);  // already valid: nothing to replace
  }
}

}  // namespace
}  // namespace bb::test
