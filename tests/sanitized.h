// What the sanitized build (ASan + UBSan, BIGBATCH_SANITIZED) cannot run: such a test or part
// of one skips with the reason, so the skip is visible in the suite's output.
#pragma once
#include <gtest/gtest.h>

#ifdef BIGBATCH_SANITIZED
#define BB_SKIP_IF_SANITIZED(why) GTEST_SKIP() << "sanitized build: " << (why)
#else
#define BB_SKIP_IF_SANITIZED(why) static_cast<void>(0)
#endif

// ONNX export dlopens its writer with RTLD_DEEPBIND, which AddressSanitizer refuses.
inline constexpr const char* kNoOnnxUnderAsan =
    "ONNX export needs RTLD_DEEPBIND, which AddressSanitizer refuses; the Release suite runs it";
