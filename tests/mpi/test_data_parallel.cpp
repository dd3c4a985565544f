// Data parallelism under mpirun (CTest starts this binary on 2 and on 3 ranks): N ranks of K
// micro-batches of B give the gradients and updates of one rank with N*K micro-batches of B.
// Every rank also builds the one-rank reference itself (same seed, a SingleProcess trainer),
// so each rank checks its own copy of the result.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "nn/vision_layers.h"
#include "train/config.h"
#include "train/job.h"
#include "train/vision_job.h"

namespace bb::test {
namespace {

Communicator& comm() { return world(); }

// A folder every rank agrees on (rank 0's temporary folder name, broadcast).
std::string shared_path(const std::string& name) { return ::testing::TempDir() + "/bb_mpi_" + name; }

void expect_close(const std::vector<float>& a, const std::vector<float>& b, double rel, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  EXPECT_LE(worst, rel * std::max(scale, 1e-12)) << what << ": max abs difference " << worst << " of scale " << scale;
}

std::vector<float> floats(const Tensor& t) { return t.defined() ? t.to_floats() : std::vector<float>{}; }

// The gradients of every trained parameter after one window.
std::vector<std::vector<float>> window_grads(Trainer& t, Optimizer& opt) {
  t.compute_gradients();
  std::vector<std::vector<float>> g;
  for (const ParamGroup& p : opt.params()) g.push_back(floats(p.param.grad()));
  opt.zero_grad();
  return g;
}

// A distributed job and its one-rank reference: the same config, N*K micro-batches.
struct Pair {
  std::unique_ptr<Job> dist, ref;
  SingleProcess one;
  std::unique_ptr<Trainer> ref_trainer;
};

Pair language_pair(std::vector<std::string> overrides) {
  Pair p;
  RunConfig cfg = load_run_config("", overrides);
  p.dist = make_job(cfg);
  p.ref = make_job(cfg);
  TrainerOptions o = make_trainer_options(cfg);
  o.grad_accum *= comm().size();
  o.sample_slots = p.ref->block_size;
  p.ref_trainer = std::make_unique<Trainer>(lm_loss(*p.ref->model), *p.ref->optimizer, *p.ref->corpus.train,
                                            p.ref->schedule, o, p.one);
  return p;
}

void expect_same_gradients(Pair& p, const std::string& what) {
  auto d = window_grads(*p.dist->trainer, *p.dist->optimizer);
  auto r = window_grads(*p.ref_trainer, *p.ref->optimizer);
  ASSERT_EQ(d.size(), r.size());
  const auto& params = p.ref->optimizer->params();
  for (size_t i = 0; i < d.size(); ++i) expect_close(d[i], r[i], 1e-5, what + " " + params[i].name);
}

void expect_same_weights(Pair& p, int steps, const std::string& what) {
  for (int s = 0; s < steps; ++s) {
    StepResult a = p.dist->trainer->step(), b = p.ref_trainer->step();
    EXPECT_EQ(a.tokens, b.tokens) << what;
    EXPECT_EQ(a.samples, b.samples) << what;
    EXPECT_NEAR(a.loss, b.loss, 1e-5 * std::abs(b.loss)) << what;
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4 * b.grad_norm) << what;
  }
  const auto& pd = p.dist->optimizer->params();
  const auto& pr = p.ref->optimizer->params();
  for (size_t i = 0; i < pd.size(); ++i)
    expect_close(floats(pd[i].param), floats(pr[i].param), 1e-5, what + " weights " + pr[i].name);
}

const std::vector<std::string> kGpt2 = {"model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
                                        "model.dropout=0.1", "train.micro_batch_size=3", "train.grad_accum_steps=2",
                                        "train.optimizer=sgd", "train.lr=0.05", "train.grad_clip=0.5",
                                        "train.eval_every=0", "data.val_fraction=0.01", "dist.bucket_mb=0.01"};

TEST(DataParallel, CommunicatorSumsInAFixedOrderAndEveryRankGetsTheSameBits) {
  ASSERT_GT(comm().size(), 1) << "run under mpirun -np 2 or more";
  const int64_t n = 1001;  // not a multiple of the ranks: chunks of different lengths
  std::vector<float> a(n), b(n);
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] = std::sin(0.1f * float(i) + float(comm().rank())) * 1e3f;
  comm().allreduce_sum(a.data(), n);
  comm().allreduce_sum(b.data(), n);
  EXPECT_EQ(a, b);  // the same order each time
  std::vector<float> all(n * comm().size());
  comm().allgather(a.data(), n * sizeof(float), all.data());
  for (int r = 0; r < comm().size(); ++r)
    EXPECT_TRUE(std::equal(a.begin(), a.end(), all.begin() + r * n)) << "rank " << r << " holds other bits";
  for (int64_t i = 0; i < n; ++i) {
    double want = 0;
    for (int r = 0; r < comm().size(); ++r) want += std::sin(0.1f * float(i) + float(r)) * 1e3f;
    ASSERT_NEAR(a[i], want, 1e-2) << i;  // float sums of terms up to 1e3
  }
  int64_t k[2] = {comm().rank(), 1};
  comm().allreduce_sum(k, 2);
  EXPECT_EQ(k[1], comm().size());
  EXPECT_EQ(k[0], comm().size() * (comm().size() - 1) / 2);
  char word[8] = {};
  if (comm().rank() == 0) std::snprintf(word, sizeof word, "rank0");
  comm().broadcast(word, sizeof word);
  EXPECT_STREQ(word, "rank0");
}

TEST(DataParallel, BucketsFollowTheBackwardOrder) {
  Pair p = language_pair(kGpt2);
  GradSync sync(comm(), {p.dist->optimizer->params()[0].param, p.dist->optimizer->params()[1].param}, 1);
  EXPECT_EQ(sync.buckets(), 2);  // each parameter is over one byte: a bucket each
  EXPECT_EQ(sync.bucket_of(1), 0);  // the last parameter is finished first
  EXPECT_EQ(sync.bucket_of(0), 1);
}

TEST(DataParallel, Gpt2GradientsAndSgdStepsEqualOneRankWithTheWholeBatch) {
  Pair p = language_pair(kGpt2);  // dropout on: masks keyed by the global sample index
  expect_same_gradients(p, "gpt2 text");
  expect_same_weights(p, 3, "gpt2 text");
}

// Checkpointed blocks finish their parameters' gradients inside their replay: the buckets must
// still leave only once those are complete.
TEST(DataParallel, CheckpointedBlocksGiveTheSameGradients) {
  for (const char* policy : {"full", "selective", "every:2"}) {
    std::vector<std::string> o = kGpt2;
    o.push_back(std::string("train.checkpointing=") + policy);
    Pair p = language_pair(o);
    expect_same_gradients(p, std::string("gpt2 checkpointing ") + policy);
  }
  Pair l = language_pair({"model.type=llama", "model.n_layer=2", "model.n_head=4", "model.n_kv_head=2",
                          "model.n_embd=32", "model.block_size=32", "model.tie_word_embeddings=1",
                          "train.checkpointing=selective", "train.micro_batch_size=2", "train.grad_accum_steps=2",
                          "train.eval_every=0", "data.val_fraction=0.01", "dist.bucket_mb=0.001"});
  expect_same_gradients(l, "llama tied embeddings, selective checkpointing");
}

TEST(DataParallel, TwoRunsGiveBitIdenticalWeights) {
  Pair a = language_pair(kGpt2), b = language_pair(kGpt2);
  for (int s = 0; s < 2; ++s) {
    a.dist->trainer->step();
    b.dist->trainer->step();
  }
  const auto& pa = a.dist->optimizer->params();
  const auto& pb = b.dist->optimizer->params();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(floats(pa[i].param), floats(pb[i].param)) << pa[i].name;
}

std::string instruct_file() {
  // Prompts and completions of very different lengths, so each rank's micro-batches hold very
  // different numbers of target tokens: only the one global normalisation gives the
  // large-batch gradient.
  const std::string path = shared_path("instruct_" + std::to_string(comm().rank()) + ".jsonl");
  std::ofstream out(path);
  for (int i = 0; i < 40; ++i) {
    const std::string prompt = "Q" + std::to_string(i) + ": " + std::string(1 + (i * 7) % 23, 'a' + i % 26);
    const std::string completion = std::string(1 + (i * 13) % 29, 'z' - i % 26);
    out << nlohmann::json{{"prompt", prompt}, {"completion", completion}}.dump() << "\n";
  }
  return path;
}

TEST(DataParallel, LlamaLoraOnInstructionDataEqualsOneRank) {
  Pair p = language_pair({"model.type=llama", "model.n_layer=2", "model.n_head=4", "model.n_kv_head=2",
                          "model.n_embd=32", "model.block_size=64", "lora.r=4", "lora.alpha=8", "lora.dropout=0.1",
                          "lora.target_modules=q_proj|v_proj", "train.micro_batch_size=2", "train.grad_accum_steps=3",
                          "train.optimizer=sgd", "train.lr=0.1", "train.eval_every=0", "data.format=instruct",
                          "data.val_fraction=0", "data.path=" + instruct_file(), "dist.bucket_mb=0.001"});
  expect_same_gradients(p, "llama lora instruct");
  expect_same_weights(p, 2, "llama lora instruct");
}

// The ResNet on a slice of Fashion-MNIST, in the BatchNorm mode given.
struct VisionPair {
  std::unique_ptr<VisionJob> dist, ref;
  SingleProcess one;
  std::unique_ptr<Trainer> ref_trainer;
};

VisionPair vision_pair(const std::string& bn) {
  VisionPair p;
  RunConfig cfg = load_run_config("", {"model.type=resnet", "model.width=0.25", "model.batchnorm=" + bn,
                                       "data.format=fashion-mnist", "data.path=/usr/share/datasets/fashion-mnist",
                                       "data.limit=96", "data.test_limit=8", "train.micro_batch_size=4",
                                       "train.grad_accum_steps=2", "train.optimizer=sgd", "train.lr=0.05",
                                       "train.steps=3", "dist.bucket_mb=0.05"});
  p.dist = make_vision_job(cfg);
  p.ref = make_vision_job(cfg);
  TrainerOptions o = make_trainer_options(cfg);
  o.grad_accum *= comm().size();
  o.sample_slots = 1;
  const ImageClassifier& model = *p.ref->model;
  LossFn loss = [&model](const Batch& b, const Context& ctx, int64_t* count) {
    return model.loss(b.tokens, b.targets, ctx, count);
  };
  p.ref_trainer = std::make_unique<Trainer>(loss, *p.ref->optimizer, *p.ref->loader, p.ref->schedule, o, p.one);
  p.ref_trainer->on_window_end([&model] { model.finish_window(); });
  return p;
}

void vision_check(const std::string& bn) {
  VisionPair p = vision_pair(bn);
  auto d = window_grads(*p.dist->trainer, *p.dist->optimizer);
  auto r = window_grads(*p.ref_trainer, *p.ref->optimizer);
  const auto& params = p.ref->optimizer->params();
  for (size_t i = 0; i < d.size(); ++i) expect_close(d[i], r[i], 1e-5, bn + " " + params[i].name);
  for (int s = 0; s < 2; ++s) {
    p.dist->trainer->step();
    p.ref_trainer->step();
  }
  // Weights and BatchNorm's running statistics (merged over the ranks' micro-batches).
  auto nd = p.dist->model->named_parameters(), nr = p.ref->model->named_parameters();
  ASSERT_EQ(nd.size(), nr.size());
  int running = 0;
  for (size_t i = 0; i < nd.size(); ++i) {
    if (nd[i].second.dtype() != DType::F32) continue;
    running += nd[i].first.find("running_") != std::string::npos;
    expect_close(floats(nd[i].second), floats(nr[i].second), 1e-5, bn + " " + nd[i].first);
  }
  if (bn == "micro") {
    EXPECT_GT(running, 0);
  }
}

TEST(DataParallel, ResnetMicroBatchNormMergesRunningStatisticsOverRanks) { vision_check("micro"); }
TEST(DataParallel, ResnetGroupNormEqualsOneRank) { vision_check("group"); }

}  // namespace
}  // namespace bb::test
