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

// kOneTap: one tap at offset 0 (Winograd's products), known at compile time so that the tap
// loop and its offset loads go.
template <int NV, bool kOneTap>
void direct_tile_nv(const float* x, int64_t plane, int64_t C, const int64_t* off, int ntaps,
                    const float* w, const float* init, float* out, int64_t ldo) {
  if constexpr (kOneTap) ntaps = 1;
  __m512 a[8][NV];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < NV; ++j) a[i][j] = _mm512_set1_ps(init[i]);
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * plane;
    const float* wc = w + c * ntaps * 8;
    for (int t = 0; t < ntaps; ++t) {
      const float* s = kOneTap ? xc : xc + off[t];
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
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(out + i * ldo + 16 * j, a[i][j]);
}

void direct_tile(int nv, const float* x, int64_t plane, int64_t C, const int64_t* off, int ntaps,
                 const float* w, const float* init, float* out, int64_t ldo) {
  if (ntaps == 1 && off[0] == 0) {
    switch (nv) {
      case 1: return direct_tile_nv<1, true>(x, plane, C, off, ntaps, w, init, out, ldo);
      case 2: return direct_tile_nv<2, true>(x, plane, C, off, ntaps, w, init, out, ldo);
      default: return direct_tile_nv<3, true>(x, plane, C, off, ntaps, w, init, out, ldo);
    }
  }
  switch (nv) {
    case 1: return direct_tile_nv<1, false>(x, plane, C, off, ntaps, w, init, out, ldo);
    case 2: return direct_tile_nv<2, false>(x, plane, C, off, ntaps, w, init, out, ldo);
    default: return direct_tile_nv<3, false>(x, plane, C, off, ntaps, w, init, out, ldo);
  }
}

// Per (channel, tap): nv weight loads and 6 input broadcasts feed 6*nv FMAs. The six input
// pointers and the weights advance by one channel per pass instead of being offset by
// c * plane: measured on Zen 5, 1 thread, 128 channels, one call in isolation, 252 -> 270-272
// GFLOP/s with 9 taps (98% of the FMA peak) and 232 -> 269 with 4; in-process A/B, 2 threads,
// 8 images: 128->256 28x28 3x3 stride 2 forward 2017 -> 1911 us and grad-input 2195 -> 2086
// us, 256->512 14x14 stride 2 +4%, conv_transpose2d 128->64 16x16 k4 s2 forward +5%.
template <int NV>
void pixel_tile_nv(const float* const* x, int64_t plane, int64_t C, const int64_t* off, int ntaps,
                   const float* w, const float* init, int64_t ldinit, float* out) {
  constexpr int P = kPixelTile;
  __m512 a[P][NV];
  for (int i = 0; i < P; ++i)
    for (int j = 0; j < NV; ++j) a[i][j] = _mm512_loadu_ps(init + i * ldinit + 16 * j);
  const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3], *x4 = x[4], *x5 = x[5];
  for (int64_t c = 0; c < C; ++c) {
    for (int t = 0; t < ntaps; ++t) {
      const int64_t k = off[t];
      const float* wt = w + t * kPixelBlock;
      __m512 v[NV];
      for (int j = 0; j < NV; ++j) v[j] = _mm512_load_ps(wt + 16 * j);
      const float xs[P] = {x0[k], x1[k], x2[k], x3[k], x4[k], x5[k]};
      for (int i = 0; i < P; ++i) {
        const __m512 b = _mm512_set1_ps(xs[i]);
        for (int j = 0; j < NV; ++j) a[i][j] = _mm512_fmadd_ps(b, v[j], a[i][j]);
      }
    }
    w += ntaps * kPixelBlock;
    x0 += plane;
    x1 += plane;
    x2 += plane;
    x3 += plane;
    x4 += plane;
    x5 += plane;
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

// ---- Winograd F(2x2, 3x3) ------------------------------------------------------------
// Lanes are tiles side by side in a tile row: tile l's input columns start at iw0 + 2l, so one
// input row of 16 tiles is the run seg[k] = row[iw0 + k], k < 34, split into its even and
// odd elements (columns j = 0, 1) and those shifted by one tile (j = 2, 3).

// Lane mask of the run's elements k in [k0, k0 + 16) inside the image and used by cnt tiles.
__mmask16 run_mask(int64_t iw0, int64_t W, int cnt, int k0) {
  const int64_t lo = std::max<int64_t>(0, -iw0 - k0);
  const int64_t hi = std::min<int64_t>(16, std::min<int64_t>(W - iw0, 2 * cnt + 2) - k0);
  if (hi <= lo) return 0;
  return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

void wino_input(const float* x, int64_t plane, int64_t C, int64_t H, int64_t W, int64_t ih0,
                int64_t iw0, int cnt, float* V, int64_t ldv, int64_t ldxi) {
  const __mmask16 m0 = run_mask(iw0, W, cnt, 0), m1 = run_mask(iw0, W, cnt, 16),
                  m2 = run_mask(iw0, W, cnt, 32) & 0x3;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i next0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const __m512i next1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
  for (int64_t c = 0; c < C; ++c) {
    __m512 t[4][4];  // d B: row r, transformed column k
    for (int r = 0; r < 4; ++r) {
      const int64_t ih = ih0 + r;
      __m512 d0 = _mm512_setzero_ps(), d1 = d0, d2 = d0, d3 = d0;
      if (ih >= 0 && ih < H) {
        const float* row = x + c * plane + ih * W + iw0;
        const __m512 v0 = _mm512_maskz_loadu_ps(m0, row);
        const __m512 v1 = _mm512_maskz_loadu_ps(m1, row + 16);
        const __m512 v2 = _mm512_maskz_loadu_ps(m2, row + 32);
        d0 = _mm512_permutex2var_ps(v0, even, v1);
        d1 = _mm512_permutex2var_ps(v0, odd, v1);
        d2 = _mm512_permutex2var_ps(d0, next0, v2);
        d3 = _mm512_permutex2var_ps(d1, next1, v2);
      }
      t[r][0] = _mm512_sub_ps(d0, d2);
      t[r][1] = _mm512_add_ps(d1, d2);
      t[r][2] = _mm512_sub_ps(d2, d1);
      t[r][3] = _mm512_sub_ps(d1, d3);
    }
    float* v = V + c * ldv;
    for (int k = 0; k < 4; ++k) {
      _mm512_storeu_ps(v + (0 * 4 + k) * ldxi, _mm512_sub_ps(t[0][k], t[2][k]));
      _mm512_storeu_ps(v + (1 * 4 + k) * ldxi, _mm512_add_ps(t[1][k], t[2][k]));
      _mm512_storeu_ps(v + (2 * 4 + k) * ldxi, _mm512_sub_ps(t[2][k], t[1][k]));
      _mm512_storeu_ps(v + (3 * 4 + k) * ldxi, _mm512_sub_ps(t[1][k], t[3][k]));
    }
  }
}

// Lane mask of output columns ow0 + k, k in [k0, k0 + 16), inside OW and from cnt tiles.
__mmask16 out_mask(int64_t ow0, int64_t OW, int cnt, int k0) {
  const int64_t hi = std::min<int64_t>(16, std::min<int64_t>(OW - ow0, 2 * cnt) - k0);
  return hi <= 0 ? 0 : static_cast<__mmask16>((1u << hi) - 1u);
}

void wino_output(const float* m, int64_t ldm, int64_t ldxi, int64_t O, int cnt, const float* bias,
                 float* y, int64_t oplane, int64_t OH, int64_t OW, int64_t oh0, int64_t ow0) {
  const __mmask16 lo = out_mask(ow0, OW, cnt, 0), hi = out_mask(ow0, OW, cnt, 16);
  const int rows = static_cast<int>(std::min<int64_t>(2, OH - oh0));
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t o = 0; o < O; ++o) {
    const float* mo = m + o * ldm;
    __m512 a[4][2];  // M A: row i, output column s
    for (int i = 0; i < 4; ++i) {
      const __m512 m0 = _mm512_loadu_ps(mo + (i * 4 + 0) * ldxi);
      const __m512 m1 = _mm512_loadu_ps(mo + (i * 4 + 1) * ldxi);
      const __m512 m2 = _mm512_loadu_ps(mo + (i * 4 + 2) * ldxi);
      const __m512 m3 = _mm512_loadu_ps(mo + (i * 4 + 3) * ldxi);
      a[i][0] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
      a[i][1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    const __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
    for (int r = 0; r < rows; ++r) {
      __m512 ys[2];
      for (int s = 0; s < 2; ++s)
        ys[s] = r == 0 ? _mm512_add_ps(_mm512_add_ps(a[0][s], a[1][s]), a[2][s])
                       : _mm512_sub_ps(_mm512_sub_ps(a[1][s], a[2][s]), a[3][s]);
      float* dst = y + o * oplane + (oh0 + r) * OW + ow0;
      _mm512_mask_storeu_ps(dst, lo, _mm512_add_ps(_mm512_permutex2var_ps(ys[0], ilo, ys[1]), b));
      _mm512_mask_storeu_ps(dst + 16, hi,
                            _mm512_add_ps(_mm512_permutex2var_ps(ys[0], ihi, ys[1]), b));
    }
  }
}

void wino_grad_output(const float* gy, int64_t oplane, int64_t O, int64_t OH, int64_t OW,
                      int64_t oh0, int64_t ow0, int cnt, float* dm, int64_t ldm, int64_t ldxi) {
  const __mmask16 lo = out_mask(ow0, OW, cnt, 0), hi = out_mask(ow0, OW, cnt, 16);
  const int rows = static_cast<int>(std::min<int64_t>(2, OH - oh0));
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t o = 0; o < O; ++o) {
    __m512 e[2][4];  // e A^T: row r, transformed column k
    for (int r = 0; r < 2; ++r) {
      __m512 s0 = zero, s1 = zero;
      if (r < rows) {
        const float* row = gy + o * oplane + (oh0 + r) * OW + ow0;
        const __m512 v0 = _mm512_maskz_loadu_ps(lo, row);
        const __m512 v1 = _mm512_maskz_loadu_ps(hi, row + 16);
        s0 = _mm512_permutex2var_ps(v0, even, v1);
        s1 = _mm512_permutex2var_ps(v0, odd, v1);
      }
      e[r][0] = s0;
      e[r][1] = _mm512_add_ps(s0, s1);
      e[r][2] = _mm512_sub_ps(s0, s1);
      e[r][3] = _mm512_sub_ps(zero, s1);
    }
    float* d = dm + o * ldm;
    for (int k = 0; k < 4; ++k) {
      _mm512_storeu_ps(d + (0 * 4 + k) * ldxi, e[0][k]);
      _mm512_storeu_ps(d + (1 * 4 + k) * ldxi, _mm512_add_ps(e[0][k], e[1][k]));
      _mm512_storeu_ps(d + (2 * 4 + k) * ldxi, _mm512_sub_ps(e[0][k], e[1][k]));
      _mm512_storeu_ps(d + (3 * 4 + k) * ldxi, _mm512_sub_ps(zero, e[1][k]));
    }
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
WinoInputF32 avx512::wino_input_f32() { return &wino_input; }
WinoOutputF32 avx512::wino_output_f32() { return &wino_output; }
WinoGradOutputF32 avx512::wino_grad_output_f32() { return &wino_grad_output; }

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
WinoInputF32 avx512::wino_input_f32() { return nullptr; }
WinoOutputF32 avx512::wino_output_f32() { return nullptr; }
WinoGradOutputF32 avx512::wino_grad_output_f32() { return nullptr; }
}  // namespace pyengine::cpu::conv_detail

#endif
