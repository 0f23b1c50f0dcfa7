// Pooling row kernels for AVX-512 (F/VL/BW/DQ). Compiled with the AVX-512
// flags; called only when pyengine::active_isa() == Isa::AVX512. The algorithm
// is the shared template (pool_rows.inc); this file gives its vector traits.
// Indices of the float32 path are 32-bit lanes (the caller keeps them below
// 2^31) and widened to int64 when stored.
#include <algorithm>
#include <cstring>
#include <limits>

#include "cpu/isa/pool_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512DQ__)
// GCC 12 flags the deliberately undefined pass-through operands inside the
// intrinsic headers (_mm512_cvtepi64_epi32 etc.) as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace pyengine::cpu::pool_detail {
namespace {
#include "cpu/isa/pool_rows.inc"

struct F32x16 {
  using Elem = float;
  using V = __m512;
  using I = __m512i;  // 16 x int32
  using M = __mmask16;
  static constexpr int L = 16;
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static M take(V val, V best) {
    return _mm512_cmp_ps_mask(val, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(val, val, _CMP_UNORD_Q);
  }
  static V blend(M m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }
  static I iset1(int64_t x) { return _mm512_set1_epi32(static_cast<int32_t>(x)); }
  static I iadd(I a, I b) { return _mm512_add_epi32(a, b); }
  static I ilanes(int64_t start, int64_t step) {
    const I lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm512_add_epi32(iset1(start), _mm512_mullo_epi32(lane, iset1(step)));
  }
  static I iblend(M m, I a, I b) { return _mm512_mask_blend_epi32(m, a, b); }
  static I iload_col(int64_t base, const int64_t* col) {
    const __m256i lo = _mm512_cvtepi64_epi32(_mm512_loadu_si512(col));
    const __m256i hi = _mm512_cvtepi64_epi32(_mm512_loadu_si512(col + 8));
    return _mm512_add_epi32(iset1(base), _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
  }
  static void istore(int64_t* p, I v) {
    _mm512_storeu_si512(p, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
    _mm512_storeu_si512(p + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
  }
  static void deint2(V a, V b, V& even, V& odd) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    even = _mm512_permutex2var_ps(a, ie, b);
    odd = _mm512_permutex2var_ps(a, io, b);
  }
  static void int2(V even, V odd, V& lo, V& hi) {
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ih =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    lo = _mm512_permutex2var_ps(even, il, odd);
    hi = _mm512_permutex2var_ps(even, ih, odd);
  }
  static constexpr bool kTail = true;
  using TM = __mmask16;
  static TM tail_mask(int64_t n) { return static_cast<TM>((1u << n) - 1); }
  static V load_tail(const float* p, TM m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_tail(float* p, V v, TM m) { _mm512_mask_storeu_ps(p, m, v); }
  static V blend_tail(TM m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }
  static I iload_col_tail(int64_t base, const int64_t* col, TM m) {
    const __m256i lo = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(m & 0xff, col));
    const __m256i hi = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(m >> 8, col + 8));
    return _mm512_add_epi32(iset1(base), _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
  }
  static void istore_tail(int64_t* p, I v, TM m) {
    _mm512_mask_storeu_epi64(p, m & 0xff, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
    _mm512_mask_storeu_epi64(p + 8, m >> 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
  }
};

struct F64x8 {
  using Elem = double;
  using V = __m512d;
  using I = __m512i;  // 8 x int64
  using M = __mmask8;
  static constexpr int L = 8;
  static V loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
  static M take(V val, V best) {
    return _mm512_cmp_pd_mask(val, best, _CMP_GT_OQ) | _mm512_cmp_pd_mask(val, val, _CMP_UNORD_Q);
  }
  static V blend(M m, V a, V b) { return _mm512_mask_blend_pd(m, a, b); }
  static I iset1(int64_t x) { return _mm512_set1_epi64(x); }
  static I iadd(I a, I b) { return _mm512_add_epi64(a, b); }
  static I ilanes(int64_t start, int64_t step) {
    const I lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm512_add_epi64(iset1(start), _mm512_mullo_epi64(lane, iset1(step)));
  }
  static I iblend(M m, I a, I b) { return _mm512_mask_blend_epi64(m, a, b); }
  static I iload_col(int64_t base, const int64_t* col) {
    return _mm512_add_epi64(iset1(base), _mm512_loadu_si512(col));
  }
  static void istore(int64_t* p, I v) { _mm512_storeu_si512(p, v); }
  static void deint2(V a, V b, V& even, V& odd) {
    even = _mm512_permutex2var_pd(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b);
    odd = _mm512_permutex2var_pd(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b);
  }
  static void int2(V even, V odd, V& lo, V& hi) {
    lo = _mm512_permutex2var_pd(even, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), odd);
    hi = _mm512_permutex2var_pd(even, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), odd);
  }
  static constexpr bool kTail = true;
  using TM = __mmask8;
  static TM tail_mask(int64_t n) { return static_cast<TM>((1u << n) - 1); }
  static V load_tail(const double* p, TM m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store_tail(double* p, V v, TM m) { _mm512_mask_storeu_pd(p, m, v); }
  static V blend_tail(TM m, V a, V b) { return _mm512_mask_blend_pd(m, a, b); }
  static I iload_col_tail(int64_t base, const int64_t* col, TM m) {
    return _mm512_add_epi64(iset1(base), _mm512_maskz_loadu_epi64(m, col));
  }
  static void istore_tail(int64_t* p, I v, TM m) { _mm512_mask_storeu_epi64(p, m, v); }
};

}  // namespace

RowKernels<float> avx512::row_kernels_f32() {
  return make_row_kernels<F32x16, ScalarTraits<float>>();
}
RowKernels<double> avx512::row_kernels_f64() {
  return make_row_kernels<F64x8, ScalarTraits<double>>();
}

}  // namespace pyengine::cpu::pool_detail

#else  // built without AVX-512 support: the generic kernels stand in (never selected)

namespace pyengine::cpu::pool_detail {
RowKernels<float> avx512::row_kernels_f32() { return generic::row_kernels_f32(); }
RowKernels<double> avx512::row_kernels_f64() { return generic::row_kernels_f64(); }
}  // namespace pyengine::cpu::pool_detail

#endif
