// OnnxGraph collects the model as plain data; serialize_onnx hands it to the writer plugin.
#include "io/onnx_graph.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"

namespace bb {
namespace {

template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// The plugin next to the running program (an installed layout), else where the build put it.
std::vector<std::string> plugin_candidates() {
  std::vector<std::string> c;
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) c.push_back((std::filesystem::path(std::string(exe, n)).parent_path() / "libbigbatch_onnx.so").string());
  c.push_back(BIGBATCH_ONNX_PLUGIN);
  return c;
}

OnnxSerializeFn load_writer() {
#ifdef BIGBATCH_SANITIZED
  // AddressSanitizer's runtime refuses RTLD_DEEPBIND (google/sanitizers#611), and without it
  // the plugin's protobuf would bind to libsentencepiece's copy.
  throw Error("ONNX export is not available in a build with AddressSanitizer (the writer plugin needs "
              "RTLD_DEEPBIND, which the sanitizer runtime refuses); use a Release build");
#endif
  for (const std::string& path : plugin_candidates()) {
    if (!std::filesystem::exists(path)) continue;
    // RTLD_DEEPBIND: the plugin and its libprotobuf bind to their own symbols before the
    // global scope, where libsentencepiece's protobuf-lite copy has the same names.
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) throw FormatError(fmt::format("cannot load the ONNX writer {}: {}", path, dlerror()));
    auto fn = reinterpret_cast<OnnxSerializeFn>(dlsym(h, kOnnxSerializeSymbol));
    if (!fn) throw FormatError(fmt::format("the ONNX writer {} has no {}", path, kOnnxSerializeSymbol));
    return fn;
  }
  throw FormatError(fmt::format("the ONNX writer libbigbatch_onnx.so is neither next to the program nor at {}",
                                BIGBATCH_ONNX_PLUGIN));
}

}  // namespace

std::string serialize_onnx(const OnnxModelSpec& spec) {
  static const OnnxSerializeFn fn = load_writer();
  std::string bytes, error;
  if (fn(&spec, &bytes, &error) != 0) throw FormatError(fmt::format("ONNX serialisation failed: {}", error));
  return bytes;
}

OnnxGraph::OnnxGraph(const std::string& name) {
  spec_.graph_name = name;
  spec_.opset = kOnnxOpset;
}

std::string OnnxGraph::input(const std::string& name, const std::vector<int64_t>& dims) {
  spec_.inputs.push_back({name, dims});
  return name;
}

void OnnxGraph::output(const std::string& name, const std::vector<int64_t>& dims) {
  spec_.outputs.push_back({name, dims});
}

std::string OnnxGraph::constant(const std::string& name, const std::vector<float>& values,
                                const std::vector<int64_t>& dims) {
  spec_.initializers.push_back({name, dims, false, raw_bytes(values)});
  return name;
}

std::string OnnxGraph::constant_i64(const std::string& name, const std::vector<int64_t>& values) {
  spec_.initializers.push_back({name, {static_cast<int64_t>(values.size())}, true, raw_bytes(values)});
  return name;
}

std::string OnnxGraph::node(const std::string& op, const std::vector<std::string>& inputs,
                            const std::vector<std::pair<std::string, OnnxAttr>>& attrs, std::string out) {
  if (out.empty()) out = fmt::format("{}_{}", op, counter_);
  spec_.nodes.push_back({op, fmt::format("{}_{}", op, counter_++), out, inputs, attrs});
  return out;
}

void OnnxGraph::save(const std::string& path, const std::string& doc) {
  spec_.doc = doc;  // set in place: a copy of the spec would copy every weight once more
  const std::string bytes = serialize_onnx(spec_);
  write_file_atomic(path, [&](std::FILE* f) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) throw FormatError(fmt::format("cannot write {}", path));
  });
}

}  // namespace bb
