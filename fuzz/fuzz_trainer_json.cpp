// trainer.json, the position record of a training checkpoint.
#include "fuzz_common.h"
#include "train/trainer_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bb::fuzz::run([&] {
    bb::CheckpointInfo info = bb::parse_trainer_record(bb::fuzz::bytes(data, size), "trainer.json");
    if (info.optimizer_steps < 0 || info.cursor < 0 || !(info.loss_scale > 0)) __builtin_trap();
  });
}
