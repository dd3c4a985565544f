// What a run folder holds, the write probe, and --resume / --overwrite: see run_dir.h.
#include "cli/run_dir.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "io/atomic_dir.h"

namespace bb {
namespace fs = std::filesystem;

namespace {

bool same_folder(const std::string& a, const std::string& b) {
  std::error_code ec;
  return !a.empty() && !b.empty() && fs::equivalent(a, b, ec);
}

void probe_writable(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw FormatError(fmt::format("cannot create out_dir {}: {}", dir, ec.message()));
  const std::string probe = fmt::format("{}/.write-probe-{}", dir, ::getpid());
  {
    std::ofstream f(probe, std::ios::binary);
    if (!(f << "probe\n" << std::flush))
      throw FormatError(fmt::format("out_dir {} is not writable: {}", dir, std::strerror(errno)));
  }
  fs::remove(probe, ec);
}

// The files and folders of a previous run in dir, as names relative to it.
std::vector<std::string> previous_run(const std::string& dir) {
  std::vector<std::string> found;
  for (const char* f : {"metrics.jsonl", "run.json", "report.html", "checkpoint", "checkpoint.old", "checkpoint.tmp",
                        ".model.tmp"})
    if (fs::exists(fs::path(dir) / f)) found.push_back(f);
  if (fs::exists(fs::path(dir) / "base" / "config.json")) found.push_back("base");  // a LoRA run's random base
  for (const std::string& f : model_folder_files(dir)) found.push_back(f);
  return found;
}

}  // namespace

void prepare_out_dir(const RunConfig& cfg, bool resume, bool overwrite) {
  const std::string& dir = cfg.out_dir;
  if (resume && overwrite) throw ConfigError("--resume and --overwrite contradict each other; choose one");
  for (const auto& [key, source] : {std::pair<const char*, std::string>{"model.init", cfg.model_init},
                                    {"data.tokenizer", cfg.data.tokenizer}})
    if (same_folder(dir, source))
      throw ConfigError(fmt::format("out_dir {} is the folder {} reads from; the run would replace it", dir, key));
  probe_writable(dir);
  if (resume) return;
  const std::vector<std::string> found = previous_run(dir);
  if (found.empty()) return;
  if (!overwrite) {
    std::string list;
    for (size_t i = 0; i < found.size() && i < 4; ++i) list += (i ? ", " : "") + found[i];
    if (found.size() > 4) list += ", ...";
    throw ConfigError(fmt::format("out_dir {} already holds a run ({}); continue it with --resume or replace it "
                                  "with --overwrite", dir, list));
  }
  for (const std::string& f : found) fs::remove_all(fs::path(dir) / f);
}

}  // namespace bb
