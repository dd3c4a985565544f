// A vision training job assembled from a RunConfig: image data (Fashion-MNIST or an image
// folder, with augmentation), an ImageClassifier, optimizer, schedule and trainer reading
// through the background loader; shared by `bigbatch train`, the tests and the benchmark.
#pragma once
#include <memory>

#include "data/image_dataset.h"
#include "data/prefetch.h"
#include "dist/communicator.h"
#include "io/image_model.h"
#include "models/image_classifier.h"
#include "optim/optimizer.h"
#include "train/config.h"
#include "train/trainer.h"

namespace bb {

// True for the model.type values this job handles (resnet, mobilenetv2).
bool is_vision_model_type(const std::string& type);

struct VisionData {
  std::unique_ptr<ImageDataset> train, test;  // test may be null (image-folder without data.test_path)
};

// Loads data.path (and the test split) as cfg.data.format says; throws FormatError or
// ConfigError naming the file or key.
VisionData load_vision_data(const RunConfig& cfg);
ImageModelOptions image_model_options(const RunConfig& cfg, int64_t in_channels);

struct VisionJob {
  RunConfig cfg;
  VisionData data;
  ImageModelInfo info;  // what config.json will describe
  std::unique_ptr<ImageClassifier> model;
  std::unique_ptr<Optimizer> optimizer;
  Schedule schedule;
  Communicator* comm = &world();  // the ranks of mpirun, or this process alone
  std::unique_ptr<PrefetchDataset> loader;
  std::unique_ptr<Trainer> trainer;
  int64_t total_steps = 0;  // train.steps, or what train.epochs makes of it (train/epochs.h)
  // Samples of the next window: with train.epochs, cut at the epoch's end.
  int64_t next_window() const;
};

std::unique_ptr<VisionJob> make_vision_job(const RunConfig& cfg);

// Accuracy and confusion matrix (rows: true class, columns: predicted) over a whole set.
struct ClassifierEval {
  double accuracy = 0, loss = 0;  // loss: mean cross-entropy
  int64_t samples = 0;
  std::vector<std::vector<int64_t>> confusion;
};
ClassifierEval evaluate_classifier(const ImageClassifier& model, const Dataset& data, int64_t classes,
                                   int64_t micro_batch, Precision precision);

}  // namespace bb
