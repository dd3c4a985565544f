// GPT-2's byte-level pieces: its pre-tokenisation regex written out by hand over UTF-8 code
// points, and the byte <-> printable character mapping its vocabulary files are written in.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace bb::byte_level {

// Splits text exactly as GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does (\s is Unicode White_Space), calling emit with each piece, a view into text. Bytes that
// are not valid UTF-8 count as one "other" character each.
void pretokenize(std::string_view text, const std::function<void(std::string_view)>& emit);

// Splits text as the pattern of Llama 3's tokenizer.json (max_digits 3) and Qwen 2's (1):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
void pretokenize_llama3(std::string_view text, int max_digits, const std::function<void(std::string_view)>& emit);

// The UTF-8 of the printable character GPT-2 writes for byte b in vocab.json and merges.txt.
const std::string& byte_to_char(unsigned char b);

// The bytes a vocabulary string stands for. A character outside the mapping (an added token
// such as "<|endoftext|>" may hold any) stands for its own UTF-8.
std::string chars_to_bytes(std::string_view s);

}  // namespace bb::byte_level
