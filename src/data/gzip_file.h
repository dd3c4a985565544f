// Reading a whole file that may be gzip-compressed (zlib reads plain files as they are).
#pragma once
#include <string>

namespace bb {

// The decompressed bytes; FormatError naming the path when it is missing, unreadable, or a
// corrupt or truncated gzip stream.
std::string read_maybe_gzip(const std::string& path);

}  // namespace bb
