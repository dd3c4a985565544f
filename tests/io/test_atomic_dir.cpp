// Model folders written with write_model_folder: a save that fails midway leaves the old
// config and weights as they were, files of the old set the new one lacks go, files that are
// not a model's stay, and a staging folder left by a killed save is cleaned up.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "../cli/run_cli.h"
#include "io/atomic_dir.h"

namespace bb::test {
namespace {
namespace fs = std::filesystem;

std::string folder(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void put(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(AtomicDir, FailedSaveLeavesTheOldPairUntouched) {
  const std::string dir = folder("bb_atomic_fail");
  put(dir + "/config.json", "old config");
  put(dir + "/model.safetensors", "old weights");
  EXPECT_THROW(write_model_folder(dir, [](const std::string& staging) {
                 put(staging + "/config.json", "new config");
                 throw std::runtime_error("disk full while writing the weights");
               }),
               std::runtime_error);
  EXPECT_EQ(read_file(dir + "/config.json"), "old config");
  EXPECT_EQ(read_file(dir + "/model.safetensors"), "old weights");
}

TEST(AtomicDir, NewSetReplacesTheOldOneAndOnlyIt) {
  const std::string dir = folder("bb_atomic_replace");
  for (const char* f : {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                        "model-00002-of-00002.safetensors", "vocab.json", "merges.txt"})
    put(dir + "/" + f, "old");
  put(dir + "/notes.txt", "mine");
  put(dir + "/metrics.jsonl", "{}\n");
  fs::create_directories(dir + "/.model.tmp");
  put(dir + "/.model.tmp/model.safetensors", "left by a killed save");
  write_model_folder(dir, [](const std::string& staging) {
    EXPECT_FALSE(fs::exists(staging + "/model.safetensors"));  // the stale staging is gone
    put(staging + "/config.json", "new config");
    put(staging + "/model.safetensors", "new weights");
  });
  EXPECT_EQ(model_folder_files(dir), (std::vector<std::string>{"config.json", "model.safetensors"}));
  EXPECT_EQ(read_file(dir + "/config.json"), "new config");
  EXPECT_EQ(read_file(dir + "/model.safetensors"), "new weights");
  EXPECT_EQ(read_file(dir + "/notes.txt"), "mine");
  EXPECT_TRUE(fs::exists(dir + "/metrics.jsonl"));
  EXPECT_FALSE(fs::exists(dir + "/.model.tmp"));
}

TEST(AtomicDir, ReplaceDirSwapsInTheCompleteFolder) {
  const std::string root = folder("bb_atomic_swap");
  fs::create_directories(root + "/ckpt.tmp");
  put(root + "/ckpt.tmp/a", "first");
  replace_dir_atomic(root + "/ckpt.tmp", root + "/ckpt");  // nothing to replace yet
  EXPECT_EQ(read_file(root + "/ckpt/a"), "first");
  fs::create_directories(root + "/ckpt.tmp");
  put(root + "/ckpt.tmp/b", "second");
  replace_dir_atomic(root + "/ckpt.tmp", root + "/ckpt");
  EXPECT_EQ(read_file(root + "/ckpt/b"), "second");
  EXPECT_FALSE(fs::exists(root + "/ckpt/a"));
  EXPECT_FALSE(fs::exists(root + "/ckpt.tmp"));
  EXPECT_FALSE(fs::exists(root + "/ckpt.old"));
}

}  // namespace
}  // namespace bb::test
