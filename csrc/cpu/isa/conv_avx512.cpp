// The direct-convolution tile for AVX-512 (contract in cpu/isa/conv_kernels.h). Compiled with
// the AVX-512 flags; called only when pyengine::active_isa() == Isa::AVX512.
//
// Register tile: 8 output channels x 3 vectors of 16 flat positions = 24 accumulators. Per
// (channel, tap): 3 unaligned input loads and 8 weight broadcasts feed 24 FMAs, so the loop is
// bound by the FMA units, not by loads.
#include "cpu/isa/conv_kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>

namespace pyengine::cpu::conv_detail {
namespace {

static_assert(kDirectRows == 8 && kDirectCols == 48, "the tile below is 8 x 3 vectors");

template <int NV>
void direct_tile_nv(const float* x, int64_t plane, int64_t C, const int64_t* off, int ntaps,
                    const float* w, const float* init, float* out) {
  __m512 a[8][NV];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < NV; ++j) a[i][j] = _mm512_set1_ps(init[i]);
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * plane;
    const float* wc = w + c * ntaps * 8;
    for (int t = 0; t < ntaps; ++t) {
      const float* s = xc + off[t];
      __m512 v[NV];
      for (int j = 0; j < NV; ++j) v[j] = _mm512_loadu_ps(s + 16 * j);
      const float* wt = wc + t * 8;
      for (int i = 0; i < 8; ++i) {
        const __m512 b = _mm512_set1_ps(wt[i]);
        for (int j = 0; j < NV; ++j) a[i][j] = _mm512_fmadd_ps(b, v[j], a[i][j]);
      }
    }
  }
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < NV; ++j) _mm512_store_ps(out + i * 48 + 16 * j, a[i][j]);
}

void direct_tile(int nv, const float* x, int64_t plane, int64_t C, const int64_t* off, int ntaps,
                 const float* w, const float* init, float* out) {
  switch (nv) {
    case 1: return direct_tile_nv<1>(x, plane, C, off, ntaps, w, init, out);
    case 2: return direct_tile_nv<2>(x, plane, C, off, ntaps, w, init, out);
    default: return direct_tile_nv<3>(x, plane, C, off, ntaps, w, init, out);
  }
}

// Per (channel, tap): nv weight loads and 6 input broadcasts feed 6*nv FMAs.
template <int NV>
void pixel_tile_nv(const float* const* x, int64_t plane, int64_t C, const int64_t* off, int ntaps,
                   const float* w, const float* init, int64_t ldinit, float* out) {
  constexpr int P = kPixelTile;
  __m512 a[P][NV];
  for (int i = 0; i < P; ++i)
    for (int j = 0; j < NV; ++j) a[i][j] = _mm512_loadu_ps(init + i * ldinit + 16 * j);
  const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3], *x4 = x[4], *x5 = x[5];
  for (int64_t c = 0; c < C; ++c) {
    const float* wc = w + c * ntaps * kPixelBlock;
    const int64_t base = c * plane;
    for (int t = 0; t < ntaps; ++t) {
      const int64_t k = base + off[t];
      const float* wt = wc + t * kPixelBlock;
      __m512 v[NV];
      for (int j = 0; j < NV; ++j) v[j] = _mm512_load_ps(wt + 16 * j);
      const float xs[P] = {x0[k], x1[k], x2[k], x3[k], x4[k], x5[k]};
      for (int i = 0; i < P; ++i) {
        const __m512 b = _mm512_set1_ps(xs[i]);
        for (int j = 0; j < NV; ++j) a[i][j] = _mm512_fmadd_ps(b, v[j], a[i][j]);
      }
    }
  }
  for (int i = 0; i < P; ++i)
    for (int j = 0; j < NV; ++j) _mm512_store_ps(out + i * kPixelBlock + 16 * j, a[i][j]);
}

void pixel_tile(int nv, const float* const* x, int64_t plane, int64_t C, const int64_t* off,
                int ntaps, const float* w, const float* init, int64_t ldinit, float* out) {
  switch (nv) {
    case 1: return pixel_tile_nv<1>(x, plane, C, off, ntaps, w, init, ldinit, out);
    case 2: return pixel_tile_nv<2>(x, plane, C, off, ntaps, w, init, ldinit, out);
    case 3: return pixel_tile_nv<3>(x, plane, C, off, ntaps, w, init, ldinit, out);
    default: return pixel_tile_nv<4>(x, plane, C, off, ntaps, w, init, ldinit, out);
  }
}

// Per output position: nv loads of the gradient row and 6 broadcasts of inputs feed 6*nv FMAs.
template <int NV>
void grad_weight_tile_nv(const float* const* x, int64_t xrow, int64_t xcol, const float* g,
                         int64_t ldg, int64_t rows, int64_t OW, float* acc, int64_t ldacc) {
  constexpr int P = kGradWeightPairs;
  __m512 a[P][NV];
  for (int i = 0; i < P; ++i)
    for (int j = 0; j < NV; ++j) a[i][j] = _mm512_loadu_ps(acc + i * ldacc + 16 * j);
  const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3], *x4 = x[4], *x5 = x[5];
  for (int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * OW * ldg;
    int64_t k = r * xrow;
    for (int64_t ow = 0; ow < OW; ++ow, k += xcol) {
      const float* gk = gr + ow * ldg;
      __m512 v[NV];
      for (int j = 0; j < NV; ++j) v[j] = _mm512_loadu_ps(gk + 16 * j);
      const float xs[P] = {x0[k], x1[k], x2[k], x3[k], x4[k], x5[k]};
      for (int i = 0; i < P; ++i) {
        const __m512 b = _mm512_set1_ps(xs[i]);
        for (int j = 0; j < NV; ++j) a[i][j] = _mm512_fmadd_ps(b, v[j], a[i][j]);
      }
    }
  }
  for (int i = 0; i < P; ++i)
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(acc + i * ldacc + 16 * j, a[i][j]);
}

void grad_weight_tile(int nv, const float* const* x, int64_t xrow, int64_t xcol, const float* g,
                      int64_t ldg, int64_t rows, int64_t OW, float* acc, int64_t ldacc) {
  switch (nv) {
    case 1: return grad_weight_tile_nv<1>(x, xrow, xcol, g, ldg, rows, OW, acc, ldacc);
    case 2: return grad_weight_tile_nv<2>(x, xrow, xcol, g, ldg, rows, OW, acc, ldacc);
    case 3: return grad_weight_tile_nv<3>(x, xrow, xcol, g, ldg, rows, OW, acc, ldacc);
    default: return grad_weight_tile_nv<4>(x, xrow, xcol, g, ldg, rows, OW, acc, ldacc);
  }
}

// r[0..15] (16 rows of 16) transposed in registers: r[j] becomes column j. Three rounds of
// shuffles: pairs of rows within 128-bit lanes, then pairs of pairs, then the four lanes.
void transpose16(__m512 r[16]) {
  __m512 a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // b[4i + j] lane L: rows 4i..4i+3 of column 4L + j
    const __m512d a0 = _mm512_castps_pd(a[4 * i]), a1 = _mm512_castps_pd(a[4 * i + 1]);
    const __m512d a2 = _mm512_castps_pd(a[4 * i + 2]), a3 = _mm512_castps_pd(a[4 * i + 3]);
    b[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    b[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    b[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    b[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 c0 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0x88);  // lanes 0, 2
    const __m512 c1 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0xdd);  // lanes 1, 3
    const __m512 d0 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0x88);
    const __m512 d1 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0xdd);
    r[j] = _mm512_shuffle_f32x4(c0, d0, 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(c0, d0, 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(c1, d1, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(c1, d1, 0xdd);
  }
}

// 16 x 16 blocks; rows past `rows` and columns past `cols` load as zeros (masked), and only
// columns below `cols` and rows below `rows_out` are stored.
void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd,
               int64_t rows_out) {
  for (int64_t i0 = 0; i0 < rows_out; i0 += 16) {
    const int64_t ni = std::min<int64_t>(16, rows_out - i0);
    const __mmask16 mi = static_cast<__mmask16>((1u << ni) - 1);
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      const int64_t nj = std::min<int64_t>(16, cols - j0);
      const __mmask16 mj = static_cast<__mmask16>((1u << nj) - 1);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i0 + i < rows ? _mm512_maskz_loadu_ps(mj, src + (i0 + i) * lds + j0)
                             : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t j = 0; j < nj; ++j) _mm512_mask_storeu_ps(dst + (j0 + j) * ldd + i0, mi, r[j]);
    }
  }
}

// 8 outputs at a time share each tap's weight vector (8 independent FMA chains), then one at a
// time.
void depthwise16_row(int64_t n, const float* x, int64_t xs, const int64_t* off, int ntaps,
                     const float* w, const float* init, float* out) {
  const __m512 b = _mm512_loadu_ps(init);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m512 a[8];
    for (int i = 0; i < 8; ++i) a[i] = b;
    const float* xj = x + j * xs * 16;
    for (int t = 0; t < ntaps; ++t) {
      const __m512 wv = _mm512_loadu_ps(w + t * 16);
      const float* s = xj + off[t] * 16;
      for (int i = 0; i < 8; ++i)
        a[i] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(s + i * xs * 16), a[i]);
    }
    for (int i = 0; i < 8; ++i) _mm512_storeu_ps(out + (j + i) * 16, a[i]);
  }
  for (; j < n; ++j) {
    __m512 a = b;
    const float* xj = x + j * xs * 16;
    for (int t = 0; t < ntaps; ++t)
      a = _mm512_fmadd_ps(_mm512_loadu_ps(w + t * 16), _mm512_loadu_ps(xj + off[t] * 16), a);
    _mm512_storeu_ps(out + j * 16, a);
  }
}

// R output rows at a time (independent FMA chains: one row of a 14-wide output is one vector,
// and its taps alone would wait on the FMA latency); for each 16 outputs of a row and each tap,
// the even lanes of two unaligned loads are the tap's inputs (one permute).
template <int R>
void depthwise_s2_rows(const float* x, int64_t ld, int64_t oh, int64_t OW, int64_t sh, int64_t dh,
                       int64_t dw, int KH, int KW, const float* w, float init, float* out) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  for (int64_t j0 = 0; j0 < OW; j0 += 16) {
    __m512 a[R];
    for (int r = 0; r < R; ++r) a[r] = _mm512_set1_ps(init);
    for (int kh = 0; kh < KH; ++kh) {
      const float* row = x + (oh * sh + kh * dh) * ld + 2 * j0;
      for (int kw = 0; kw < KW; ++kw) {
        const __m512 wv = _mm512_set1_ps(w[kh * KW + kw]);
        const float* s = row + kw * dw;
        for (int r = 0; r < R; ++r) {
          const float* sr = s + r * sh * ld;
          const __m512 v =
              _mm512_permutex2var_ps(_mm512_loadu_ps(sr), even, _mm512_loadu_ps(sr + 16));
          a[r] = _mm512_fmadd_ps(wv, v, a[r]);
        }
      }
    }
    const __mmask16 m = OW - j0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (OW - j0)) - 1);
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(out + (oh + r) * OW + j0, m, a[r]);
  }
}

void depthwise_s2_plane(const float* x, int64_t ld, int64_t OH, int64_t OW, int64_t sh, int64_t dh,
                        int64_t dw, int KH, int KW, const float* w, float init, float* out) {
  int64_t oh = 0;
  for (; oh + 4 <= OH; oh += 4)
    depthwise_s2_rows<4>(x, ld, oh, OW, sh, dh, dw, KH, KW, w, init, out);
  for (; oh < OH; ++oh) depthwise_s2_rows<1>(x, ld, oh, OW, sh, dh, dw, KH, KW, w, init, out);
}

// Taps in groups of 8 (a short last group repeats its last tap, not stored): each gradient
// vector is loaded once for 8 taps' products.
void depthwise16_grad(int64_t n, const float* g, const float* x, int64_t xs, const int64_t* off,
                      int ntaps, float* acc) {
  for (int t0 = 0; t0 < ntaps; t0 += 8) {
    const float* xt[8];
    __m512 a[8];
    for (int i = 0; i < 8; ++i) {
      const int t = std::min(t0 + i, ntaps - 1);
      xt[i] = x + off[t] * 16;
      a[i] = _mm512_loadu_ps(acc + t * 16);
    }
    for (int64_t j = 0; j < n; ++j) {
      const __m512 gv = _mm512_loadu_ps(g + j * 16);
      const int64_t k = j * xs * 16;
      for (int i = 0; i < 8; ++i) a[i] = _mm512_fmadd_ps(gv, _mm512_loadu_ps(xt[i] + k), a[i]);
    }
    for (int i = 0; i < std::min(8, ntaps - t0); ++i) _mm512_storeu_ps(acc + (t0 + i) * 16, a[i]);
  }
}

// 16 results per step from two (masked) loads and one two-source permute of the even lanes.
void gather2(const float* src, int64_t n, float* dst) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t left = 2 * (n - j) - 1;  // source elements this step may read
    const __mmask16 m0 = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
    const __mmask16 m1 = static_cast<__mmask16>(left >= 32   ? 0xffff
                                                : left <= 16 ? 0
                                                             : (1u << (left - 16)) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(m0, src + 2 * j);
    const __m512 hi = _mm512_maskz_loadu_ps(m1, src + 2 * j + 16);
    const __mmask16 mo = static_cast<__mmask16>(n - j >= 16 ? 0xffff : (1u << (n - j)) - 1);
    _mm512_mask_storeu_ps(dst + j, mo, _mm512_permutex2var_ps(lo, even, hi));
  }
}

}  // namespace

DirectTileF32 avx512::direct_tile_f32() { return &direct_tile; }
Gather2F32 avx512::gather2_f32() { return &gather2; }
Depthwise16RowF32 avx512::depthwise16_row_f32() { return &depthwise16_row; }
DepthwiseS2PlaneF32 avx512::depthwise_s2_plane_f32() { return &depthwise_s2_plane; }
Depthwise16GradF32 avx512::depthwise16_grad_f32() { return &depthwise16_grad; }
TransposeF32 avx512::transpose_f32() { return &transpose; }
PixelTileF32 avx512::pixel_tile_f32() { return &pixel_tile; }
GradWeightTileF32 avx512::grad_weight_tile_f32() { return &grad_weight_tile; }

}  // namespace pyengine::cpu::conv_detail

#else  // built without AVX-512 support: no direct path

namespace pyengine::cpu::conv_detail {
DirectTileF32 avx512::direct_tile_f32() { return nullptr; }
PixelTileF32 avx512::pixel_tile_f32() { return nullptr; }
TransposeF32 avx512::transpose_f32() { return nullptr; }
Gather2F32 avx512::gather2_f32() { return nullptr; }
Depthwise16RowF32 avx512::depthwise16_row_f32() { return nullptr; }
DepthwiseS2PlaneF32 avx512::depthwise_s2_plane_f32() { return nullptr; }
Depthwise16GradF32 avx512::depthwise16_grad_f32() { return nullptr; }
GradWeightTileF32 avx512::grad_weight_tile_f32() { return nullptr; }
}  // namespace pyengine::cpu::conv_detail

#endif
