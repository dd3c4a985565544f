// A small builder for ONNX inference graphs (f32 only): inputs, initializers, nodes with
// attributes, outputs, and an atomic write of the model file. It writes the protobuf wire
// format itself (field numbers of onnx.proto, as in Debian's libonnx-dev), because linking
// libprotobuf clashes with the protobuf-lite copy inside libsentencepiece.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace bb {

using OnnxAttr = std::variant<int64_t, float, std::vector<int64_t>>;

class OnnxGraph {
 public:
  explicit OnnxGraph(const std::string& name);
  ~OnnxGraph();
  OnnxGraph(const OnnxGraph&) = delete;
  OnnxGraph& operator=(const OnnxGraph&) = delete;

  // A graph input of f32; a dim of -1 is symbolic ("N").
  const std::string& input(const std::string& name, const std::vector<int64_t>& dims);
  void output(const std::string& name, const std::vector<int64_t>& dims);
  // A constant tensor (weights); returns its name.
  std::string constant(const std::string& name, const std::vector<float>& values, const std::vector<int64_t>& dims);
  std::string constant_i64(const std::string& name, const std::vector<int64_t>& values);
  // Adds a node; its single output is named `out` (a fresh name when empty) and returned.
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<std::pair<std::string, OnnxAttr>>& attrs = {}, std::string out = "");

  // Serialises the model (IR version and opset of the installed onnx) to `path` atomically.
  void save(const std::string& path, const std::string& doc) const;

 private:
  std::string name_;
  std::string graph_;  // GraphProto fields written so far
  int64_t counter_ = 0;
};

// The opset the exported graphs declare.
inline constexpr int64_t kOnnxOpset = 13;

}  // namespace bb
