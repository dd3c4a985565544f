// Helpers shared by the Hugging Face loaders (Llama, PEFT adapters): typed config.json
// fields that fail with the file and field named, and copying named weights into a model.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <string>

#include "io/safetensors.h"
#include "nn/module.h"
#include "ops/ops.h"

namespace bb {

// Parses a JSON file; FormatError naming it when it is not JSON.
nlohmann::json read_json_file(const std::string& path);
// Parses JSON text read from `path` (named in the error).
nlohmann::json parse_json_text(const std::string& text, const std::string& path);

// Typed reads of one JSON object's fields; a missing field without a fallback, or a value of
// the wrong type, is a FormatError naming `path` and the field.
struct JsonFields {
  const nlohmann::json& j;
  std::string path;
  int64_t integer(const char* key) const;
  int64_t integer(const char* key, int64_t fallback) const;
  // An integer, or the first of a list of them (Llama 3's eos_token_id lists every id that
  // ends a generation).
  int64_t first_integer(const char* key, int64_t fallback) const;
  double number(const char* key, double fallback) const;
  // A finite number that fits a float.
  float real(const char* key, float fallback) const;
  // An integer field in [1, limit]: model sizes beyond it are refused before anything is
  // allocated for them.
  int64_t size(const char* key, int64_t limit) const;
  int64_t size(const char* key, int64_t fallback, int64_t limit) const;
  bool boolean(const char* key, bool fallback) const;
  std::string string(const char* key) const;
  std::string string(const char* key, const std::string& fallback) const;
  // FormatError unless the field is absent, null or equal to `expected` (a setting whose
  // other values this implementation does not compute).
  void require_value(const char* key, const nlohmann::json& expected, const char* why) const;
};

// Limits on model sizes read from files, far above any model this engine can train, so
// that a corrupt config.json is one sentence rather than an allocation the machine cannot
// make.
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxWidth = int64_t(1) << 17;
inline constexpr int64_t kMaxVocab = int64_t(1) << 24;
inline constexpr int64_t kMaxPositions = int64_t(1) << 24;

// FormatError naming `source` and the tensor when `t` holds a NaN or an infinity.
void require_finite(const Tensor& t, const std::string& name, const std::string& source);


// Points every parameter of `model` at the tensor of `weights` whose name, passed through
// `rename`, equals the parameter's; the shapes must agree, the stored dtype must be a float
// type and every value finite. Tensors stored in another dtype
// are widened to f32 master weights, except the weights of Linear layers (not lm_head) when
// `linear_dtype` is not f32: those are kept in, or converted to, that dtype (a frozen LoRA
// base), so a bf16 file's tensors are used straight from the mapping; q8_0 / q4_0 quantize
// each tensor as it is read (ops quantize(), (out, in) blocks). Each tensor of `weights` is
// read when its parameter's turn comes and let go once converted, so a load holds one tensor
// of the file's at a time beside the model (a tensor the model has no place for is never read).
// The conversion of one tensor: to_base_dtype. Extra tensors in
// `weights` are ignored.
void load_named_weights(Module& model, LazyTensors weights, const std::string& source,
                        const std::function<std::string(const std::string&)>& rename,
                        DType linear_dtype = DType::F32);
void load_named_weights(Module& model, NamedTensors weights, const std::string& source,
                        const std::function<std::string(const std::string&)>& rename,
                        DType linear_dtype = DType::F32);

// `value` (a float weight of a Linear with `layout`) in a frozen base's `want` dtype: cast to
// bf16, or quantized into (out, in) blocks; ConfigError naming `source` and `name` when its
// inputs are not whole blocks.
Tensor to_base_dtype(const Tensor& value, DType want, WeightLayout layout, const std::string& source,
                     const std::string& name);

// The names of the weights apply_lora lowers, every Linear's weight but lm_head's, with the
// layer's layout (a q8_0 / q4_0 base is quantized along its inputs).
std::map<std::string, WeightLayout> lowerable_linear_weights(const Module& model);

}  // namespace bb
