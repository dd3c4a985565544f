// trainer.json from a checkpoint folder: every field is checked, and each bad one is one
// FormatError naming the file and the field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../io/error_words.h"
#include "train/trainer_record.h"

namespace bb::test {
namespace {

using nlohmann::json;

json good() {
  return {{"optimizer_steps", 12}, {"skipped_steps", 1}, {"cursor", 768},
          {"loss_scale", 65536.0}, {"clean_steps", 3},   {"config", "model:\n  n_layer: 2\n"}};
}

TEST(TrainerRecord, ReadsEveryField) {
  CheckpointInfo info = parse_trainer_record(good().dump(2), "ckpt/trainer.json");
  EXPECT_EQ(info.optimizer_steps, 12);
  EXPECT_EQ(info.skipped_steps, 1);
  EXPECT_EQ(info.cursor, 768);
  EXPECT_EQ(info.loss_scale, 65536.0f);
  EXPECT_EQ(info.clean_steps, 3);
  EXPECT_EQ(info.config_yaml, "model:\n  n_layer: 2\n");
}

TEST(TrainerRecord, BadFieldsAreNamed) {
  const std::vector<std::pair<std::string, json>> bad = {
      {"optimizer_steps", -1}, {"skipped_steps", -3},    {"cursor", -768},     {"clean_steps", -1},
      {"loss_scale", 0.0},     {"loss_scale", -2.0},     {"loss_scale", nullptr},  // a NaN is written as null
      {"loss_scale", 1e300},   {"optimizer_steps", "12"}, {"cursor", 1.5},     {"config", 7},
      {"cursor", 18446744073709551615ull},
  };
  for (const auto& [key, value] : bad) {
    json j = good();
    j[key] = value;
    expect_error_naming([&] { parse_trainer_record(j.dump(), "ckpt/trainer.json"); }, {"ckpt/trainer.json", key});
  }
  for (const char* key : {"optimizer_steps", "skipped_steps", "cursor", "loss_scale", "clean_steps"}) {
    json j = good();
    j.erase(key);
    expect_error_naming([&] { parse_trainer_record(j.dump(), "ckpt/trainer.json"); }, {"ckpt/trainer.json", key});
  }
  expect_error_naming([&] { parse_trainer_record("[1, 2]", "ckpt/trainer.json"); }, {"ckpt/trainer.json"});
  expect_error_naming([&] { parse_trainer_record("{\"optimizer_steps\": ", "ckpt/trainer.json"); },
                      {"ckpt/trainer.json", "JSON"});
}

}  // namespace
}  // namespace bb::test
