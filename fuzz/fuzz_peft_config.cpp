// PEFT's adapter_config.json, and its target_modules list matched against GPT-2's and
// Llama's module names. (A regular expression is only compiled: std::regex matching
// backtracks, so a pathological pattern is slow by design rather than a parser defect.)
#include "fuzz_common.h"
#include "io/peft.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bb::fuzz::run([&] {
    bb::LoraOptions o = bb::parse_peft_config(bb::fuzz::bytes(data, size), "adapter_config.json");
    if (o.r <= 0 || !(o.dropout >= 0 && o.dropout < 1)) __builtin_trap();  // must have been refused
    if (o.target_regex.empty())
      for (const char* name : {"transformer.h.0.attn.c_attn", "model.layers.1.self_attn.q_proj", "lm_head"})
        (void)bb::peft_targets_module(o, name);
  });
}
