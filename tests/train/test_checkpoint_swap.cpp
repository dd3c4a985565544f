// What a kill can leave of a checkpoint write, and what resume makes of it: a folder without
// its manifest (or with a file of another size) is not a checkpoint, "<dir>.tmp" never is and
// is removed by the next save, and "<dir>.old" (a swap on a filesystem without
// RENAME_EXCHANGE) is found when it is the newest complete one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tiny_job.h"
#include "core/error.h"
#include "train/checkpoint.h"

namespace bb::test {
namespace {
namespace fs = std::filesystem;

struct Saved {
  std::string dir;
  Saved(const std::string& name, int steps) : dir(::testing::TempDir() + "/" + name) {
    fs::remove_all(dir);
    fs::remove_all(dir + ".tmp");
    fs::remove_all(dir + ".old");
    TokenWindows data(token_stream(2000, 3), 16, 5, "stream");
    TinyRun run(data, 2, 1);
    for (int s = 0; s < steps; ++s) run.trainer.step();
    save_checkpoint(dir, run.model, run.opt, run.trainer, "cfg");
  }
};

TEST(CheckpointSwap, SaveLeavesOneCompleteFolderAndNoTemporary) {
  Saved s("bb_swap_plain", 2);
  EXPECT_EQ(complete_checkpoint_steps(s.dir), 2);
  EXPECT_EQ(find_checkpoint(s.dir), s.dir);
  EXPECT_FALSE(fs::exists(s.dir + ".tmp"));
  EXPECT_FALSE(fs::exists(s.dir + ".old"));
}

TEST(CheckpointSwap, FolderWithoutManifestOrWithAShortFileIsNotACheckpoint) {
  Saved s("bb_swap_incomplete", 1);
  fs::resize_file(s.dir + "/optimizer.safetensors", fs::file_size(s.dir + "/optimizer.safetensors") - 1);
  EXPECT_LT(complete_checkpoint_steps(s.dir), 0);
  EXPECT_EQ(find_checkpoint(s.dir), "");
  fs::remove(s.dir + "/manifest.json");
  EXPECT_FALSE(checkpoint_exists(s.dir));
  TokenWindows data(token_stream(2000, 3), 16, 5, "stream");
  TinyRun run(data, 2, 1);
  try {
    load_checkpoint(s.dir, run.model, run.opt, run.trainer);
    FAIL() << "an incomplete checkpoint loaded";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("manifest.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(s.dir), std::string::npos) << e.what();
  }
}

TEST(CheckpointSwap, TemporaryFolderIsNeverReadAndTheNextSaveRemovesIt) {
  Saved newer("bb_swap_tmp_newer", 3);
  Saved s("bb_swap_tmp", 1);
  fs::copy(newer.dir, s.dir + ".tmp", fs::copy_options::recursive);  // complete and newer, but a write that never swapped in
  std::ofstream(s.dir + ".tmp/junk") << "half a file";
  EXPECT_EQ(find_checkpoint(s.dir), s.dir);
  EXPECT_EQ(complete_checkpoint_steps(find_checkpoint(s.dir)), 1);
  TokenWindows data(token_stream(2000, 3), 16, 5, "stream");
  TinyRun run(data, 2, 1);
  run.trainer.step();
  run.trainer.step();
  save_checkpoint(s.dir, run.model, run.opt, run.trainer, "cfg");
  EXPECT_FALSE(fs::exists(s.dir + ".tmp"));
  EXPECT_EQ(complete_checkpoint_steps(s.dir), 2);
}

TEST(CheckpointSwap, OldFolderOfAnInterruptedFallbackSwapIsFound) {
  Saved s("bb_swap_old", 2);
  fs::rename(s.dir, s.dir + ".old");  // killed between the two renames of the fallback
  EXPECT_EQ(find_checkpoint(s.dir), s.dir + ".old");
  Saved older("bb_swap_old_older", 1);
  fs::copy(older.dir, s.dir, fs::copy_options::recursive);  // both present: the newer wins, whatever its name
  EXPECT_EQ(find_checkpoint(s.dir), s.dir + ".old");
  TokenWindows data(token_stream(2000, 3), 16, 5, "stream");
  TinyRun run(data, 2, 1);
  for (int i = 0; i < 3; ++i) run.trainer.step();
  save_checkpoint(s.dir, run.model, run.opt, run.trainer, "cfg");
  EXPECT_EQ(find_checkpoint(s.dir), s.dir);  // and a save supersedes the old one
  EXPECT_FALSE(fs::exists(s.dir + ".old"));
}

}  // namespace
}  // namespace bb::test
