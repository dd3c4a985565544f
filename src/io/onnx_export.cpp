// The exporter walks the model's named modules in the order its forward uses them; each
// conv + norm pair becomes one Conv node (the norm folded in) or Conv + GroupNorm nodes.
#include "io/onnx_export.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "io/onnx_graph.h"
#include "models/mobilenet.h"
#include "models/resnet.h"

namespace bb {
namespace {

class Exporter {
 public:
  Exporter(const ImageClassifier& m, OnnxGraph& g) : model_(m), g_(g) {
    for (auto& [name, mod] : m.named_modules()) modules_[name] = mod;
  }

  template <typename T>
  std::shared_ptr<T> find(const std::string& path) const {
    auto it = modules_.find(path);
    return it == modules_.end() ? nullptr : std::dynamic_pointer_cast<T>(it->second);
  }
  template <typename T>
  std::shared_ptr<T> get(const std::string& path) const {
    auto m = find<T>(path);
    if (!m) throw FormatError(fmt::format("onnx export: the model has no layer {} of the expected kind", path));
    return m;
  }
  std::vector<float> floats(const std::string& name) const { return model_.parameter(name).to_floats(); }

  // act(norm(conv(x)) + residual) as ONNX nodes; returns the output's name.
  std::string conv_norm(const std::string& x, const std::string& conv_path, const std::string& norm_path,
                        FusedAct act, const std::string& residual = "") {
    const Conv2dOptions& c = get<Conv2d>(conv_path)->options();
    const Tensor wt = model_.parameter(conv_path + ".weight");  // (O, KH, KW, I/g)
    const int64_t o = wt.dim(0), kh = wt.dim(1), kw = wt.dim(2), ig = wt.dim(3);
    const std::vector<float> w = wt.to_floats();
    std::vector<float> scale(o, 1.0f), shift(o, 0.0f);
    if (c.bias) shift = floats(conv_path + ".bias");
    auto bn = find<BatchNorm2d>(norm_path);
    if (bn) {  // y = (conv + b - mean) * gamma / sqrt(var + eps) + beta
      const auto gamma = floats(norm_path + ".weight"), beta = floats(norm_path + ".bias");
      const auto mean = floats(norm_path + ".running_mean"), var = floats(norm_path + ".running_var");
      for (int64_t k = 0; k < o; ++k) {
        scale[k] = gamma[k] / std::sqrt(var[k] + bn->options().eps);
        shift[k] = (shift[k] - mean[k]) * scale[k] + beta[k];
      }
    }
    std::vector<float> oihw(w.size());  // OHWI -> OIHW, scaled per output channel
    for (int64_t a = 0; a < o; ++a)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t z = 0; z < kw; ++z)
          for (int64_t i = 0; i < ig; ++i)
            oihw[((a * ig + i) * kh + y) * kw + z] = w[((a * kh + y) * kw + z) * ig + i] * scale[a];
    const std::string wn = g_.constant(conv_path + ".weight", oihw, {o, ig, kh, kw});
    const std::string bname = g_.constant(conv_path + ".bias", shift, {o});
    std::string y = g_.node("Conv", {x, wn, bname},
                            {{"kernel_shape", std::vector<int64_t>{kh, kw}},
                             {"strides", std::vector<int64_t>{c.stride, c.stride}},
                             {"pads", std::vector<int64_t>{c.padding, c.padding, c.padding, c.padding}},
                             {"group", c.groups}});
    if (!bn) y = group_norm(y, norm_path, o);
    if (!residual.empty()) y = g_.node("Add", {y, residual});
    if (act == FusedAct::kRelu) y = g_.node("Relu", {y});
    if (act == FusedAct::kRelu6) y = g_.node("Clip", {y, zero(), six()});
    return y;
  }

  // GroupNorm on NCHW: InstanceNormalization over (N, G, C/G*H*W), then the affine per channel.
  std::string group_norm(const std::string& x, const std::string& path, int64_t channels) {
    get<GroupNorm>(path);
    const int64_t groups = std::llround(static_cast<double>(model_.options().norm_groups));
    int64_t g = std::max<int64_t>(1, std::min(groups, channels));
    while (channels % g != 0) --g;  // as make_norm2d lowers it
    const std::string shape = g_.node("Shape", {x});
    std::string r = g_.node("Reshape", {x, g_.constant_i64(path + ".groups_shape", {0, g, -1})});
    r = g_.node("InstanceNormalization",
                {r, g_.constant(path + ".ones", std::vector<float>(g, 1.0f), {g}),
                 g_.constant(path + ".zeros", std::vector<float>(g, 0.0f), {g})},
                {{"epsilon", 1e-5f}});
    r = g_.node("Reshape", {r, shape});
    r = g_.node("Mul", {r, g_.constant(path + ".weight", floats(path + ".weight"), {channels, 1, 1})});
    return g_.node("Add", {r, g_.constant(path + ".bias", floats(path + ".bias"), {channels, 1, 1})});
  }

  std::string classifier(const std::string& x, const std::string& path) {
    const Tensor w = model_.parameter(path + ".weight");  // (classes, in)
    std::string y = g_.node("GlobalAveragePool", {x});
    y = g_.node("Flatten", {y}, {{"axis", int64_t{1}}});
    return g_.node("Gemm",
                   {y, g_.constant(path + ".weight", w.to_floats(), {w.dim(0), w.dim(1)}),
                    g_.constant(path + ".bias", floats(path + ".bias"), {w.dim(0)})},
                   {{"transB", int64_t{1}}}, "logits");
  }

  std::string resnet(std::string x) {
    x = conv_norm(x, "stem.0", "stem.1", FusedAct::kRelu);
    for (auto& [name, mod] : model_.named_modules()) {
      if (!std::dynamic_pointer_cast<ResBlock>(mod)) continue;
      const std::string y = conv_norm(x, name + ".c1", name + ".b1", FusedAct::kRelu);
      const std::string sc = find<Conv2d>(name + ".sc.0") ? conv_norm(x, name + ".sc.0", name + ".sc.1", FusedAct::kNone) : x;
      x = conv_norm(y, name + ".c2", name + ".b2", FusedAct::kRelu, sc);
    }
    return classifier(x, "fc");
  }

  std::string mobilenet(std::string x) {
    x = conv_norm(x, "stem.conv", "stem.norm", FusedAct::kRelu6);
    for (auto& [name, mod] : model_.named_modules()) {
      if (!std::dynamic_pointer_cast<InvertedResidual>(mod)) continue;
      const bool has_expand = find<Conv2d>(name + ".expand.conv") != nullptr;
      const Conv2dOptions& dw = get<Conv2d>(name + ".dw.conv")->options();
      const int64_t in = has_expand ? get<Conv2d>(name + ".expand.conv")->options().in : dw.in;
      const int64_t out = get<Conv2d>(name + ".project.conv")->options().out;
      const bool residual = dw.stride == 1 && in == out;  // as InvertedResidual decides
      std::string h = has_expand ? conv_norm(x, name + ".expand.conv", name + ".expand.norm", FusedAct::kRelu6) : x;
      h = conv_norm(h, name + ".dw.conv", name + ".dw.norm", FusedAct::kRelu6);
      x = conv_norm(h, name + ".project.conv", name + ".project.norm", FusedAct::kNone, residual ? x : "");
    }
    x = conv_norm(x, "head.conv", "head.norm", FusedAct::kRelu6);
    return classifier(x, "classifier");
  }

 private:
  std::string zero() { return zero_.empty() ? zero_ = g_.constant("relu6_min", {0.0f}, {}) : zero_; }
  std::string six() { return six_.empty() ? six_ = g_.constant("relu6_max", {6.0f}, {}) : six_; }

  const ImageClassifier& model_;
  OnnxGraph& g_;
  std::map<std::string, std::shared_ptr<Module>> modules_;
  std::string zero_, six_;
};

}  // namespace

void export_image_classifier_onnx(const ImageClassifier& model, const ImageModelInfo& info, const std::string& path) {
  const ImageModelOptions& o = model.options();
  OnnxGraph g(o.arch);
  const int64_t c = o.in_channels;
  std::string x = g.input("input", {-1, c, info.height, info.width});
  // Pixels in [0, 1] -> the normalised images the model was trained on.
  x = g.node("Sub", {x, g.constant("input_mean", info.mean, {c, 1, 1})});
  x = g.node("Div", {x, g.constant("input_std", info.std, {c, 1, 1})});
  Exporter e(model, g);
  if (o.arch == "resnet") e.resnet(x);
  else if (o.arch == "mobilenetv2") e.mobilenet(x);
  else throw ConfigError(fmt::format("onnx export: architecture '{}' is not supported", o.arch));
  g.output("logits", {-1, o.classes});
  g.save(path, fmt::format("bigbatch {} ({} classes), BatchNorm folded; input NCHW pixels in [0, 1]", o.arch, o.classes));
}

}  // namespace bb
