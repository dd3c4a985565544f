// The YAML run configuration named on the command line must be a regular file: a folder used
// to read as empty YAML (the defaults, silently) and a FIFO used to block forever.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "../io/error_words.h"
#include "train/config.h"

namespace bb::test {
namespace {

std::string temp_path(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("bb_config_file_" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

TEST(ConfigFile, FolderIsRefused) {
  const std::string dir = temp_path("folder.yaml");
  std::filesystem::create_directories(dir);
  expect_error_naming<Error>([&] { load_run_config(dir, {}); }, {dir, "regular file"});
}

TEST(ConfigFile, FifoIsRefusedWithoutBlocking) {
  const std::string fifo = temp_path("pipe.yaml");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_error_naming<Error>([&] { load_run_config(fifo, {}); }, {fifo, "regular file"});
}

TEST(ConfigFile, MissingFileIsNamed) {
  const std::string path = temp_path("absent.yaml");
  expect_error_naming<Error>([&] { load_run_config(path, {}); }, {path});
}

// Found by fuzz/fuzz_run_config: a complex key ("? ...") escaped as a YAML::Exception.
TEST(ConfigFile, ComplexKeyIsAConfigError) {
  for (const char* yaml : {"? ::::", "? [a, b]: 1\n", "model:\n  ? {x: 1}\n  : 2\n"}) {
    RunConfig cfg;
    expect_error_naming<ConfigError>([&] { apply_yaml(cfg, yaml, "job.yaml"); }, {"job.yaml"});
  }
}

}  // namespace
}  // namespace bb::test
