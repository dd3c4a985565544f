// The run configuration: every float key refuses nan and inf by name, norm epsilons must be
// positive, a YAML file starts from the default job's values, and train.steps on the command
// line is not silently ignored under a file's train.epochs.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "train/config.h"

namespace bb::test {
namespace {

std::string config_error(const std::vector<std::string>& overrides) {
  try {
    load_run_config("", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string yaml_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, EveryFloatKeyRefusesNanAndInfByName) {
  int floats = 0;
  for (const ConfigKey& k : config_keys()) {
    if (k.type != "float") continue;
    ++floats;
    for (const char* bad : {"nan", "inf", "-inf", "NaN", "infinity", "1e400"}) {
      const std::string m = config_error({k.name + "=" + bad});
      EXPECT_NE(m.find("'" + k.name + "'"), std::string::npos) << k.name << "=" << bad << ": " << m;
      EXPECT_NE(m.find("finite"), std::string::npos) << m;
    }
  }
  EXPECT_GE(floats, 15);  // lr, weight_decay, momentum, lora.alpha, ... all went through the check
  // A float slot (model.dropout is float) must not turn a large double into inf.
  EXPECT_NE(config_error({"model.dropout=1e39"}).find("finite"), std::string::npos);
  // YAML's own spellings of nan and inf are not numbers at all.
  const std::string path = yaml_file("nan.yaml", "train:\n  lr: .nan\n");
  EXPECT_THROW(load_run_config(path, {}), ConfigError);
}

TEST(Config, NormEpsilonsAndLoraAlphaMustBePositive) {
  for (const char* v : {"0", "-1e-5"}) {
    EXPECT_NE(config_error({std::string("model.layer_norm_epsilon=") + v}).find("model.layer_norm_epsilon"),
              std::string::npos);
    EXPECT_NE(config_error({std::string("model.rms_norm_eps=") + v}).find("model.rms_norm_eps"), std::string::npos);
    EXPECT_NE(config_error({std::string("lora.alpha=") + v}).find("lora.alpha"), std::string::npos);
  }
  EXPECT_NE(config_error({"train.momentum=-0.5"}).find("train.momentum"), std::string::npos);
  RunConfig c = load_run_config("", {"model.layer_norm_epsilon=1e-6"});
  EXPECT_FLOAT_EQ(c.model.layer_norm_epsilon, 1e-6f);
}

TEST(Config, OneSetOfDefaults) {
  // The struct's defaults are the default job: applying the job's YAML changes nothing.
  RunConfig plain, job;
  apply_yaml(job, kDefaultConfigYaml, "the default job");
  EXPECT_EQ(to_yaml(plain), to_yaml(job));
  // A YAML file that sets one key gets the default job's values for every other one.
  RunConfig from_file = load_run_config(yaml_file("one_key.yaml", "train:\n  steps: 7\n"), {});
  RunConfig expected = load_run_config("", {"train.steps=7"});
  EXPECT_EQ(to_yaml(from_file), to_yaml(expected));
  EXPECT_EQ(from_file.model.vocab_size, 257);  // the byte tokenizer's vocabulary
}

TEST(Config, CommandLineStepsWinOverAFilesEpochs) {
  const std::string path = yaml_file("epochs.yaml", "model:\n  type: resnet\ntrain:\n  epochs: 15\n");
  EXPECT_EQ(load_run_config(path, {}).vision.epochs, 15);
  RunConfig c = load_run_config(path, {"train.steps=5"});
  EXPECT_EQ(c.vision.epochs, 0);
  EXPECT_EQ(c.train.steps, 5);
  // train.epochs on the command line wins too; naming both is refused by name.
  EXPECT_EQ(load_run_config(path, {"train.epochs=2"}).vision.epochs, 2);
  const std::string m = [&] {
    try {
      load_run_config(path, {"train.steps=5", "train.epochs=2"});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(m.find("train.steps and train.epochs"), std::string::npos) << m;
  EXPECT_EQ(load_run_config(path, {"train.steps=5", "train.epochs=0"}).train.steps, 5);
}

}  // namespace
}  // namespace bb::test
