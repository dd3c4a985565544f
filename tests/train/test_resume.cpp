// Resume: a run interrupted after step n and resumed from its checkpoint ends with every
// weight bit-identical to a run never interrupted (dropout on, so the random streams must
// line up too).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "tiny_job.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"

namespace bb::test {
namespace {

TEST(Resume, InterruptedRunIsBitIdentical) {
  TokenWindows data(token_stream(4000, 8), 16, 5, "stream");
  const std::string dir = ::testing::TempDir() + "/bb_resume_ckpt";
  std::filesystem::remove_all(dir);

  TinyRun straight(data, 2, 3, 1.0f, Precision::kFP32, 0.1f);
  for (int s = 0; s < 6; ++s) straight.trainer.step();

  {
    TinyRun first(data, 2, 3, 1.0f, Precision::kFP32, 0.1f);
    for (int s = 0; s < 3; ++s) first.trainer.step();
    save_checkpoint(dir, first.model, first.opt, first.trainer, "cfg");
  }
  TinyRun resumed(data, 2, 3, 1.0f, Precision::kFP32, 0.1f);
  CheckpointInfo info = load_checkpoint(dir, resumed.model, resumed.opt, resumed.trainer);
  EXPECT_EQ(info.optimizer_steps, 3);
  EXPECT_EQ(resumed.trainer.samples_done(), 18);
  for (int s = 0; s < 3; ++s) resumed.trainer.step();

  auto a = straight.model.named_parameters(), b = resumed.model.named_parameters();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()), 0) << a[i].first;
}

TEST(Resume, MissingCheckpointNamesTheFolder) {
  TokenWindows data(token_stream(2000, 9), 16, 5, "stream");
  TinyRun run(data, 2, 1);
  try {
    load_checkpoint("/nonexistent/ckpt", run.model, run.opt, run.trainer);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ckpt"), std::string::npos);
  }
}

// A NaN written over the first value of a checkpoint file's first tensor, in place: the file
// keeps its size, so the manifest still calls the checkpoint complete. Returns that tensor.
std::string poison_first_tensor(const std::string& file) {
  std::string name;
  size_t offset = 0;
  {
    SafetensorsFile f(file);
    name = f.names().front();
    std::ifstream in(file, std::ios::binary);
    uint64_t header = 0;
    in.read(reinterpret_cast<char*>(&header), 8);
    offset = 8 + header + f.entry(name).begin;
  }
  std::fstream io(file, std::ios::binary | std::ios::in | std::ios::out);
  io.seekp(static_cast<std::streamoff>(offset));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  io.write(reinterpret_cast<const char*>(&nan), sizeof nan);
  return name;
}

TEST(Resume, NanInACheckpointIsRefusedNamingFileAndTensor) {
  TokenWindows data(token_stream(2000, 9), 16, 5, "stream");
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    const std::string dir = ::testing::TempDir() + "/bb_resume_nan_" + file;
    std::filesystem::remove_all(dir);
    {
      TinyRun run(data, 2, 1);
      run.trainer.step();
      save_checkpoint(dir, run.model, run.opt, run.trainer, "cfg");
    }
    const std::string tensor = poison_first_tensor(dir + "/" + file);
    TinyRun resumed(data, 2, 1);
    try {
      load_checkpoint(dir, resumed.model, resumed.opt, resumed.trainer);
      ADD_FAILURE() << file << ": loaded";
    } catch (const FormatError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(dir + "/" + file), std::string::npos) << what;
      EXPECT_NE(what.find("'" + tensor + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("NaN or infinite"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace bb::test
