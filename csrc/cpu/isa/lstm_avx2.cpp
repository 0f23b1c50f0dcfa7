// LSTM / GRU pointwise kernels for AVX2 + FMA (8 floats per register). Compiled
// with -mavx2 -mfma; used only when pyengine::active_isa() == Isa::AVX2.
#include "cpu/isa/lstm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "cpu/isa/lstm_pointwise.h"

namespace pyengine::cpu::rnn_detail {
namespace {

struct V256 {
  using T = float;
  using R = __m256;
  static constexpr int W = 8;
  static __m256i mask(int n) {  // lanes < n set
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static R set1(T x) { return _mm256_set1_ps(x); }
  static R loadu(const T* p) { return _mm256_loadu_ps(p); }
  static R load_part(const T* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void storeu(T* p, R v) { _mm256_storeu_ps(p, v); }
  static void store_part(T* p, R v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R div(R a, R b) { return _mm256_div_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R fnma(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
  static R min(R a, R b) { return _mm256_min_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static R abs(R a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static R round(R x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static R pow2(R n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static R select_lt(R a, R b, R x, R y) {
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
  }
  static R recip(R d) { return _mm256_div_ps(_mm256_set1_ps(1.0f), d); }
  static R copysign(R mag, R sgn) {
    const R s = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sgn));
  }
  static R exp(R x) { return vexp<V256>(x); }
  static R sigmoid(R x) { return vsigmoid<V256>(x); }
  static R tanh(R x) { return vtanh<V256>(x); }
};

}  // namespace

RnnKernels<float> avx2::rnn_f32() { return make_kernels<V256>(); }

}  // namespace pyengine::cpu::rnn_detail

#else  // built without AVX2 flags (non-x86 or odd toolchain): never selected.

namespace pyengine::cpu::rnn_detail {
RnnKernels<float> avx2::rnn_f32() { return generic::rnn_f32(); }
}  // namespace pyengine::cpu::rnn_detail

#endif
