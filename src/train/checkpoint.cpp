// Checkpoint folder layout: model.safetensors, optimizer.safetensors, trainer.json, and
// manifest.json written last (the completeness marker); written aside and swapped in whole.
#include "train/checkpoint.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <functional>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "core/error.h"
#include "io/atomic_dir.h"
#include "io/atomic_file.h"
#include "io/hf_weights.h"
#include "io/safetensors.h"
#include "train/sharded_state.h"
#include "train/trainer_record.h"

namespace bb {

namespace fs = std::filesystem;
using nlohmann::json;


namespace {

const char* kManifest = "manifest.json";

// The completeness marker, written last: the step and each file's size (and under ZeRO-1
// the shards' layout). A folder without it, or whose files differ from it, is a write that
// did not finish.
void write_manifest(const std::string& dir, int64_t optimizer_steps, const std::vector<std::string>& names,
                    const json& zero) {
  json files = json::object();
  for (const std::string& f : names) {
    std::error_code ec;
    const auto size = fs::file_size(fs::path(dir) / f, ec);
    if (ec)
      throw FormatError(fmt::format("{}/{} is not there to complete the checkpoint{}", dir, f,
                                    zero.is_null() ? "" : ": under dist.zero=1 every rank writes its shard into "
                                                          "out_dir, which must be one folder that all ranks share"));
    files[f] = static_cast<int64_t>(size);
  }
  json m = {{"format", "bigbatch checkpoint"}, {"optimizer_steps", optimizer_steps}, {"files", files}};
  if (!zero.is_null()) m["zero"] = zero;
  write_text_atomic(dir + "/" + kManifest, m.dump(2) + "\n");
}

void write_trainer_record(const std::string& dir, const Optimizer& opt, const Trainer& trainer,
                          const std::string& config_yaml) {
  json j = {{"optimizer_steps", opt.steps()},
            {"skipped_steps", trainer.skipped_steps()},
            {"cursor", trainer.samples_done()},
            {"loss_scale", trainer.scaler().scale()},
            {"clean_steps", trainer.scaler().clean_steps()},
            {"config", config_yaml}};
  write_text_atomic(dir + "/trainer.json", j.dump(2) + "\n");
}

// Runs f on this rank and tells every rank whether it failed on any: this rank's own error
// is rethrown, another rank's becomes an Error, so no rank goes on with a half checkpoint.
void on_every_rank(Communicator& comm, const std::function<void()>& f, const std::string& what) {
  std::exception_ptr err;
  try {
    f();
  } catch (...) {
    err = std::current_exception();
  }
  int64_t failed = err ? 1 : 0;
  comm.allreduce_sum(&failed, 1);
  if (err) std::rethrow_exception(err);
  if (failed) throw Error(fmt::format("another rank failed to {}; the previous checkpoint stays", what));
}

// ZeRO-1: rank 0 prepares the folder, every rank writes its shard, rank 0 completes it.
// A frozen q8_0 / q4_0 base is not written into model.safetensors (which has no block dtype,
// and the base never changes): its dtype, shape and a fingerprint of its bytes go into the
// file's metadata, and resume checks that the model rebuilt from model.init holds the same.
constexpr std::string_view kFrozenBlocks = "bigbatch.frozen_blocks.";

std::string block_fingerprint(const Tensor& t) {
  // 64-bit FNV-1a over 8-byte words, then the tail: fast enough for a 1 GiB base per save.
  const auto* p = static_cast<const uint8_t*>(t.raw());
  const size_t n = t.nbytes();
  uint64_t h = 1469598103934665603ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 1099511628211ull;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return fmt::format("{} {} {:016x}", dtype_name(t.dtype()), t.shape().str(), h);
}

void save_model_weights(const std::string& path, const Module& model) {
  NamedTensors floats;
  std::map<std::string, std::string> frozen;
  for (const auto& [name, t] : model.named_parameters()) {
    if (is_block_quantized(t.dtype())) frozen[std::string(kFrozenBlocks) + name] = block_fingerprint(t);
    else floats.emplace_back(name, t);
  }
  save_safetensors(path, floats, frozen);
}

void save_sharded_checkpoint(const std::string& dir, const Module& model, Optimizer& opt, const Trainer& trainer,
                             const std::string& config_yaml) {
  Communicator& comm = trainer.comm();
  const std::string tmp = dir + ".tmp";
  const bool lead = comm.rank() == 0;
  on_every_rank(comm, [&] {
    if (!lead) return;
    fs::remove_all(tmp);
    fs::create_directories(tmp);
  }, "prepare " + tmp);
  on_every_rank(comm, [&] { save_safetensors(tmp + "/" + shard_file_name(comm.rank(), comm.size()), opt.state()); },
                "write its optimizer shard into " + tmp);
  on_every_rank(comm, [&] {
    if (!lead) return;
    const json layout = shard_layout(opt.params(), trainer.options().bucket_bytes, comm.size());
    save_model_weights(tmp + "/model.safetensors", model);
    write_trainer_record(tmp, opt, trainer, config_yaml);
    std::vector<std::string> files = {"model.safetensors", "trainer.json"};
    for (const std::string& f : shard_files(layout)) files.push_back(f);
    write_manifest(tmp, opt.steps(), files, layout);
    fsync_dir(tmp);
    replace_dir_atomic(tmp, dir);
    fs::remove_all(dir + ".old");
  }, "complete the checkpoint " + dir);
}

}  // namespace

int64_t complete_checkpoint_steps(const std::string& dir) {
  const fs::path manifest = fs::path(dir) / kManifest;
  std::error_code ec;
  if (!fs::is_regular_file(manifest, ec)) return -1;
  json m = json::parse(read_text_file(manifest.string()), nullptr, false);
  if (m.is_discarded() || !m.is_object() || !m.contains("files") || !m["files"].is_object() ||
      !m.contains("optimizer_steps") || !m["optimizer_steps"].is_number_integer())
    return -1;
  for (const auto& [name, size] : m["files"].items()) {
    const auto actual = fs::file_size(fs::path(dir) / name, ec);
    if (ec || !size.is_number_integer() || static_cast<int64_t>(actual) != size.get<int64_t>()) return -1;
  }
  return m["optimizer_steps"].get<int64_t>();
}

std::string find_checkpoint(const std::string& dir) {
  std::string best;
  int64_t best_steps = -1;
  for (const std::string& candidate : {dir, dir + ".old"}) {
    const int64_t steps = complete_checkpoint_steps(candidate);
    if (steps > best_steps) best = candidate, best_steps = steps;
  }
  return best;
}

bool checkpoint_exists(const std::string& dir) { return !find_checkpoint(dir).empty(); }

void save_checkpoint(const std::string& dir, const Module& model, Optimizer& opt,
                     const Trainer& trainer, const std::string& config_yaml) {
  if (trainer.options().zero && trainer.comm().size() > 1)
    return save_sharded_checkpoint(dir, model, opt, trainer, config_yaml);
  const std::string tmp = dir + ".tmp";
  fs::remove_all(tmp);  // a write that was killed; never read as a checkpoint
  fs::create_directories(tmp);
  save_model_weights(tmp + "/model.safetensors", model);
  save_safetensors(tmp + "/optimizer.safetensors", opt.state());
  write_trainer_record(tmp, opt, trainer, config_yaml);
  write_manifest(tmp, opt.steps(), {"model.safetensors", "optimizer.safetensors", "trainer.json"}, json());
  fsync_dir(tmp);
  replace_dir_atomic(tmp, dir);  // one complete checkpoint exists at every moment
  fs::remove_all(dir + ".old");  // left by a swap without RENAME_EXCHANGE, now superseded
}

CheckpointInfo load_checkpoint(const std::string& dir, Module& model, Optimizer& opt, Trainer& trainer) {
  if (complete_checkpoint_steps(dir) < 0)
    throw FormatError(fmt::format("{} is not a complete checkpoint ({} is missing or names files that differ)", dir,
                                  kManifest));
  const std::string path = dir + "/trainer.json";
  if (!fs::exists(path)) throw FormatError(fmt::format("no checkpoint in {} (trainer.json is missing)", dir));
  try {
    const CheckpointInfo info = parse_trainer_record(read_text_file(path), path);
    SafetensorsFile weights(dir + "/model.safetensors");
    for (const auto& [name, p] : model.named_parameters()) {
      if (is_block_quantized(p.dtype())) {
        const auto it = weights.metadata().find(std::string(kFrozenBlocks) + name);
        if (it == weights.metadata().end() || it->second != block_fingerprint(p))
          throw FormatError(fmt::format("{}/model.safetensors: the frozen {} base weight '{}' is not the one this "
                                        "checkpoint trained on (model.init or lora.base_dtype changed?)", dir,
                                        dtype_name(p.dtype()), name));
        continue;
      }
      if (!weights.contains(name))
        throw FormatError(fmt::format("{}/model.safetensors has no tensor '{}'", dir, name));
      Tensor t = weights.get(name, p.dtype(), Category::Workspace);
      if (t.shape() != p.shape())
        throw FormatError(fmt::format("{}/model.safetensors: '{}' is {} but the model has {}", dir,
                                      name, t.shape().str(), p.shape().str()));
      require_finite(t, name, dir + "/model.safetensors");  // a damaged file must not resume as NaN
      backend_for(p.device()).cast(t, p);  // copy into the existing parameter
    }
    const json manifest = json::parse(read_text_file(dir + "/" + kManifest));
    if (manifest.contains("zero")) {
      load_sharded_state(dir, manifest["zero"], opt);  // on any number of ranks, sharded or not
    } else {
      SafetensorsFile state(dir + "/optimizer.safetensors");
      NamedTensors st;
      for (const std::string& n : state.names()) {
        st.emplace_back(n, state.get(n, Category::Workspace));
        require_finite(st.back().second, n, dir + "/optimizer.safetensors");
      }
      opt.load_state(st);
    }
    opt.set_steps(info.optimizer_steps);
    trainer.restore(info.cursor, info.skipped_steps, info.loss_scale, info.clean_steps);
    return info;
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{} is not a valid checkpoint record ({})", path, e.what()));
  }
}

}  // namespace bb
