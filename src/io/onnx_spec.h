// An ONNX inference model as plain data: what OnnxGraph collects and the ONNX writer plugin
// (src/plugins/onnx_writer.cpp) turns into an onnx::ModelProto. Only what bigbatch's graphs
// use: f32 values with an optional symbolic batch dim, f32 and i64 initializers, nodes with
// int, float and ints attributes.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace bb {

using OnnxAttr = std::variant<int64_t, float, std::vector<int64_t>>;

struct OnnxValue {  // a graph input or output of f32; a dim < 0 is the symbolic batch "N"
  std::string name;
  std::vector<int64_t> dims;
};

struct OnnxInitializer {
  std::string name;
  std::vector<int64_t> dims;
  bool int64 = false;  // element type: int64, else float
  std::string raw;     // little-endian elements, as TensorProto.raw_data
};

struct OnnxNode {
  std::string op, name, output;
  std::vector<std::string> inputs;
  std::vector<std::pair<std::string, OnnxAttr>> attrs;
};

struct OnnxModelSpec {
  std::string graph_name, doc;
  int64_t ir_version = 7, opset = 13;
  std::vector<OnnxValue> inputs, outputs;
  std::vector<OnnxInitializer> initializers;
  std::vector<OnnxNode> nodes;
};

// The writer plugin's entry point: serialises `spec` into `bytes`; returns 0, or non-zero
// with a sentence in `error`.
using OnnxSerializeFn = int (*)(const OnnxModelSpec* spec, std::string* bytes, std::string* error);
inline constexpr const char* kOnnxSerializeSymbol = "bb_onnx_serialize";

}  // namespace bb
