// Writing a file so that a reader never sees half of it: write a temporary file beside the
// target, fsync it, then rename it over the target (and fsync the folder).
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace bb {

// Calls write(fd-backed stream) into "<path>.tmp", then renames. Throws FormatError naming
// the path when any step fails; the old file stays as it was.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write);
void write_text_atomic(const std::string& path, std::string_view text);
std::string read_text_file(const std::string& path);  // throws FormatError naming the path

}  // namespace bb
