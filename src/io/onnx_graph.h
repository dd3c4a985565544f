// A small builder for ONNX inference graphs (f32 only): inputs, initializers, nodes with
// attributes, outputs, and an atomic write of the model file. The model is serialised by
// Debian's ONNX protobuf definitions (libonnx-dev) in the plugin libbigbatch_onnx.so, loaded
// on first save: see src/plugins/onnx_writer.cpp for why it is a plugin.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/onnx_spec.h"

namespace bb {

class OnnxGraph {
 public:
  explicit OnnxGraph(const std::string& name);

  // A graph input of f32; a dim of -1 is symbolic ("N").
  std::string input(const std::string& name, const std::vector<int64_t>& dims);
  void output(const std::string& name, const std::vector<int64_t>& dims);
  // A constant tensor (weights); returns its name.
  std::string constant(const std::string& name, const std::vector<float>& values, const std::vector<int64_t>& dims);
  std::string constant_i64(const std::string& name, const std::vector<int64_t>& values);
  // Adds a node; its single output is named `out` (a fresh name when empty) and returned.
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<std::pair<std::string, OnnxAttr>>& attrs = {}, std::string out = "");

  // Sets the model's doc string, then serialises it (IR version 7, opset kOnnxOpset) to
  // `path` atomically. Throws FormatError naming the path, or the plugin when it cannot load.
  void save(const std::string& path, const std::string& doc);

  const OnnxModelSpec& spec() const { return spec_; }

 private:
  OnnxModelSpec spec_;
  int64_t counter_ = 0;
};

// The opset the exported graphs declare.
inline constexpr int64_t kOnnxOpset = 13;

// Serialises a model through the plugin (loaded once). Throws FormatError when the plugin is
// missing or fails.
std::string serialize_onnx(const OnnxModelSpec& spec);

}  // namespace bb
