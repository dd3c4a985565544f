// Training by epochs: the last window of an epoch holds only that epoch's samples (a partial
// window, normalised by its own count) and the next epoch starts with a full window.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "tiny_job.h"
#include "train/epochs.h"
#include "train/vision_job.h"

namespace bb::test {
namespace {

// Records the sample indices of every batch asked for.
struct Recording final : Dataset {
  explicit Recording(const Dataset& d) : inner(d) {}
  Batch batch(int64_t first, int64_t count) const override {
    for (int64_t i = first; i < first + count; ++i) asked.push_back(i);
    return inner.batch(first, count);
  }
  int64_t size() const override { return inner.size(); }
  const Dataset& inner;
  mutable std::vector<int64_t> asked;
};

TEST(Epochs, StepsAndWindowSizes) {
  EXPECT_EQ(steps_for_epochs(2, 10, 4), 6);  // 4 + 4 + 2, twice
  EXPECT_EQ(steps_for_epochs(3, 8, 4), 6);
  EXPECT_EQ(window_samples(0, 10, 4), 4);
  EXPECT_EQ(window_samples(8, 10, 4), 2);   // the epoch's last two samples
  EXPECT_EQ(window_samples(10, 10, 4), 4);  // the next epoch starts whole
  EXPECT_EQ(window_samples(18, 10, 4), 2);
  EXPECT_EQ(window_samples(18, 0, 4), 4);   // a stream has no epochs
}

TEST(Epochs, LastWindowOfAnEpochHoldsOnlyThatEpochsSamples) {
  const int64_t n = 10, b = 2, k = 2;  // 10 documents, windows of 4: 4, 4, 2 per epoch
  Documents docs(documents(n, 11), 16, 3, 0);
  Recording data(docs);
  TinyRun run(data, b, k);
  for (int64_t s = 0; s < steps_for_epochs(2, n, b * k); ++s) {
    const size_t start = data.asked.size();
    StepResult r = run.trainer.step(window_samples(run.trainer.samples_done(), n, b * k));
    std::set<int64_t> epochs, items;
    for (size_t i = start; i < data.asked.size(); ++i) epochs.insert(data.asked[i] / n);
    EXPECT_EQ(epochs.size(), 1u) << "window of step " << s + 1 << " spans two epochs";
    EXPECT_EQ(r.samples, s % 3 == 2 ? 2 : 4) << s;
  }
  EXPECT_EQ(run.trainer.samples_done(), 2 * n);
  // Each epoch saw each sample index exactly once.
  ASSERT_EQ(data.asked.size(), size_t(2 * n));
  for (int64_t i = 0; i < 2 * n; ++i) EXPECT_EQ(data.asked[i], i);
}

TEST(Epochs, LanguageJobCountsStepsByEpochAndRefusesRandomWindows) {
  // A documents corpus of 12 documents, windows of 2 x 2: 3 steps an epoch.
  std::string text;
  for (int i = 0; i < 12; ++i) text += "document number " + std::to_string(i) + "\n%\n";
  const std::string path = ::testing::TempDir() + "/bb_epoch_docs.txt";
  std::ofstream(path) << text;
  RunConfig cfg = load_run_config("", {"model.n_layer=1", "model.n_embd=16", "model.n_head=2", "model.block_size=32",
                                       "train.micro_batch_size=2", "train.grad_accum_steps=2", "train.epochs=2",
                                       "data.format=documents", "data.val_fraction=0", "data.path=" + path});
  auto job = make_job(cfg);
  const int64_t size = job->corpus.train->size();
  ASSERT_GT(size, 0);
  EXPECT_EQ(job->total_steps, steps_for_epochs(2, size, 4));
  for (int64_t s = 0; s < job->total_steps; ++s) job->trainer->step(job->next_window());
  EXPECT_EQ(job->trainer->samples_done(), 2 * size);
  cfg.data.format = "text";
  EXPECT_THROW(make_job(cfg), ConfigError);
}

TEST(Epochs, VisionJobCutsEachEpochsLastWindow) {
  const std::string fashion = "/usr/share/datasets/fashion-mnist";
  ASSERT_TRUE(std::filesystem::exists(fashion + "/train-images-idx3-ubyte.gz")) << "scripts/setup.sh installs it";
  // 40 images, windows of 2 x 8 = 16: 16, 16 and the epoch's last 8, twice.
  RunConfig cfg = load_run_config("", {"model.type=resnet", "model.width=0.25", "data.format=fashion-mnist",
                                       "data.path=" + fashion, "data.limit=40", "data.test_limit=8",
                                       "train.micro_batch_size=8", "train.grad_accum_steps=2", "train.epochs=2"});
  auto job = make_vision_job(cfg);
  ASSERT_EQ(job->total_steps, 6);
  std::vector<int64_t> samples;
  for (int64_t s = 0; s < job->total_steps; ++s) samples.push_back(job->trainer->step(job->next_window()).samples);
  EXPECT_EQ(samples, (std::vector<int64_t>{16, 16, 8, 16, 16, 8}));
  EXPECT_EQ(job->trainer->samples_done(), 80);
}

}  // namespace
}  // namespace bb::test
