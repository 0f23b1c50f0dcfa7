// LSTM / GRU pointwise kernels for AVX-512F (16 floats per register). Compiled
// with the AVX-512 flags; used only when pyengine::active_isa() == Isa::AVX512.
#include "cpu/isa/lstm_kernels.h"

#if defined(__AVX512F__) && defined(__FMA__)
// GCC 12 warns about the intentionally undefined pass-through operand inside its
// own AVX-512 intrinsics (`__m512 __Y = __Y;`, GCC bug 105593): not our code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "cpu/isa/lstm_pointwise.h"

namespace pyengine::cpu::rnn_detail {
namespace {

struct V512 {
  using T = float;
  using R = __m512;
  static constexpr int W = 16;
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static R set1(T x) { return _mm512_set1_ps(x); }
  static R loadu(const T* p) { return _mm512_loadu_ps(p); }
  static R load_part(const T* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void storeu(T* p, R v) { _mm512_storeu_ps(p, v); }
  static void store_part(T* p, R v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R fnma(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  static R min(R a, R b) { return _mm512_min_ps(a, b); }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static R abs(R a) { return _mm512_abs_ps(a); }
  static R round(R x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static R pow2(R n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static R select_lt(R a, R b, R x, R y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x);
  }
  static R recip(R d) { return _mm512_div_ps(_mm512_set1_ps(1.0f), d); }
  static R copysign(R mag, R sgn) {
    const __m512i s = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(s, _mm512_castps_si512(mag)),
                                               _mm512_and_si512(s, _mm512_castps_si512(sgn))));
  }
  static R exp(R x) { return vexp<V512>(x); }
  static R sigmoid(R x) { return vsigmoid<V512>(x); }
  static R tanh(R x) { return vtanh<V512>(x); }
};

}  // namespace

RnnKernels<float> avx512::rnn_f32() { return make_kernels<V512>(); }

}  // namespace pyengine::cpu::rnn_detail

#else  // built without AVX-512 flags (non-x86 or odd toolchain): never selected.

namespace pyengine::cpu::rnn_detail {
RnnKernels<float> avx512::rnn_f32() { return generic::rnn_f32(); }
}  // namespace pyengine::cpu::rnn_detail

#endif
