// Generation throughput through the key/value cache: prefill tokens/s (the prompt in one
// forward) and decode tokens/s (one token a forward, greedy), for GPT-2 124M or a Llama at
// TinyLlama-1.1B shapes, with fp32 or bf16 weights (bf16: every Linear weight and the head
// held in bf16, compute in bf16). Decode is bound by memory: each token reads every weight
// and the filled cache once, so the share of the bandwidth limit is (those bytes per token x
// tokens/s) over the bandwidth of a large elementwise kernel measured in the same process.
// Weights are random (no download): speed does not depend on their values.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "core/grad_mode.h"
#include "core/process_memory.h"
#include "models/gpt2.h"
#include "models/kv_cache.h"
#include "models/llama.h"
#include "nn/layers.h"
#include "ops/ops.h"

using namespace bb;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Bytes per second read by a sum of squares over 512 MiB: a read-only stream, as decode's
// reads of weights and cache are (a kernel that also writes pays write-allocate traffic).
double bandwidth_bytes_per_s() {
  const int64_t n = 128ll << 20;
  Tensor a = Tensor::full(Shape{n}, 1.0f), out = Tensor::empty(Shape{1});
  Backend& k = backend_for(Device::CPU);
  k.sum_squares(a, out);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) best = std::min(best, bench::seconds_of([&] { k.sum_squares(a, out); }));
  return double(n) * 4.0 / best;
}

// Every Linear weight in `dtype`, as a bf16 base does (nn/lora.cpp's lowering).
void lower_linears(CausalLM& model, DType dtype) {
  for (auto& [path, m] : model.named_modules()) {
    auto lin = std::dynamic_pointer_cast<Linear>(m);
    if (!lin) continue;
    model.set_parameter(path + ".weight", cast(lin->weight(), dtype));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"generation benchmark (prefill and decode through the key/value cache)"};
  std::string arch = "gpt2", weights = "fp32";
  int64_t prompt = 128, new_tokens = 64;
  app.add_option("--model", arch, "gpt2 (124M) or llama (TinyLlama-1.1B shapes)");
  app.add_option("--weights", weights, "fp32 or bf16");
  app.add_option("--prompt", prompt, "prompt tokens");
  app.add_option("--new", new_tokens, "tokens decoded");
  bool profile = false;
  app.add_flag("--profile", profile, "print the time by op of the last decode to stderr (per token)");
  CLI11_PARSE(app, argc, argv);
  if (weights != "fp32" && weights != "bf16") {
    fmt::print(stderr, "--weights must be fp32 or bf16, got {}\n", weights);
    return 1;
  }
  const DType dt = weights == "bf16" ? DType::BF16 : DType::F32;
  NoGradGuard no_grad;

  std::unique_ptr<CausalLM> model;
  int64_t layers = 0, kv_width = 0;  // kv_width: Hkv * D, a cached position's values per layer
  if (arch == "gpt2") {
    auto m = std::make_unique<GPT2>(GPT2Config{.n_layer = 12, .n_head = 12, .n_embd = 768, .block_size = 1024,
                                               .vocab_size = 50257}, 0);
    layers = 12;
    kv_width = 768;
    model = std::move(m);
  } else if (arch == "llama") {
    auto m = std::make_unique<Llama>(LlamaConfig{.hidden_size = 2048, .intermediate_size = 5632, .num_hidden_layers = 22,
                                                 .num_attention_heads = 32, .num_key_value_heads = 4,
                                                 .vocab_size = 32000, .max_position_embeddings = 2048}, 0);
    layers = 22;
    kv_width = 4 * 64;
    model = std::move(m);
  } else {
    fmt::print(stderr, "--model must be gpt2 or llama, got {}\n", arch);
    return 1;
  }
  if (prompt < 1 || new_tokens < 1 || prompt + new_tokens > model->max_positions()) {
    fmt::print(stderr, "--prompt and --new must be at least 1 and together within the model's {} positions\n",
               model->max_positions());
    return 1;
  }
  // The head's weight: GPT-2's tied token embedding, Llama's lm_head; held once in dt.
  Tensor head;
  for (auto& [name, p] : model->named_parameters())
    if (name == (arch == "gpt2" ? "wte.weight" : "lm_head.weight")) head = cast(p, dt);
  if (dt != DType::F32) lower_linears(*model, dt);
  double weight_bytes = double(head.nbytes());
  for (auto& [name, p] : model->named_parameters())
    if (p.ndim() == 2 && name.find("wte") == std::string::npos && name.find("wpe") == std::string::npos &&
        name.find("embed_tokens") == std::string::npos && name.find("lm_head") == std::string::npos)
      weight_bytes += double(p.nbytes());

  const Context ctx{.compute = dt};
  auto forward = [&](const std::vector<int64_t>& ids, KVCache& cache) {
    Tensor t = Tensor::from_ints(Shape{1, int64_t(ids.size())}, ids);
    Tensor h = arch == "gpt2" ? static_cast<GPT2&>(*model).hidden(t, ctx, &cache)
                              : static_cast<Llama&>(*model).hidden(t, ctx, cache.length(), &cache);
    Tensor last = slice(h, 1, h.dim(1) - 1, 1);
    return matmul(cast(last, dt), head, false, true);  // (1, 1, V)
  };
  auto argmax = [](const Tensor& logits) {
    const std::vector<float> v = logits.to_floats();
    return int64_t(std::max_element(v.begin(), v.end()) - v.begin());
  };
  std::vector<int64_t> ids(static_cast<size_t>(prompt));
  for (int64_t i = 0; i < prompt; ++i) ids[size_t(i)] = (i * 7919 + 13) % model->vocab_size();

  std::vector<double> prefill_s, decode_s;
  for (int rep = 0; rep < 3; ++rep) {  // the first is a warm-up of kernels and pages
    KVCache cache(model->max_positions());
    double t0 = now_s();
    int64_t next = argmax(forward(ids, cache));
    const double t1 = now_s();
    if (profile && rep == 2) start_profile();
    for (int64_t i = 0; i < new_tokens; ++i) next = argmax(forward({next}, cache));
    const double t2 = now_s();
    if (profile && rep == 2) std::fputs(format_profile(stop_profile(), new_tokens).c_str(), stderr);
    if (rep == 0) continue;
    prefill_s.push_back(t1 - t0);
    decode_s.push_back(t2 - t1);
  }
  const double prefill = *std::min_element(prefill_s.begin(), prefill_s.end());
  const double decode = *std::min_element(decode_s.begin(), decode_s.end());
  const double decode_tok_s = double(new_tokens) / decode;
  // Bytes a decoded token reads: the weights, and keys and values of the positions so far
  // (on average the prompt plus half the new tokens).
  const double cache_bytes = 2.0 * double(layers) * double(kv_width) * double(dtype_size(dt)) *
                             (double(prompt) + double(new_tokens) / 2.0);
  const double bandwidth = bandwidth_bytes_per_s();
  nlohmann::json out = {{"model", arch}, {"weights", weights}, {"prompt", prompt}, {"new_tokens", new_tokens},
                        {"prefill_tok_s", double(prompt) / prefill}, {"decode_tok_s", decode_tok_s},
                        {"decode_ms_per_token", 1e3 * decode / double(new_tokens)},
                        {"bytes_per_token_MiB", (weight_bytes + cache_bytes) / 1048576.0},
                        {"bandwidth_GBs", bandwidth / 1e9},
                        {"bandwidth_share", decode_tok_s * (weight_bytes + cache_bytes) / bandwidth},
                        {"peak_rss_MiB", peak_rss_bytes() / 1048576.0}};
  fmt::print("{}\n", out.dump());
  return 0;
}
