// The direct-convolution tile for AVX-512 (contract in cpu/isa/conv_kernels.h). Compiled with
// the AVX-512 flags; called only when pyengine::active_isa() == Isa::AVX512.
//
// Register tile: 8 output channels x 3 vectors of 16 flat positions = 24 accumulators. Per
// (channel, tap): 3 unaligned input loads and 8 weight broadcasts feed 24 FMAs, so the loop is
// bound by the FMA units, not by loads.
#include "cpu/isa/conv_kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>

namespace pyengine::cpu::conv_detail {
namespace {

static_assert(kDirectRows == 8 && kDirectCols == 48, "the tile below is 8 x 3 vectors");

void direct_tile(const float* x, int64_t plane, int64_t C, const int64_t* off, int ntaps,
                 const float* w, const float* init, float* out) {
  __m512 a[8][3];
  for (int i = 0; i < 8; ++i) a[i][0] = a[i][1] = a[i][2] = _mm512_set1_ps(init[i]);
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * plane;
    const float* wc = w + c * ntaps * 8;
    for (int t = 0; t < ntaps; ++t) {
      const float* s = xc + off[t];
      const __m512 v0 = _mm512_loadu_ps(s);
      const __m512 v1 = _mm512_loadu_ps(s + 16);
      const __m512 v2 = _mm512_loadu_ps(s + 32);
      const float* wt = wc + t * 8;
      for (int i = 0; i < 8; ++i) {
        const __m512 b = _mm512_set1_ps(wt[i]);
        a[i][0] = _mm512_fmadd_ps(b, v0, a[i][0]);
        a[i][1] = _mm512_fmadd_ps(b, v1, a[i][1]);
        a[i][2] = _mm512_fmadd_ps(b, v2, a[i][2]);
      }
    }
  }
  for (int i = 0; i < 8; ++i) {
    _mm512_storeu_ps(out + i * 48, a[i][0]);
    _mm512_storeu_ps(out + i * 48 + 16, a[i][1]);
    _mm512_storeu_ps(out + i * 48 + 32, a[i][2]);
  }
}

}  // namespace

DirectTileF32 avx512::direct_tile_f32() { return &direct_tile; }

}  // namespace pyengine::cpu::conv_detail

#else  // built without AVX-512 support: no direct path

namespace pyengine::cpu::conv_detail {
DirectTileF32 avx512::direct_tile_f32() { return nullptr; }
}  // namespace pyengine::cpu::conv_detail

#endif
