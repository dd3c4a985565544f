// OnnxGraph: the protobuf wire format (varints and length-delimited fields) for the few
// ONNX messages an inference graph needs. Field numbers are onnx.proto's (ONNX 1.12).
#include "io/onnx_graph.h"

#include <fmt/format.h>

#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"

namespace bb {
namespace {

// onnx.proto enums.
constexpr int64_t kFloat = 1, kInt64 = 7;                           // TensorProto.DataType
constexpr int64_t kAttrFloat = 1, kAttrInt = 2, kAttrInts = 7;      // AttributeProto.AttributeType

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void field_varint(std::string& out, int field, int64_t v) {
  varint(out, static_cast<uint64_t>(field) << 3 | 0);
  varint(out, static_cast<uint64_t>(v));
}
void field_bytes(std::string& out, int field, const std::string& bytes) {
  varint(out, static_cast<uint64_t>(field) << 3 | 2);
  varint(out, bytes.size());
  out += bytes;
}
void field_float(std::string& out, int field, float f) {
  varint(out, static_cast<uint64_t>(field) << 3 | 5);
  char b[4];
  std::memcpy(b, &f, 4);  // little-endian hosts, as ONNX wants
  out.append(b, 4);
}

// ValueInfoProto of an f32 tensor; a dim < 0 is the symbolic batch "N".
std::string value_info(const std::string& name, const std::vector<int64_t>& dims) {
  std::string shape;
  for (int64_t d : dims) {
    std::string dim;
    if (d < 0) field_bytes(dim, 2, "N");      // dim_param
    else field_varint(dim, 1, d);             // dim_value
    field_bytes(shape, 1, dim);               // TensorShapeProto.dim
  }
  std::string tensor;
  field_varint(tensor, 1, kFloat);            // elem_type
  field_bytes(tensor, 2, shape);              // shape
  std::string type;
  field_bytes(type, 1, tensor);               // TypeProto.tensor_type
  std::string v;
  field_bytes(v, 1, name);
  field_bytes(v, 2, type);
  return v;
}

}  // namespace

OnnxGraph::OnnxGraph(const std::string& name) : name_(name) {}
OnnxGraph::~OnnxGraph() = default;

const std::string& OnnxGraph::input(const std::string& name, const std::vector<int64_t>& dims) {
  field_bytes(graph_, 11, value_info(name, dims));  // GraphProto.input
  return name;
}

void OnnxGraph::output(const std::string& name, const std::vector<int64_t>& dims) {
  field_bytes(graph_, 12, value_info(name, dims));  // GraphProto.output
}

std::string OnnxGraph::constant(const std::string& name, const std::vector<float>& values,
                                const std::vector<int64_t>& dims) {
  std::string t;
  for (int64_t d : dims) field_varint(t, 1, d);      // dims
  field_varint(t, 2, kFloat);                        // data_type
  field_bytes(t, 8, name);                           // name
  field_bytes(t, 9, std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  field_bytes(graph_, 5, t);                         // GraphProto.initializer
  return name;
}

std::string OnnxGraph::constant_i64(const std::string& name, const std::vector<int64_t>& values) {
  std::string t;
  field_varint(t, 1, static_cast<int64_t>(values.size()));
  field_varint(t, 2, kInt64);
  field_bytes(t, 8, name);
  field_bytes(t, 9, std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t)));
  field_bytes(graph_, 5, t);
  return name;
}

std::string OnnxGraph::node(const std::string& op, const std::vector<std::string>& inputs,
                            const std::vector<std::pair<std::string, OnnxAttr>>& attrs, std::string out) {
  if (out.empty()) out = fmt::format("{}_{}", op, counter_);
  std::string n;
  for (const std::string& i : inputs) field_bytes(n, 1, i);  // input
  field_bytes(n, 2, out);                                    // output
  field_bytes(n, 3, fmt::format("{}_{}", op, counter_++));   // name
  field_bytes(n, 4, op);                                     // op_type
  for (const auto& [name, value] : attrs) {
    std::string a;
    field_bytes(a, 1, name);
    if (auto* i = std::get_if<int64_t>(&value)) {
      field_varint(a, 3, *i);
      field_varint(a, 20, kAttrInt);
    } else if (auto* f = std::get_if<float>(&value)) {
      field_float(a, 2, *f);
      field_varint(a, 20, kAttrFloat);
    } else {
      for (int64_t v : std::get<std::vector<int64_t>>(value)) field_varint(a, 8, v);
      field_varint(a, 20, kAttrInts);
    }
    field_bytes(n, 5, a);                                    // attribute
  }
  field_bytes(graph_, 1, n);                                 // GraphProto.node
  return out;
}

void OnnxGraph::save(const std::string& path, const std::string& doc) const {
  std::string graph = graph_;
  field_bytes(graph, 2, name_);  // GraphProto.name
  std::string opset;
  field_bytes(opset, 1, "");
  field_varint(opset, 2, kOnnxOpset);
  std::string m;
  field_varint(m, 1, 7);         // ir_version: the IR of opset 13
  field_bytes(m, 2, "bigbatch");  // producer_name
  field_bytes(m, 6, doc);        // doc_string
  field_bytes(m, 7, graph);      // graph
  field_bytes(m, 8, opset);      // opset_import
  write_file_atomic(path, [&](std::FILE* f) {
    if (std::fwrite(m.data(), 1, m.size(), f) != m.size()) throw FormatError(fmt::format("cannot write {}", path));
  });
}

}  // namespace bb
