// Bad input through the command line: one clear sentence naming the file or key, exit
// code 1, never a crash.
#include <gtest/gtest.h>

#include "run_cli.h"

namespace bb::test {
namespace {

void expect_error(const CliResult& r, const std::string& must_name) {
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("bigbatch: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(must_name), std::string::npos) << r.output;
}

TEST(CliErrors, MalformedYamlNamesTheFile) {
  std::string path = write_file("bad.yaml", "model:\n  n_layer: [1, 2\n");
  expect_error(run_cli("train " + path), path);
}

TEST(CliErrors, UnknownKeyIsNamed) {
  expect_error(run_cli("train train.lrr=0.1"), "train.lrr");
  std::string path = write_file("unknown.yaml", "train:\n  stepz: 3\n");
  expect_error(run_cli("train " + path), "train.stepz");
}

TEST(CliErrors, WrongTypeNamesKeyAndValue) {
  CliResult r = run_cli("train train.lr=fast");
  expect_error(r, "train.lr");
  EXPECT_NE(r.output.find("fast"), std::string::npos);
  expect_error(run_cli("train train.micro_batch_size=2.5"), "train.micro_batch_size");
}

TEST(CliErrors, OutOfRangeValueIsNamed) {
  expect_error(run_cli("train train.micro_batch_size=0"), "train.micro_batch_size");
  expect_error(run_cli("train model.n_embd=30 model.n_head=4"), "model.n_embd");
  expect_error(run_cli("train train.precision=fp8"), "train.precision");
  expect_error(run_cli("train lora.r=4 lora.base_dtype=q5_1"), "lora.base_dtype 'q5_1' is not known");
  // A base dtype without LoRA would be ignored: it is refused instead.
  expect_error(run_cli("train lora.base_dtype=q8_0"), "lora.base_dtype q8_0 is the frozen base of a LoRA run");
}

TEST(CliErrors, DataTooShortForOneWindowNamesTheFile) {
  std::string path = write_file("short.txt", "only a few bytes\n");
  expect_error(run_cli("train data.path=" + path + " data.val_fraction=0"), path);
}

TEST(CliErrors, MissingDataPathIsNamed) {
  expect_error(run_cli("train data.path=/nonexistent/corpus.txt"), "/nonexistent/corpus.txt");
}

TEST(CliErrors, MissingModelFolderIsNamed) {
  expect_error(run_cli("generate --model /nonexistent/model --prompt hi"), "/nonexistent/model");
}

}  // namespace
}  // namespace bb::test
