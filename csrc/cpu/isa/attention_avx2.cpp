// Row loops of fused attention for AVX2 + FMA. Compiled with -mavx2 -mfma;
// used only when pyengine::active_isa() == Isa::AVX2. See attention_kernels.h.
#include "cpu/isa/attention_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include <cmath>
#include <limits>

namespace pyengine::cpu::attention_detail {
namespace {

// exp(x) for 8 floats, as the AVX-512 version but 2^n is built in the exponent
// bits, so x is clamped to [ln(FLT_MIN), 88] (n in [-126, 127]). Below the
// clamp the result is 0 (-inf gives exactly 0); NaN stays NaN.
inline __m256 exp_ps(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  const __m256 hi = _mm256_set1_ps(88.0f);
  const __m256 live = _mm256_cmp_ps(x, lo, _CMP_NLT_UQ);
  const __m256 xc = _mm256_max_ps(lo, _mm256_min_ps(hi, x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(live, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

float row_max(int64_t n, const float* s) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
  float r = hmax(m);
  for (; j < n; ++j) r = s[j] > r ? s[j] : r;
  return r;
}

float exp_sum(int64_t n, float* s, float shift) {
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 a = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 y = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(s + j), sh));
    _mm256_storeu_ps(s + j, y);
    a = _mm256_add_ps(a, y);
  }
  float sum = hsum(a);
  for (; j < n; ++j) {
    s[j] = std::exp(s[j] - shift);
    sum += s[j];
  }
  return sum;
}

void softmax_grad(int64_t n, const float* p, float* dp, float d) {
  const __m256 dv = _mm256_set1_ps(d);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(
        dp + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), _mm256_sub_ps(_mm256_loadu_ps(dp + j), dv)));
  for (; j < n; ++j) dp[j] = p[j] * (dp[j] - d);
}

}  // namespace

RowKernelsF32 avx2::rows_f32() { return {&row_max, &exp_sum, &softmax_grad}; }

}  // namespace pyengine::cpu::attention_detail

#else

namespace pyengine::cpu::attention_detail {
RowKernelsF32 avx2::rows_f32() { return generic::rows_f32(); }
}  // namespace pyengine::cpu::attention_detail

#endif
