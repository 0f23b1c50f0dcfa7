// Internal: the ISA-specific row loops of fused attention (cpu/attention.cpp
// is the rest: blocking, masks, dropout, and the block products in our GEMM).
//
// Only float32 has vector paths (float64 exists for gradient checks and uses
// the portable loops of the driver). As in gemm_kernels.h, everything compiled
// with wide-ISA flags lives in an anonymous namespace inside its file; this
// header holds plain data types and the getter declarations only.
#pragma once
#include <cstdint>

namespace pyengine::cpu::attention_detail {

// Row-kernel contracts (n >= 0 elements, any alignment):
//   row_max(n, s)            -> max_j s[j], or -inf when n == 0 (NaN handling unspecified).
//   exp_sum(n, s, shift)     s[j] = exp(s[j] - shift) in place; returns sum_j of the new s[j].
//                            shift is finite; s[j] == -inf gives exactly 0.
//   softmax_grad(n, p, dp, d) dp[j] = p[j] * (dp[j] - d), in place on dp.
struct RowKernelsF32 {
  float (*row_max)(int64_t n, const float* s);
  float (*exp_sum)(int64_t n, float* s, float shift);
  void (*softmax_grad)(int64_t n, const float* p, float* dp, float d);
};

namespace generic {
RowKernelsF32 rows_f32();
}  // namespace generic
namespace avx2 {
RowKernelsF32 rows_f32();
}  // namespace avx2
namespace avx512 {
RowKernelsF32 rows_f32();
}  // namespace avx512

}  // namespace pyengine::cpu::attention_detail
