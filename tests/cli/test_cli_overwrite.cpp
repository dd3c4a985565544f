// Nothing the user made is replaced without a word: a second `train` into a run folder, a
// `merge` or `export` onto its own sources or onto an existing model or file are refused with
// one sentence (--overwrite replaces on purpose), an unwritable out_dir is refused before the
// first step, and a LoRA run without model.init leaves the base it trained on.
#include "../sanitized.h"
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace bb::test {
namespace {
namespace fs = std::filesystem;

std::string corpus() {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "sphinx of black quartz judge my vow " + std::to_string(i % 7) + "\n";
  return write_file("overwrite_corpus.txt", text);
}

std::string tiny(const std::string& out) {
  return "train model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=16 train.micro_batch_size=2 "
         "train.grad_accum_steps=1 train.steps=3 train.checkpoint_every=0 train.eval_every=0 sample.max_new_tokens=0 "
         "data.path=" + corpus() + " out_dir=" + out;
}

void expect_refused(const CliResult& r, std::initializer_list<const char*> words) {
  EXPECT_EQ(r.code, 1) << r.output;
  for (const char* w : words) EXPECT_NE(r.output.find(w), std::string::npos) << w << " not in: " << r.output;
}

TEST(CliOverwrite, SecondRunIntoARunFolderIsRefusedUnlessOverwrite) {
  const std::string out = ::testing::TempDir() + "/bb_overwrite_run";
  fs::remove_all(out);
  ASSERT_EQ(run_cli(tiny(out)).code, 0);
  const std::string metrics = read_file(out + "/metrics.jsonl"), weights = read_file(out + "/model.safetensors");
  ASSERT_FALSE(metrics.empty());
  CliResult again = run_cli(tiny(out) + " train.lr=1e-2");
  expect_refused(again, {"already holds a run", "--resume", "--overwrite", out.c_str()});
  EXPECT_EQ(again.output.find("step "), std::string::npos) << "refused only after training: " << again.output;
  EXPECT_EQ(read_file(out + "/metrics.jsonl"), metrics);
  EXPECT_EQ(read_file(out + "/model.safetensors"), weights);
  EXPECT_TRUE(fs::exists(out + "/checkpoint/manifest.json"));
  expect_refused(run_cli(tiny(out) + " --resume --overwrite"), {"--resume and --overwrite"});

  CliResult replaced = run_cli(tiny(out) + " train.lr=1e-2 --overwrite");
  ASSERT_EQ(replaced.code, 0) << replaced.output;
  EXPECT_NE(read_file(out + "/model.safetensors"), weights);
}

TEST(CliOverwrite, UnwritableOutDirIsRefusedBeforeTheFirstStep) {
  // root writes through permissions, so there the folder is /proc, which no one can write in.
  std::string out = "/proc";
  if (geteuid() != 0) {
    out = ::testing::TempDir() + "/bb_overwrite_readonly";
    fs::create_directories(out);
    chmod(out.c_str(), 0500);
  }
  CliResult r = run_cli(tiny(out));
  expect_refused(r, {"out_dir", "not writable", out.c_str()});
  EXPECT_EQ(r.output.find("step "), std::string::npos) << r.output;
  const std::string under_file = write_file("bb_overwrite_a_file", "x") + "/run";
  expect_refused(run_cli(tiny(under_file)), {"cannot create out_dir", under_file.c_str()});
}

TEST(CliOverwrite, OutDirThatIsTheModelInitFolderIsRefused) {
  const std::string base = ::testing::TempDir() + "/bb_overwrite_init";
  fs::remove_all(base);
  ASSERT_EQ(run_cli(tiny(base)).code, 0);
  const std::string weights = read_file(base + "/model.safetensors");
  expect_refused(run_cli(tiny(base + "/.") + " model.init=" + base + " lora.r=2 --overwrite"),
                 {"model.init", "would replace it"});
  EXPECT_EQ(read_file(base + "/model.safetensors"), weights);
}

struct LoraFixture {
  std::string base = ::testing::TempDir() + "/bb_overwrite_base", adapter = ::testing::TempDir() + "/bb_overwrite_lora";
  LoraFixture() {
    fs::remove_all(base);
    fs::remove_all(adapter);
    EXPECT_EQ(run_cli(tiny(base)).code, 0);
    CliResult r = run_cli(tiny(adapter) + " model.init=" + base + " lora.r=2 lora.target_modules=c_attn");
    EXPECT_EQ(r.code, 0) << r.output;
  }
};

TEST(CliOverwrite, MergeNeverWritesOverItsSources) {
  LoraFixture f;
  const std::string weights = read_file(f.base + "/model.safetensors"), config = read_file(f.base + "/config.json");
  const std::string other_path = f.base + "/../" + fs::path(f.base).filename().string();
  expect_refused(run_cli("merge --base " + f.base + " --adapter " + f.adapter + " --out " + other_path + " --overwrite"),
                 {"--out", "--base"});
  expect_refused(run_cli("merge --base " + f.base + " --adapter " + f.adapter + " --out " + f.adapter + "/"),
                 {"--out", "--adapter"});
  EXPECT_EQ(read_file(f.base + "/model.safetensors"), weights);
  EXPECT_EQ(read_file(f.base + "/config.json"), config);
  EXPECT_TRUE(fs::exists(f.adapter + "/adapter_model.safetensors"));

  const std::string merged = ::testing::TempDir() + "/bb_overwrite_merged";
  fs::remove_all(merged);
  const std::string merge = "merge --base " + f.base + " --adapter " + f.adapter + " --out " + merged;
  ASSERT_EQ(run_cli(merge).code, 0);
  expect_refused(run_cli(merge), {"already holds a model", "--overwrite"});
  EXPECT_EQ(run_cli(merge + " --overwrite").code, 0);
}

TEST(CliOverwrite, ExportNeverWritesOverTheModelAndAnExistingFileOnlyWithOverwrite) {
  const char* fashion = "/usr/share/datasets/fashion-mnist";
  ASSERT_TRUE(fs::exists(std::string(fashion) + "/train-images-idx3-ubyte.gz")) << "run scripts/setup.sh";
  const std::string model = ::testing::TempDir() + "/bb_overwrite_cnn";
  fs::remove_all(model);
  CliResult t = run_cli(std::string("train model.type=resnet model.width=0.25 data.format=fashion-mnist data.path=") +
                        fashion + " data.limit=16 data.test_limit=8 train.micro_batch_size=8 train.epochs=1 "
                        "train.checkpoint_every=0 out_dir=" + model);
  ASSERT_EQ(t.code, 0) << t.output;
  const std::string weights = read_file(model + "/model.safetensors");
  expect_refused(run_cli("export --model " + model + " --out " + model + "/model.safetensors --overwrite"),
                 {"model.safetensors", "model's own"});
  expect_refused(run_cli("export --model " + model + " --out " + model + "/../bb_overwrite_cnn/config.json"),
                 {"config.json", "model's own"});
  EXPECT_EQ(read_file(model + "/model.safetensors"), weights);
  BB_SKIP_IF_SANITIZED(kNoOnnxUnderAsan);  // the refusals above run before the writer loads
  ASSERT_EQ(run_cli("export --model " + model).code, 0);
  expect_refused(run_cli("export --model " + model), {"model.onnx", "already exists", "--overwrite"});
  const std::string other = write_file("bb_overwrite_notes.onnx", "my notes");
  expect_refused(run_cli("export --model " + model + " --out " + other), {"already exists", "--overwrite"});
  EXPECT_EQ(read_file(other), "my notes");
  EXPECT_EQ(run_cli("export --model " + model + " --out " + other + " --overwrite").code, 0);
  EXPECT_NE(read_file(other), "my notes");
}

TEST(CliOverwrite, LoraWithoutModelInitSavesItsBaseBesideTheAdapter) {
  const std::string out = ::testing::TempDir() + "/bb_overwrite_lora_scratch";
  fs::remove_all(out);
  CliResult r = run_cli(tiny(out) + " lora.r=2 lora.target_modules=c_attn");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("random base model"), std::string::npos) << r.output;
  ASSERT_TRUE(fs::exists(out + "/base/config.json"));
  ASSERT_TRUE(fs::exists(out + "/base/model.safetensors"));
  auto cfg = nlohmann::json::parse(read_file(out + "/adapter_config.json"));
  EXPECT_TRUE(fs::equivalent(cfg["base_model_name_or_path"].get<std::string>(), out + "/base"));
  CliResult ev = run_cli("eval --model " + out + "/base --adapter " + out + " --data " + corpus() +
                         " --batches 1 --micro-batch 2");
  EXPECT_EQ(ev.code, 0) << ev.output;
  CliResult gen = run_cli("generate --model " + out + "/base --adapter " + out + " --prompt 'sphinx' --max-new-tokens 4");
  EXPECT_EQ(gen.code, 0) << gen.output;
}

}  // namespace
}  // namespace bb::test
