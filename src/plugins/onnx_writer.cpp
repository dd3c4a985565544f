// The ONNX writer: an OnnxModelSpec as an onnx::ModelProto from Debian's libonnx-dev
// (onnx-ml.pb.h, libonnx_proto), serialised by libprotobuf. Built as a plugin that bigbatch
// loads on export with RTLD_DEEPBIND, because libsentencepiece, linked into bigbatch, exports
// its own protobuf-lite copy under the same symbol names as libprotobuf.
#include <onnx/onnx_pb.h>

#include <exception>

#include "io/onnx_spec.h"

namespace {

void set_value(onnx::ValueInfoProto* v, const bb::OnnxValue& s) {
  v->set_name(s.name);
  auto* tensor = v->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tensor->mutable_shape();
  for (int64_t d : s.dims) {
    auto* dim = shape->add_dim();
    if (d < 0) dim->set_dim_param("N");
    else dim->set_dim_value(d);
  }
}

void set_attribute(onnx::AttributeProto* a, const std::string& name, const bb::OnnxAttr& value) {
  a->set_name(name);
  if (auto* i = std::get_if<int64_t>(&value)) {
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(*i);
  } else if (auto* f = std::get_if<float>(&value)) {
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(*f);
  } else {
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : std::get<std::vector<int64_t>>(value)) a->add_ints(v);
  }
}

}  // namespace

extern "C" int bb_onnx_serialize(const bb::OnnxModelSpec* spec, std::string* bytes, std::string* error) {
  try {
    onnx::ModelProto m;
    m.set_ir_version(spec->ir_version);
    m.set_producer_name("bigbatch");
    m.set_doc_string(spec->doc);
    auto* opset = m.add_opset_import();
    opset->set_domain("");
    opset->set_version(spec->opset);
    auto* g = m.mutable_graph();
    g->set_name(spec->graph_name);
    for (const auto& v : spec->inputs) set_value(g->add_input(), v);
    for (const auto& v : spec->outputs) set_value(g->add_output(), v);
    for (const auto& t : spec->initializers) {
      auto* p = g->add_initializer();
      p->set_name(t.name);
      for (int64_t d : t.dims) p->add_dims(d);
      p->set_data_type(t.int64 ? onnx::TensorProto::INT64 : onnx::TensorProto::FLOAT);
      p->set_raw_data(t.raw);
    }
    for (const auto& n : spec->nodes) {
      auto* p = g->add_node();
      p->set_op_type(n.op);
      p->set_name(n.name);
      for (const auto& i : n.inputs) p->add_input(i);
      p->add_output(n.output);
      for (const auto& [name, value] : n.attrs) set_attribute(p->add_attribute(), name, value);
    }
    if (!m.SerializeToString(bytes)) {
      *error = "protobuf could not serialise the model";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    *error = e.what();
    return 1;
  }
}
