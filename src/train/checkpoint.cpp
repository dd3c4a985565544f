// Checkpoint folder layout: model.safetensors, optimizer.safetensors, trainer.json.
#include "train/checkpoint.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "train/trainer_record.h"

namespace bb {

namespace fs = std::filesystem;
using nlohmann::json;

bool checkpoint_exists(const std::string& dir) { return fs::exists(dir + "/trainer.json"); }

void save_checkpoint(const std::string& dir, const Module& model, Optimizer& opt,
                     const Trainer& trainer, const std::string& config_yaml) {
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_safetensors(tmp + "/model.safetensors", model.named_parameters());
  save_safetensors(tmp + "/optimizer.safetensors", opt.state());
  json j = {{"optimizer_steps", opt.steps()},
            {"skipped_steps", trainer.skipped_steps()},
            {"cursor", trainer.samples_done()},
            {"loss_scale", trainer.scaler().scale()},
            {"clean_steps", trainer.scaler().clean_steps()},
            {"config", config_yaml}};
  write_text_atomic(tmp + "/trainer.json", j.dump(2) + "\n");
  // Swap folders so that one complete checkpoint exists at every moment.
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

CheckpointInfo load_checkpoint(const std::string& dir, Module& model, Optimizer& opt, Trainer& trainer) {
  const std::string path = dir + "/trainer.json";
  if (!fs::exists(path)) throw FormatError(fmt::format("no checkpoint in {} (trainer.json is missing)", dir));
  try {
    const CheckpointInfo info = parse_trainer_record(read_text_file(path), path);
    SafetensorsFile weights(dir + "/model.safetensors");
    for (const auto& [name, p] : model.named_parameters()) {
      if (!weights.contains(name))
        throw FormatError(fmt::format("{}/model.safetensors has no tensor '{}'", dir, name));
      Tensor t = weights.get(name, p.dtype(), Category::Workspace);
      if (t.shape() != p.shape())
        throw FormatError(fmt::format("{}/model.safetensors: '{}' is {} but the model has {}", dir,
                                      name, t.shape().str(), p.shape().str()));
      backend_for(p.device()).cast(t, p);  // copy into the existing parameter
    }
    SafetensorsFile state(dir + "/optimizer.safetensors");
    NamedTensors st;
    for (const std::string& n : state.names()) st.emplace_back(n, state.get(n, Category::Workspace));
    opt.load_state(st);
    opt.set_steps(info.optimizer_steps);
    trainer.restore(info.cursor, info.skipped_steps, info.loss_scale, info.clean_steps);
    return info;
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{} is not a valid checkpoint record ({})", path, e.what()));
  }
}

}  // namespace bb
