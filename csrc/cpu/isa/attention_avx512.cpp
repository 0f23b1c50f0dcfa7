// Row loops of fused attention for AVX-512 (F + FMA). Compiled with the
// AVX-512 flags; used only when pyengine::active_isa() == Isa::AVX512. See
// attention_kernels.h for the contract.
#include "cpu/isa/attention_kernels.h"

#if defined(__AVX512F__) && defined(__FMA__)
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on _mm512_undefined_*(): silence it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <limits>

namespace pyengine::cpu::attention_detail {
namespace {

// exp(x) for 16 floats: x = n*ln2 + r with |r| <= ln2/2, exp(r) by a degree-7
// polynomial (Cody-Waite split of ln2 so r is exact), 2^n applied by scalef.
// x below ln(FLT_MIN) gives 0 (so -inf gives exactly 0); NaN stays NaN.
inline __m512 exp_ps(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  const __m512 hi = _mm512_set1_ps(88.72283f);
  const __mmask16 live = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ);
  const __m512 xc = _mm512_max_ps(lo, _mm512_min_ps(hi, x));  // NaN passes through
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  // exp(r) = 1 + r + r^2 * (1/2 + r/6 + ...): minimax coefficients on [-ln2/2, ln2/2].
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_mov_ps(live, _mm512_scalef_ps(y, n));
}

inline __mmask16 tail_mask(int64_t left) {
  return static_cast<__mmask16>((1u << static_cast<unsigned>(left)) - 1u);
}

float row_max(int64_t n, const float* s) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m0 = ninf, m1 = ninf;
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(s + j));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(s + j + 16));
  }
  for (; j + 16 <= n; j += 16) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(s + j));
  if (j < n) m1 = _mm512_max_ps(m1, _mm512_mask_loadu_ps(ninf, tail_mask(n - j), s + j));
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

float exp_sum(int64_t n, float* s, float shift) {
  const __m512 sh = _mm512_set1_ps(shift);
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m512 y0 = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + j), sh));
    const __m512 y1 = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + j + 16), sh));
    _mm512_storeu_ps(s + j, y0);
    _mm512_storeu_ps(s + j + 16, y1);
    a0 = _mm512_add_ps(a0, y0);
    a1 = _mm512_add_ps(a1, y1);
  }
  for (; j + 16 <= n; j += 16) {
    const __m512 y = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + j), sh));
    _mm512_storeu_ps(s + j, y);
    a0 = _mm512_add_ps(a0, y);
  }
  if (j < n) {
    const __mmask16 m = tail_mask(n - j);
    const __m512 y = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), sh));
    _mm512_mask_storeu_ps(s + j, m, y);
    a1 = _mm512_mask_add_ps(a1, m, a1, y);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

void softmax_grad(int64_t n, const float* p, float* dp, float d) {
  const __m512 dv = _mm512_set1_ps(d);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 g = _mm512_sub_ps(_mm512_loadu_ps(dp + j), dv);
    _mm512_storeu_ps(dp + j, _mm512_mul_ps(_mm512_loadu_ps(p + j), g));
  }
  if (j < n) {
    const __mmask16 m = tail_mask(n - j);
    const __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dp + j), dv);
    _mm512_mask_storeu_ps(dp + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + j), g));
  }
}

}  // namespace

RowKernelsF32 avx512::rows_f32() { return {&row_max, &exp_sum, &softmax_grad}; }

}  // namespace pyengine::cpu::attention_detail

#pragma GCC diagnostic pop

#else  // built without AVX-512 flags: never selected, but the symbol must exist.

namespace pyengine::cpu::attention_detail {
RowKernelsF32 avx512::rows_f32() { return generic::rows_f32(); }
}  // namespace pyengine::cpu::attention_detail

#endif
