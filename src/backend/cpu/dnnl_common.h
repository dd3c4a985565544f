// What the oneDNN kernels share: one engine and stream for the process, and the mapping of
// dtypes to oneDNN's (an unsupported dtype is an error naming the op).
#pragma once
#include <fmt/format.h>

#include <dnnl.hpp>
#include <string_view>

#include "core/dtype.h"
#include "core/error.h"

namespace bb::cpu {

struct DnnlEngine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

inline DnnlEngine& dnnl_engine() {
  static DnnlEngine e;
  return e;
}

inline dnnl::memory::data_type dnnl_type(DType t, std::string_view op) {
  switch (t) {
    case DType::F32: return dnnl::memory::data_type::f32;
    case DType::BF16: return dnnl::memory::data_type::bf16;
    default: throw ShapeError(fmt::format("{} does not take {} tensors", op, dtype_name(t)));
  }
}

}  // namespace bb::cpu
