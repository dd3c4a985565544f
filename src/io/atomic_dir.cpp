// Folder swaps (renameat2 RENAME_EXCHANGE) and model folders published anchor-last: see
// atomic_dir.h and docs/notes/crash-safety.md.
#include "io/atomic_dir.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>

#include "core/error.h"

namespace bb {
namespace fs = std::filesystem;

namespace {

constexpr unsigned kRenameExchange = 1u << 1;  // RENAME_EXCHANGE of <linux/fs.h>
const char* kStaging = ".model.tmp";
const std::set<std::string> kAnchors = {"config.json", "adapter_config.json"};

void fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw FormatError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  const bool ok = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok && err != EINVAL && err != EROFS)  // some filesystems cannot sync folders
    throw FormatError(fmt::format("cannot sync {}: {}", path, std::strerror(err)));
}

std::string parent_of(const std::string& path) {
  std::string p = fs::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

void rename_or_throw(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0)
    throw FormatError(fmt::format("cannot rename {} to {}: {}", from, to, std::strerror(errno)));
}

bool is_model_file(const std::string& name) {
  static const std::set<std::string> names = {
      "config.json",     "adapter_config.json", "generation_config.json", "model.safetensors",
      "model.safetensors.index.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer.model",
      "vocab.json",      "merges.txt",          "tokenizer_config.json",  "special_tokens_map.json",
      "chat_template.jinja"};
  static const std::regex shard(R"(model-[0-9]+-of-[0-9]+\.safetensors)");
  return names.count(name) > 0 || std::regex_match(name, shard);
}

}  // namespace

void fsync_dir(const std::string& dir) { fsync_path(dir, O_RDONLY | O_DIRECTORY); }

void replace_dir_atomic(const std::string& tmp, const std::string& dir) {
  const std::string parent = parent_of(dir);
  if (!fs::exists(dir)) {
    rename_or_throw(tmp, dir);
    fsync_dir(parent);
    return;
  }
  if (::syscall(SYS_renameat2, AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), kRenameExchange) == 0) {
    fsync_dir(parent);
    fs::remove_all(tmp);  // the previous folder, now under the temporary name
    return;
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    throw FormatError(fmt::format("cannot replace {} with {}: {}", dir, tmp, std::strerror(errno)));
  // No exchange on this filesystem: keep the old folder as "<dir>.old" until the new one is
  // in place; readers of `dir` look there too (see find_checkpoint).
  const std::string old = dir + ".old";
  fs::remove_all(old);
  rename_or_throw(dir, old);
  fsync_dir(parent);
  rename_or_throw(tmp, dir);
  fsync_dir(parent);
  fs::remove_all(old);
}

std::vector<std::string> model_folder_files(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && is_model_file(e.path().filename().string())) found.push_back(e.path().filename().string());
  std::sort(found.begin(), found.end());
  return found;
}

void write_model_folder(const std::string& dir, const std::function<void(const std::string& staging)>& write) {
  fs::create_directories(dir);
  const std::string staging = (fs::path(dir) / kStaging).string();
  fs::remove_all(staging);  // left by a save that was killed
  fs::create_directories(staging);
  write(staging);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(staging)) {
    if (!e.is_regular_file()) continue;
    files.push_back(e.path().filename().string());
    fsync_path(e.path().string(), O_RDONLY);
  }
  std::sort(files.begin(), files.end());
  // 1. No anchor: from here until step 4 the folder holds no model a reader would open.
  for (const std::string& f : model_folder_files(dir))
    if (kAnchors.count(f)) fs::remove(fs::path(dir) / f);
  fsync_dir(dir);
  // 2. Files of the earlier set the new one lacks (another shard count, another tokenizer).
  for (const std::string& f : model_folder_files(dir))
    if (!std::binary_search(files.begin(), files.end(), f)) fs::remove(fs::path(dir) / f);
  // 3. The new files, then 4. the new anchors.
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string& f : files)
      if ((kAnchors.count(f) > 0) == (pass == 1))
        rename_or_throw((fs::path(staging) / f).string(), (fs::path(dir) / f).string());
    fsync_dir(dir);
  }
  fs::remove_all(staging);
}

}  // namespace bb
