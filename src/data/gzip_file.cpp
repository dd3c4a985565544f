// The one gzip-or-plain file reader of the data layer.
#include "data/gzip_file.h"

#include <fmt/format.h>
#include <zlib.h>

#include <filesystem>

#include "core/error.h"

namespace bb {

std::string read_maybe_gzip(const std::string& path) {
  if (!std::filesystem::is_regular_file(path))
    throw FormatError(fmt::format("{} does not exist or is not a file", path));
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw FormatError(fmt::format("cannot open {}", path));
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  // gzerror's text lives inside the gzFile: copy it before gzclose frees it.
  const std::string reason = msg && *msg ? msg : "read error";
  gzclose(f);
  // A gzip stream cut short reads as Z_BUF_ERROR ("unexpected end of file").
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw FormatError(fmt::format("{} is a corrupt or truncated gzip file: {}", path, reason));
  return out;
}

}  // namespace bb
