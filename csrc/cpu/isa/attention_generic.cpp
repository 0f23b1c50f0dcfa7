// Portable row loops of fused attention (baseline ISA, no extra flags). See
// attention_kernels.h for the contract.
#include <cmath>
#include <limits>

#include "cpu/isa/attention_kernels.h"

namespace pyengine::cpu::attention_detail {
namespace {

float row_max(int64_t n, const float* s) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) m = s[j] > m ? s[j] : m;
  return m;
}

float exp_sum(int64_t n, float* s, float shift) {
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - shift);
    sum += s[j];
  }
  return sum;
}

void softmax_grad(int64_t n, const float* p, float* dp, float d) {
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - d);
}

}  // namespace

RowKernelsF32 generic::rows_f32() { return {&row_max, &exp_sum, &softmax_grad}; }

}  // namespace pyengine::cpu::attention_detail
