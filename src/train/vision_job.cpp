// Vision job assembly and whole-set evaluation.
#include "train/vision_job.h"

#include <fmt/format.h>

#include <sstream>

#include "core/error.h"
#include "core/grad_mode.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "ops/ops.h"
#include "train/epochs.h"
#include "train/batchnorm_sync.h"
#include "train/job.h"

namespace bb {

bool is_vision_model_type(const std::string& type) { return type == "resnet" || type == "mobilenetv2"; }

namespace {

std::vector<float> parse_floats(const std::string& text, const char* key) {
  std::vector<float> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t pos = 0;
      out.push_back(std::stof(item, &pos));
      if (item.find_first_not_of(" ", pos) != std::string::npos) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw ConfigError(fmt::format("{} must be numbers separated by commas, got '{}'", key, text));
    }
  }
  return out;
}

}  // namespace

VisionData load_vision_data(const RunConfig& cfg) {
  const auto& v = cfg.vision;
  if (v.limit < 0 || v.test_limit < 0) throw ConfigError("data.limit and data.test_limit must not be negative");
  ImageSet train, test;
  bool has_test = true;
  if (cfg.data.format == "fashion-mnist") {
    train = load_fashion_mnist(cfg.data.path, "train");
    test = load_fashion_mnist(v.test_path.empty() ? cfg.data.path : v.test_path, "t10k");
  } else if (cfg.data.format == "image-folder") {
    train = load_image_folder(cfg.data.path);
    has_test = !v.test_path.empty();
    if (has_test)
      test = load_image_folder(v.test_path, ImageFolderOptions{.height = train.height, .width = train.width,
                                                               .channels = train.channels, .classes = train.classes});
  } else {
    throw ConfigError(fmt::format("data.format '{}' is not an image format (fashion-mnist or image-folder)",
                                  cfg.data.format));
  }
  train.limit(v.limit);
  ImageTransform t;
  t.mean = parse_floats(v.mean, "data.mean");
  t.std = parse_floats(v.std, "data.std");
  if (t.mean.empty() != t.std.empty()) throw ConfigError("data.mean and data.std are given together or not at all");
  if (t.mean.empty()) train.channel_stats(t.mean, t.std);  // measured once, on the training images
  t.crop_padding = v.crop_padding;
  t.flip = v.flip != 0;
  t.seed = static_cast<uint64_t>(cfg.train.seed);
  VisionData d;
  ImageTransform plain{.mean = t.mean, .std = t.std, .shuffle = false};
  if (has_test) {
    test.limit(v.test_limit);
    d.test = std::make_unique<ImageDataset>(std::move(test), plain);
  }
  d.train = std::make_unique<ImageDataset>(std::move(train), t);
  return d;
}

ImageModelOptions image_model_options(const RunConfig& cfg, int64_t in_channels) {
  ImageModelOptions o;
  o.arch = cfg.model_type;
  o.in_channels = in_channels;
  o.classes = cfg.vision.classes;
  o.width = static_cast<float>(cfg.vision.width);
  o.depth = cfg.vision.depth;
  o.bn = parse_batchnorm_mode(cfg.vision.batchnorm);
  o.norm_groups = cfg.vision.norm_groups;
  o.seed = static_cast<uint64_t>(cfg.train.seed);
  return o;
}

std::unique_ptr<VisionJob> make_vision_job(const RunConfig& cfg) {
  auto job = std::make_unique<VisionJob>();
  job->cfg = cfg;
  job->data = load_vision_data(cfg);
  const ImageSet& s = job->data.train->images();
  if (static_cast<int64_t>(s.classes.size()) > cfg.vision.classes)
    throw ConfigError(fmt::format("model.classes is {} but {} has {} classes", cfg.vision.classes, s.source,
                                  s.classes.size()));
  job->info.options = image_model_options(cfg, s.channels);
  job->info.height = s.height;
  job->info.width = s.width;
  job->info.mean = job->data.train->transform().mean;
  job->info.std = job->data.train->transform().std;
  job->info.classes = s.classes;
  job->model = make_image_classifier(job->info.options);
  job->total_steps =
      cfg.vision.epochs > 0 ? steps_for_epochs(cfg.vision.epochs, s.count, effective_batch(cfg)) : cfg.train.steps;
  RunConfig sched_cfg = cfg;
  sched_cfg.train.steps = job->total_steps;  // the schedule spans the whole run
  job->optimizer = make_optimizer(sched_cfg, *job->model, job->comm->rank(), job->comm->size());
  job->schedule = make_schedule(sched_cfg);
  job->loader = std::make_unique<PrefetchDataset>(*job->data.train, 2);
  const ImageClassifier& model = *job->model;
  LossFn loss = [&model](const Batch& b, const Context& ctx, int64_t* count) {
    return model.loss(b.tokens, b.targets, ctx, count);
  };
  TrainerOptions o = make_trainer_options(sched_cfg);
  o.sample_slots = 1;  // one target an image
  job->trainer = std::make_unique<Trainer>(loss, *job->optimizer, *job->loader, job->schedule, o, *job->comm);
  Communicator* comm = job->comm;
  job->trainer->on_window_end([&model, comm] {
    if (comm->size() > 1) merge_batchnorm_windows(model, *comm);  // every rank's micro-batches
    model.finish_window();
  });
  return job;
}

int64_t VisionJob::next_window() const {
  return window_samples(trainer->samples_done(), cfg.vision.epochs > 0 ? data.train->size() : 0,
                        trainer->window_size());
}

ClassifierEval evaluate_classifier(const ImageClassifier& model, const Dataset& data, int64_t classes,
                                   int64_t micro_batch, Precision precision) {
  NoGradGuard no_grad;
  Context ctx{.compute = compute_dtype(precision), .training = false};
  ClassifierEval e;
  e.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  int64_t correct = 0;
  double loss = 0;
  for (int64_t first = 0; first < data.size(); first += micro_batch) {
    const int64_t n = std::min(micro_batch, data.size() - first);
    Batch b = data.batch(first, n);
    const Tensor logits = cast(model.logits(b.tokens, ctx), DType::F32);
    int64_t count = 0;
    loss += cross_entropy(logits, b.targets, -100, &count).item();
    const std::vector<float> l = logits.to_floats();
    const std::vector<int64_t> y = b.targets.to_ints();
    for (int64_t i = 0; i < n; ++i) {
      const float* row = l.data() + i * classes;
      const int64_t pred = std::max_element(row, row + classes) - row;
      correct += pred == y[i];
      if (y[i] >= 0 && y[i] < classes) ++e.confusion[y[i]][pred];
    }
    e.samples += n;
  }
  e.accuracy = e.samples ? static_cast<double>(correct) / e.samples : 0.0;
  e.loss = e.samples ? loss / e.samples : 0.0;
  return e;
}

}  // namespace bb
