// Pooling row kernels for AVX2 (+FMA flags, not used here). Compiled with the
// AVX2 flags; called only when pyengine::active_isa() == Isa::AVX2. The
// algorithm is the shared template (pool_rows.inc); this file gives its vector
// traits. Indices of the float32 path are 32-bit lanes (the caller keeps them
// below 2^31) and widened to int64 when stored.
#include <algorithm>
#include <cstring>
#include <limits>

#include "cpu/isa/pool_kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>

namespace pyengine::cpu::pool_detail {
namespace {
#include "cpu/isa/pool_rows.inc"

struct F32x8 {
  using Elem = float;
  using V = __m256;
  using I = __m256i;  // 8 x int32
  using M = __m256;   // all-ones lanes
  static constexpr int L = 8;
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static M take(V val, V best) {
    return _mm256_or_ps(_mm256_cmp_ps(val, best, _CMP_GT_OQ),
                        _mm256_cmp_ps(val, val, _CMP_UNORD_Q));
  }
  static V blend(M m, V a, V b) { return _mm256_blendv_ps(a, b, m); }
  static I iset1(int64_t x) { return _mm256_set1_epi32(static_cast<int32_t>(x)); }
  static I iadd(I a, I b) { return _mm256_add_epi32(a, b); }
  static I ilanes(int64_t start, int64_t step) {
    const I lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_add_epi32(iset1(start), _mm256_mullo_epi32(lane, iset1(step)));
  }
  static I iblend(M m, I a, I b) { return _mm256_blendv_epi8(a, b, _mm256_castps_si256(m)); }
  static I iload_col(int64_t base, const int64_t* col) {
    // low 32 bits of each int64: dwords 0, 2, 4, 6 of each half
    const I pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const I a = _mm256_permutevar8x32_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col)), pick);
    const I b = _mm256_permutevar8x32_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col + 4)), pick);
    return _mm256_add_epi32(iset1(base), _mm256_permute2x128_si256(a, b, 0x20));
  }
  static void istore(int64_t* p, I v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + 4),
                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
  }
  static void deint2(V a, V b, V& even, V& odd) {
    const V e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 | a4 a6 b4 b6
    const V o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static void int2(V even, V odd, V& lo, V& hi) {
    const V l = _mm256_unpacklo_ps(even, odd);  // e0 o0 e1 o1 | e4 o4 e5 o5
    const V h = _mm256_unpackhi_ps(even, odd);  // e2 o2 e3 o3 | e6 o6 e7 o7
    lo = _mm256_permute2f128_ps(l, h, 0x20);
    hi = _mm256_permute2f128_ps(l, h, 0x31);
  }
  static constexpr bool kTail = true;
  using TM = __m256i;  // lanes < n are all ones
  static TM tail_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load_tail(const float* p, TM m) { return _mm256_maskload_ps(p, m); }
  static void store_tail(float* p, V v, TM m) { _mm256_maskstore_ps(p, m, v); }
  static V blend_tail(TM m, V a, V b) { return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(m)); }
  static I iload_col_tail(int64_t base, const int64_t* col, TM m) {
    const __m256i m0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m));
    const __m256i m1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1));
    const I pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const I a = _mm256_permutevar8x32_epi32(
        _mm256_maskload_epi64(reinterpret_cast<const long long*>(col), m0), pick);
    const I b = _mm256_permutevar8x32_epi32(
        _mm256_maskload_epi64(reinterpret_cast<const long long*>(col + 4), m1), pick);
    return _mm256_add_epi32(iset1(base), _mm256_permute2x128_si256(a, b, 0x20));
  }
  static void istore_tail(int64_t* p, I v, TM m) {
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(p),
                           _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)),
                           _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(p + 4),
                           _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1)),
                           _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
  }
};

struct F64x4 {
  using Elem = double;
  using V = __m256d;
  using I = __m256i;  // 4 x int64
  using M = __m256d;
  static constexpr int L = 4;
  static V loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static M take(V val, V best) {
    return _mm256_or_pd(_mm256_cmp_pd(val, best, _CMP_GT_OQ),
                        _mm256_cmp_pd(val, val, _CMP_UNORD_Q));
  }
  static V blend(M m, V a, V b) { return _mm256_blendv_pd(a, b, m); }
  static I iset1(int64_t x) { return _mm256_set1_epi64x(x); }
  static I iadd(I a, I b) { return _mm256_add_epi64(a, b); }
  static I ilanes(int64_t start, int64_t step) {
    return _mm256_setr_epi64x(start, start + step, start + 2 * step, start + 3 * step);
  }
  static I iblend(M m, I a, I b) { return _mm256_blendv_epi8(a, b, _mm256_castpd_si256(m)); }
  static I iload_col(int64_t base, const int64_t* col) {
    return _mm256_add_epi64(iset1(base), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col)));
  }
  static void istore(int64_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static void deint2(V a, V b, V& even, V& odd) {
    even = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
    odd = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
  }
  static void int2(V even, V odd, V& lo, V& hi) {
    const V l = _mm256_unpacklo_pd(even, odd);  // e0 o0 e2 o2
    const V h = _mm256_unpackhi_pd(even, odd);  // e1 o1 e3 o3
    lo = _mm256_permute2f128_pd(l, h, 0x20);
    hi = _mm256_permute2f128_pd(l, h, 0x31);
  }
  static constexpr bool kTail = true;
  using TM = __m256i;  // lanes < n are all ones
  static TM tail_mask(int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load_tail(const double* p, TM m) { return _mm256_maskload_pd(p, m); }
  static void store_tail(double* p, V v, TM m) { _mm256_maskstore_pd(p, m, v); }
  static V blend_tail(TM m, V a, V b) { return _mm256_blendv_pd(a, b, _mm256_castsi256_pd(m)); }
  static I iload_col_tail(int64_t base, const int64_t* col, TM m) {
    return _mm256_add_epi64(iset1(base),
                            _mm256_maskload_epi64(reinterpret_cast<const long long*>(col), m));
  }
  static void istore_tail(int64_t* p, I v, TM m) {
    _mm256_maskstore_epi64(reinterpret_cast<long long*>(p), m, v);
  }
};

}  // namespace

RowKernels<float> avx2::row_kernels_f32() { return make_row_kernels<F32x8, ScalarTraits<float>>(); }
RowKernels<double> avx2::row_kernels_f64() {
  return make_row_kernels<F64x4, ScalarTraits<double>>();
}

}  // namespace pyengine::cpu::pool_detail

#else  // built without AVX2 support: the generic kernels stand in (never selected)

namespace pyengine::cpu::pool_detail {
RowKernels<float> avx2::row_kernels_f32() { return generic::row_kernels_f32(); }
RowKernels<double> avx2::row_kernels_f64() { return generic::row_kernels_f64(); }
}  // namespace pyengine::cpu::pool_detail

#endif
