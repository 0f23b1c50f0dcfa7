// The generalized 2-D convolution (contract in cpu/conv.h), built on the CPU GEMM.
//
// float32 with AVX-512: winograd_forward (F(2x2, 3x3); section "Winograd" below) takes the
// stride-1 3x3 convs where it measured faster, then direct_forward (flat padded images, no
// im2col; see the section "direct convolution" below) every forward it can; both include the
// grad-input of stride-1 convs. Otherwise three primitives, each a loop over (image, group)
// pairs around one GEMM:
//   forward_im2col      y  = Wc * im2col(x)            (any parameters; the path of conv2d)
//   adjoint_col2im      gx = col2im(Wc^T * gy)         (p's grad-input; used for every conv
//                                                       with idil > 1 and stride 1, i.e.
//                                                       transposed convs, as the adjoint of
//                                                       a conv with idil == 1; see
//                                                       via_adjoint for the other case)
//   grad_weight_im2col  gW = sum_n gy * im2col(x)^T
// Wc is the weight in canonical layout (groups, Og, Cg*KH*KW), which is the stored weight
// itself for conv2d and a repacked copy (flip / transposed storage) otherwise; weights are
// small next to the activations. Special cases inside the primitives: a 1x1, stride-1,
// unpadded conv skips im2col (the image is already the GEMM's B matrix; over a batch, the
// images' columns form one GEMM: batch_pointwise, images_pointwise); a depthwise conv
// (one channel in and out per group) skips the GEMM (each tap is a scalar times image rows);
// a W-strided image is first copied into a phase-split layout so that every tap moves
// contiguous runs.
#include "cpu/conv.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/cpu_features.h"
#include "core/parallel.h"
#include "core/workspace.h"
#include "cpu/gemm.h"
#include "cpu/isa/conv_kernels.h"
#include "cpu/isa/gemm_kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyengine::cpu {

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                      int64_t kdil, int64_t idil) {
  const int64_t span = (in - 1) * idil + 1 + pad_lo + pad_hi;  // dilated, padded input
  const int64_t kext = (k - 1) * kdil + 1;                     // dilated kernel
  if (in <= 0 || span < kext) return -1;
  return (span - kext) / stride + 1;
}

int64_t ConvParams::OH() const {
  return conv_out_size(H, KH, stride[0], pad_lo[0], pad_hi[0], kdil[0], idil[0]);
}
int64_t ConvParams::OW() const {
  return conv_out_size(W, KW, stride[1], pad_lo[1], pad_hi[1], kdil[1], idil[1]);
}

ConvParams conv_adjoint(const ConvParams& p) {
  ConvParams a = p;
  a.C = p.O;
  a.O = p.C;
  a.H = p.OH();
  a.W = p.OW();
  a.flip = !p.flip;
  a.wtrans = !p.wtrans;
  const int64_t in[2] = {p.H, p.W}, out[2] = {a.H, a.W}, k[2] = {p.KH, p.KW};
  for (int d = 0; d < 2; ++d) {
    const int64_t kext = (k[d] - 1) * p.kdil[d];
    a.stride[d] = p.idil[d];
    a.idil[d] = p.stride[d];
    a.pad_lo[d] = kext - p.pad_lo[d];
    // Chosen so that the adjoint's output length is exactly in[d]:
    // (out-1)*idil' + 1 + pad_lo' + pad_hi' - (kext+1) == (in-1)*stride'.
    a.pad_hi[d] = (in[d] - 1) * a.stride[d] + kext - (out[d] - 1) * a.idil[d] - a.pad_lo[d];
  }
  return a;
}

namespace {

// ---- workspace ---------------------------------------------------------------
// A per-thread, 64-byte aligned scratch buffer that grows and is reused (fresh
// pages are expensive on our VMs): hot paths do not allocate.
using Scratch = ::pyengine::Workspace;  // csrc/core/workspace.h

thread_local Scratch t_col;    // the columns of one (image, group): Cg*KH*KW x OH*OW
thread_local Scratch t_wpack;  // canonical weight, written by the calling thread
thread_local Scratch t_wacc;   // grad-weight partial sums, one slice per team member
thread_local Scratch t_split;  // one (image, group) in phase-split layout (strided convs)
thread_local Scratch t_batch;  // a batch as the columns of one matrix (batch_pointwise)

// ---- geometry ----------------------------------------------------------------
struct Geo {
  int64_t Cg, Og, KK, CKK, OH, OW, OHW, HW;
};

Geo geo(const ConvParams& p) {
  Geo q;
  q.Cg = p.C / p.groups;
  q.Og = p.O / p.groups;
  q.KK = p.KH * p.KW;
  q.CKK = q.Cg * q.KK;
  q.OH = p.OH();
  q.OW = p.OW();
  q.OHW = q.OH * q.OW;
  q.HW = p.H * p.W;
  return q;
}

bool unit(const int64_t v[2]) { return v[0] == 1 && v[1] == 1; }

// 1x1, stride 1, no padding, no input dilation: the image is the GEMM operand.
bool pointwise(const ConvParams& p) {
  return p.KH == 1 && p.KW == 1 && unit(p.stride) && unit(p.idil) && p.pad_lo[0] == 0 &&
         p.pad_lo[1] == 0 && p.pad_hi[0] == 0 && p.pad_hi[1] == 0;
}

// Index into the stored weight of Wc(g, o, c, kh, kw).
int64_t widx(const ConvParams& p, const Geo& q, int64_t g, int64_t o, int64_t c, int64_t kh,
             int64_t kw) {
  if (p.flip) {
    kh = p.KH - 1 - kh;
    kw = p.KW - 1 - kw;
  }
  const int64_t k = kh * p.KW + kw;
  return p.wtrans ? ((g * q.Cg + c) * q.Og + o) * q.KK + k : ((g * q.Og + o) * q.Cg + c) * q.KK + k;
}

// Visits every (g, o, c) of the weight in 16 x 16 tiles of (o, c), so that a transposed
// layout (wtrans) is read and written a cache line at a time rather than a stride apart.
template <typename F>
void for_weight_tiles(const ConvParams& p, const Geo& q, F&& fn) {
  constexpr int64_t kTile = 16;
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t o0 = 0; o0 < q.Og; o0 += kTile)
      for (int64_t c0 = 0; c0 < q.Cg; c0 += kTile)
        for (int64_t o = o0; o < std::min(o0 + kTile, q.Og); ++o)
          for (int64_t c = c0; c < std::min(c0 + kTile, q.Cg); ++c) fn(g, o, c);
}

// The weight as (groups, Og, Cg*KH*KW) row-major: w itself when already so, else a copy in
// the calling thread's workspace.
template <typename T>
const T* canonical_weight(const ConvParams& p, const Geo& q, const T* w) {
  if (!p.flip && !p.wtrans) return w;
  T* dst = t_wpack.get<T>(p.groups * q.Og * q.CKK);
  for_weight_tiles(p, q, [&](int64_t g, int64_t o, int64_t c) {
    T* d = dst + ((g * q.Og + o) * q.Cg + c) * q.KK;
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw) d[kh * p.KW + kw] = w[widx(p, q, g, o, c, kh, kw)];
  });
  return dst;
}

// ---- im2col / col2im -----------------------------------------------------------
// With idil == 1, tap offset `off` and stride s, output positions [lo, hi) read a real
// input element (0 <= o*s + off < in); the others read padding.
void valid_range(int64_t in, int64_t out, int64_t s, int64_t off, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = in - 1 - off >= 0 ? (in - 1 - off) / s + 1 : 0;
  lo = std::min(lo, out);
  hi = std::min(std::max(hi, lo), out);
}

// The input element at dilated coordinate q, or -1 for an inserted zero or padding.
int64_t source(int64_t q, int64_t idil, int64_t in) {
  if (q < 0 || q % idil != 0) return -1;
  q /= idil;
  return q < in ? q : -1;
}

// Output rows [oh0, oh1) form one chunk of columns: a (Cg*KH*KW) x ((oh1-oh0)*OW) matrix.
// Chunks bound the column buffer of large images (see chunk_rows).
struct Rows {
  int64_t oh0, oh1;
};

// How an image (Cg, H, W) of one (image, group) is laid out for the column walk. Plain:
// rows of W. Phase-split (for stride sw > 1 along W): each row stored as sw phases of
// wp = ceil(W / sw) elements, element iw at [iw % sw][iw / sw]; a tap then reads or writes
// a contiguous run (vectorizable copies / adds) instead of every sw-th element.
struct Layout {
  bool split = false;
  int64_t wp = 0;       // phase length (split)
  int64_t row_len = 0;  // elements per image row: W, or sw * wp
};

Layout plain_layout(const ConvParams& p) { return {false, p.W, p.W}; }

// Phase-split pays when W is strided and not dilated (the runs are then contiguous).
bool use_split(const ConvParams& p) { return p.stride[1] > 1 && p.idil[1] == 1; }

Layout split_layout(const ConvParams& p) {
  const int64_t wp = (p.W + p.stride[1] - 1) / p.stride[1];
  return {true, wp, wp * p.stride[1]};
}

// dst (rows x sw x wp) = the phases of x (rows x W); entries past W are zero.
template <typename T>
void split_phases(const T* x, int64_t rows, int64_t W, int64_t sw, int64_t wp, T* dst,
                  [[maybe_unused]] int nt) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * W;
    if (sw == 2) {  // the common case, as one pass of pair loads the compiler can vectorize
      T* __restrict__ d0 = dst + r * 2 * wp;
      T* __restrict__ d1 = d0 + wp;
      const int64_t pairs = W / 2;
      for (int64_t t = 0; t < pairs; ++t) {
        d0[t] = xr[2 * t];
        d1[t] = xr[2 * t + 1];
      }
      if (W % 2) {
        d0[pairs] = xr[W - 1];
        d1[pairs] = T(0);
      }
      continue;
    }
    for (int64_t ph = 0; ph < sw; ++ph) {
      T* d = dst + (r * sw + ph) * wp;
      int64_t t = 0;
      for (int64_t iw = ph; iw < W; iw += sw, ++t) d[t] = xr[iw];
      for (; t < wp; ++t) d[t] = T(0);
    }
  }
}

// x (rows x W) = the image whose phases src holds (the inverse of split_phases).
template <typename T>
void merge_phases(const T* src, int64_t rows, int64_t W, int64_t sw, int64_t wp, T* x,
                  [[maybe_unused]] int nt) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict__ xr = x + r * W;
    if (sw == 2) {
      const T* __restrict__ s0 = src + r * 2 * wp;
      const T* __restrict__ s1 = s0 + wp;
      const int64_t pairs = W / 2;
      for (int64_t t = 0; t < pairs; ++t) {
        xr[2 * t] = s0[t];
        xr[2 * t + 1] = s1[t];
      }
      if (W % 2) xr[W - 1] = s0[pairs];
      continue;
    }
    for (int64_t ph = 0; ph < sw; ++ph) {
      const T* s = src + (r * sw + ph) * wp;
      int64_t t = 0;
      for (int64_t iw = ph; iw < W; iw += sw, ++t) xr[iw] = s[t];
    }
  }
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// One tap's row segments: output columns [lo, hi) read real input elements (idil == 1);
// element ow of a segment is img_row[run + ow] (plain or phase-split layout, idil == 1), or
// found by source(ow*sw + off) (idil > 1).
struct Seg {
  int64_t lo, hi, off, run, sw;
  int64_t tap;  // kh*KW + kw
};

// Walks the column matrix of one (image, group) for output rows r and calls
// row_fn(col_row_ptr, img_row_ptr_or_null, seg) for every output row segment. im2col and
// col2im are this walk with a gather or a scatter-add. Tap t's rows start at col + t*ld
// (ld = 0: every tap walks the same rows, which the depthwise loops use). Channels are split
// over nt threads (each channel's image plane and column rows are its own).
template <typename T, typename Src, typename Fn>
void walk_columns(const ConvParams& p, const Geo& q, Rows r, Layout lay, Src* img, T* col,
                  int64_t ld, [[maybe_unused]] int nt, Fn&& row_fn) {
  const int64_t sh = p.stride[0], sw = p.stride[1];
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t c = 0; c < q.Cg; ++c) {
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      const int64_t offh = kh * p.kdil[0] - p.pad_lo[0];
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        Seg seg{0, 0, kw * p.kdil[1] - p.pad_lo[1], 0, sw, kh * p.KW + kw};
        if (p.idil[1] == 1) {
          valid_range(p.W, q.OW, sw, seg.off, seg.lo, seg.hi);
          if (lay.split) {  // phase off mod sw, starting at element floor(off / sw)
            const int64_t base = floor_div(seg.off, sw);
            seg.run = (seg.off - base * sw) * lay.wp + base;
          } else {
            seg.run = seg.off;  // sw == 1 (use_split covers every sw > 1)
          }
        }
        T* rows = col + ((c * p.KH + kh) * p.KW + kw) * ld;
        if (p.idil[0] == 1) {  // no division per row
          for (int64_t oh = r.oh0, ih = r.oh0 * sh + offh; oh < r.oh1; ++oh, ih += sh) {
            const bool in = ih >= 0 && ih < p.H;
            row_fn(rows + (oh - r.oh0) * q.OW, in ? img + (c * p.H + ih) * lay.row_len : nullptr,
                   seg);
          }
          continue;
        }
        for (int64_t oh = r.oh0; oh < r.oh1; ++oh) {
          const int64_t ih = source(oh * sh + offh, p.idil[0], p.H);
          row_fn(rows + (oh - r.oh0) * q.OW, ih < 0 ? nullptr : img + (c * p.H + ih) * lay.row_len,
                 seg);
        }
      }
    }
  }
}

// col = im2col(img) for output rows r: img is (Cg, H, W) of one image and group in layout
// lay; col is overwritten. Rows are short (OW), so plain loops (vectorized by the compiler)
// beat memcpy / fill calls.
template <typename T>
void im2col(const ConvParams& p, const Geo& q, Rows r, Layout lay, const T* img, T* col, int nt) {
  const int64_t OW = q.OW;
  const int64_t idw = p.idil[1];
  const int64_t ld = (r.oh1 - r.oh0) * OW;
  walk_columns(p, q, r, lay, img, col, ld, nt, [&](T* d, const T* s, const Seg& g) {
    if (s == nullptr) {
      for (int64_t ow = 0; ow < OW; ++ow) d[ow] = T(0);
    } else if (idw == 1) {
      T* __restrict__ dst = d;
      const T* __restrict__ run = s + g.run;
      for (int64_t ow = 0; ow < g.lo; ++ow) dst[ow] = T(0);
#pragma GCC ivdep
      for (int64_t ow = g.lo; ow < g.hi; ++ow) dst[ow] = run[ow];
      for (int64_t ow = g.hi; ow < OW; ++ow) dst[ow] = T(0);
    } else {
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t iw = source(ow * g.sw + g.off, idw, p.W);
        d[ow] = iw < 0 ? T(0) : s[iw];
      }
    }
  });
}

// img += col2im(col) for output rows r: the adjoint of im2col; img (Cg, H, W) in layout lay
// is accumulated into.
template <typename T>
void col2im(const ConvParams& p, const Geo& q, Rows r, Layout lay, const T* col, T* img, int nt) {
  const int64_t OW = q.OW;
  const int64_t idw = p.idil[1];
  const int64_t ld = (r.oh1 - r.oh0) * OW;
  walk_columns(p, q, r, lay, img, const_cast<T*>(col), ld, nt, [&](const T* d, T* s, const Seg& g) {
    if (s == nullptr) return;
    if (idw == 1) {
      T* run = s + g.run;
      for (int64_t ow = g.lo; ow < g.hi; ++ow) run[ow] += d[ow];
    } else {
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t iw = source(ow * g.sw + g.off, idw, p.W);
        if (iw >= 0) s[iw] += d[ow];
      }
    }
  });
}

// ---- depthwise ------------------------------------------------------------------
// With one input and one output channel per group (depthwise convs) the GEMM of an item would
// have a single row: instead each tap's scalar weight is applied to whole image rows, with no
// column buffer. Same walk, same segments as im2col / col2im.
bool depthwise(const Geo& q) { return q.Cg == 1 && q.Og == 1; }

// out (OH x OW) += sum over taps of wk[tap] * the tap's input rows.
template <typename T>
void dw_forward(const ConvParams& p, const Geo& q, Layout lay, const T* img, const T* wk, T* out) {
  const int64_t idw = p.idil[1], OW = q.OW;
  walk_columns(p, q, Rows{0, q.OH}, lay, img, out, 0, 1, [&](T* d, const T* s, const Seg& g) {
    if (s == nullptr) return;
    const T wv = wk[g.tap];
    if (idw == 1) {
      const T* run = s + g.run;
      for (int64_t ow = g.lo; ow < g.hi; ++ow) d[ow] += wv * run[ow];
    } else {
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t iw = source(ow * g.sw + g.off, idw, p.W);
        if (iw >= 0) d[ow] += wv * s[iw];
      }
    }
  });
}

// img (in layout lay) += the adjoint of dw_forward applied to gout (OH x OW).
template <typename T>
void dw_adjoint(const ConvParams& p, const Geo& q, Layout lay, const T* gout, const T* wk, T* img) {
  const int64_t idw = p.idil[1], OW = q.OW;
  walk_columns(p, q, Rows{0, q.OH}, lay, img, const_cast<T*>(gout), 0, 1,
               [&](const T* d, T* s, const Seg& g) {
                 if (s == nullptr) return;
                 const T wv = wk[g.tap];
                 if (idw == 1) {
                   T* run = s + g.run;
                   for (int64_t ow = g.lo; ow < g.hi; ++ow) run[ow] += wv * d[ow];
                 } else {
                   for (int64_t ow = 0; ow < OW; ++ow) {
                     const int64_t iw = source(ow * g.sw + g.off, idw, p.W);
                     if (iw >= 0) s[iw] += wv * d[ow];
                   }
                 }
               });
}

// gk[tap] += sum over output positions of gout * the tap's input.
template <typename T>
void dw_grad_weight(const ConvParams& p, const Geo& q, Layout lay, const T* img, const T* gout,
                    T* gk) {
  const int64_t idw = p.idil[1], OW = q.OW;
  walk_columns(p, q, Rows{0, q.OH}, lay, img, const_cast<T*>(gout), 0, 1,
               [&](const T* d, const T* s, const Seg& g) {
                 if (s == nullptr) return;
                 T acc = T(0);
                 if (idw == 1) {
                   const T* run = s + g.run;
                   for (int64_t ow = g.lo; ow < g.hi; ++ow) acc += d[ow] * run[ow];
                 } else {
                   for (int64_t ow = 0; ow < OW; ++ow) {
                     const int64_t iw = source(ow * g.sw + g.off, idw, p.W);
                     if (iw >= 0) acc += d[ow] * s[iw];
                   }
                 }
                 gk[g.tap] += acc;
               });
}

// Output rows per chunk of columns. Measured on Zen 5 (64->64 3x3 at 56x56, 7 MiB of
// columns per image): with 2 threads (one image each) 2-4 MiB chunks ran 10% faster than
// whole-image columns (two 7 MiB buffers and the GEMMs' B panels crowd L3); with 1 thread
// they ran 4% slower, and L2-sized chunks (<= 512 KiB) were slower in both (the GEMM then
// packs narrow B panels). Default: 2 MiB per thread, at least ~1024 GEMM columns.
// PYENGINE_CONV_CHUNK_BYTES sets the target exactly (tests use it to force 1-row chunks).
int64_t chunk_rows(const Geo& q, int64_t elem_size) {
  const int64_t row_bytes = std::max<int64_t>(q.CKK * q.OW * elem_size, 1);
  int64_t rows;
  if (const char* e = std::getenv("PYENGINE_CONV_CHUNK_BYTES")) {  // exact, for tests
    rows = std::max<int64_t>(std::atoll(e), 1) / row_bytes;
  } else {
    rows = (int64_t(2) << 20) / row_bytes;
    rows = std::max<int64_t>(rows, (1024 + q.OW - 1) / q.OW);  // at least ~1024 GEMM columns
  }
  return std::min<int64_t>(std::max<int64_t>(rows, 1), q.OH);
}

// ---- threads -------------------------------------------------------------------
// Team size for a loop over `items` (image, group) pairs: one item per thread at a time
// when the items split evenly enough over the threads (each GEMM inside then runs on one
// thread: no barriers, no shared panels), else 1 (the GEMMs use the threads). "Evenly
// enough": a multiple of the thread count, or at least 4 items per thread (3 items on 2
// threads would leave one thread idle a third of the time).
int team_size(int64_t items) {
  const int nt = get_num_threads();
#ifdef _OPENMP
  if (nt > 1 && items >= nt && (items % nt == 0 || items >= 4 * nt) && !omp_in_parallel())
    return nt;
#endif
  (void)items;
  (void)nt;
  return 1;
}

// Threads for the data movement inside one item (im2col, col2im, phase splits) when the
// items run one after another: the GEMMs then use every thread, and so should the copies
// around them (a batch of 1 would otherwise copy on one core). Tiny items stay serial.
int inner_threads(int team, int64_t elems) {
  const int nt = get_num_threads();
#ifdef _OPENMP
  if (team == 1 && nt > 1 && elems >= (int64_t(1) << 16) && !omp_in_parallel()) return nt;
#endif
  (void)team;
  (void)elems;
  (void)nt;
  return 1;
}

// body(item, member) for item in [0, items), member < team. Exceptions (only bad_alloc)
// cannot leave an OpenMP region: the first is carried out and rethrown.
template <typename F>
void for_items(int64_t items, [[maybe_unused]] int team, F&& body) {
#ifdef _OPENMP
  if (team > 1) {
    std::atomic<bool> failed{false};
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t i = 0; i < items; ++i) {
      if (failed.load(std::memory_order_relaxed)) continue;
      try {
        body(i, omp_get_thread_num());
      } catch (...) {
        failed.store(true);
      }
    }
    if (failed.load()) throw std::bad_alloc();
    return;
  }
#endif
  for (int64_t i = 0; i < items; ++i) body(i, 0);
}

// 1x1 convs whose images are short rows for the GEMM (over 10% of each image's columns idle in
// the kernel's 16-column steps: 7x7 = 49 columns computed as 64) run their forward and
// grad-input as one GEMM over the batch's columns (pointwise_columns), and their grad-weight
// as one GEMM with K = N*HW over the images gathered as the columns of one (channels, N*HW)
// matrix, instead of N GEMMs with K = HW. Both pay from C*O = 256^2. Measured on Zen 5, 2
// threads, 8 images of 7x7, fwd+bwd GFLOP/s, gathered / per image: 2048->512 387 / 270,
// 512->2048 393 / 307, 256->256 343 / 302, 128->512 327 / 292; but 128->128 206 / 219, 64->64
// 101 / 123. Forward and grad-input over the columns vs gathered (GFLOP/s, same minutes):
// 256->256 346 / 256 and 348 / 284, 128->512 367 / 282 and 273 / 216, equal at 2048->512 and
// 512->2048. At 14x14 (6% idle) the columns lose to per-image GEMMs: 256->256 forward 378 /
// 432, 128->128 283 / 391 (and by more to pointwise_images below: 568 / 447 us at 256->256,
// 741 / 463 us at 128->128 28x28).
bool batch_pointwise(const ConvParams& p, const Geo& q) {
  const int64_t steps = (q.HW + 15) / 16 * 16;
  return pointwise(p) && p.groups == 1 && p.N > 1 && 10 * q.HW < 9 * steps &&
         p.C * p.O >= 256 * 256;
}

// 1x1 convs that batch_pointwise leaves, with images enough to split evenly over the threads
// (team_size): each thread runs the column GEMM of its own images alone (pointwise_images)
// instead of one GEMM per image. A is then packed once per thread, not once per image; a B
// micro-panel may span two images (14x14: 4 images' 784 columns make 24.5 panels, not 4 x
// 6.125 with a mostly idle last one each); each panel is packed just before its tiles; the
// bias is the tiles' starting value, not a pass over them. Measured on Zen 5, 2 threads,
// in-process A/B, forward / grad-input: 8x256->256 14x14 1.08-1.10x / 1.10x (16 images:
// 1.10x / 1.11x), 1024->256 14x14 1.07-1.08x / 1.07-1.18x, 128->128 28x28 1.03-1.05x / 1.03x,
// 64->64 56x56 1.02x / 1.05x, 256->64 56x56 1.02x / 0.98x. At 7x7 the shared columns stay
// ahead: there this would run at 0.87-0.98x.
bool images_pointwise(const ConvParams& p, const Geo& q) {
  return pointwise(p) && p.groups == 1 && p.C > 0 && p.O > 0 && !batch_pointwise(p, q) &&
         team_size(p.N) > 1;
}

// N images of ch channels (HW values each) to the columns of one matrix (to_columns), or back:
// columns[c*N*HW + n*HW + s] = images[(n*ch + c)*HW + s]; dst overwritten.
template <typename T>
void batch_layout(int64_t N, int64_t ch, int64_t HW, const T* src, T* dst, bool to_columns) {
  const int nt = inner_threads(1, N * ch * HW);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < ch; ++c)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t image = (n * ch + c) * HW, column = (c * N + n) * HW;
      const T* from = src + (to_columns ? image : column);
      std::copy(from, from + HW, dst + (to_columns ? column : image));
    }
}

// Images per gathered chunk: the two gathered matrices (ch channels in all) stay within 4M
// elements (PYENGINE_CONV_BATCH_ELEMS overrides it, for tests), so the per-thread workspace
// stays bounded whatever the batch.
int64_t batch_chunk(const Geo& q, int64_t N, int64_t ch) {
  int64_t cap = int64_t(1) << 22;
  if (const char* e = std::getenv("PYENGINE_CONV_BATCH_ELEMS"); e != nullptr && e[0] != '\0')
    cap = std::max<int64_t>(1, std::atoll(e));
  return std::clamp<int64_t>(cap / std::max<int64_t>(1, ch * q.HW), 1, N);
}

// fn(n0, m, buf) for the chunks of m images from n0 (batch_chunk); buf: the calling thread's
// workspace for ch channels of m*HW columns.
template <typename T, typename F>
void for_batch_chunks(const ConvParams& p, const Geo& q, int64_t ch, F&& fn) {
  const int64_t nb = batch_chunk(q, p.N, ch);
  T* buf = t_batch.get<T>(ch * nb * q.HW);
  for (int64_t n0 = 0; n0 < p.N; n0 += nb) fn(n0, std::min(nb, p.N - n0), buf);
}

// ---- 1x1 convs over the batch's columns -------------------------------------------------
// out[o, j] = sum_c op(A)(o, c) * in[c, j] + bias[o] over the batch's columns j = n*HW + s:
// in[c, j] = in[(n*in_ch + c)*HW + s] and out[o, j] = out[(n*out_ch + o)*HW + s], overwritten;
// op(A) is A (out_ch x in_ch, rows lda apart) or with transA A^T (A in_ch x out_ch); bias
// per output channel, may be null. One GEMM over every column on the GEMM's own microkernel:
// B micro-panels are packed straight from the images (a panel may span several) and tiles
// whose columns lie in one image go straight into out, so there is no gathered copy and no
// mostly empty panel per image (7x7: 49 columns, 1 17/32 panels). The team splits the rows
// (whole MR blocks) and packs each K slice's panels together; the calling thread's workspace
// holds packed A and one K slice of every column (at most the input's size).
template <typename T>
struct ColumnGemm {
  const gemm_detail::KernelDesc<T>& d;
  int64_t HW, in_ch, out_ch, J;  // J = N*HW columns

  // fn(x, n, s, len) for the runs of columns [j0, j0 + w) inside one image: columns
  // j0 + x .. j0 + x + len - 1 are positions s .. s + len - 1 of image n.
  template <typename F>
  void for_runs(int64_t j0, int64_t w, F&& fn) const {
    for (int64_t x = 0; x < w;) {
      const int64_t j = j0 + x, n = j / HW, s = j % HW, len = std::min(w - x, HW - s);
      fn(x, n, s, len);
      x += len;
    }
  }

  // Micro-panel pan of rows [k0, k0 + kc) of in (kc x NR, zero past the last column).
  void pack_b(const T* in, int64_t pan, int64_t k0, int64_t kc, T* dst) const {
    const int64_t j0 = pan * d.nr, w = std::min<int64_t>(d.nr, J - j0);
    const int64_t n = j0 / HW, s0 = j0 % HW;
    if (s0 + w <= HW)  // one image: the ISA's packer
      return gemm_detail::pack_panel(d, false, kc, static_cast<int>(w),
                                     in + (n * in_ch + k0) * HW + s0, HW, true, dst);
    const int64_t NR = d.nr;  // a local: dst may not alias it, so the copies vectorize
    std::fill(dst, dst + kc * NR, T(0));
    for_runs(j0, w, [&](int64_t x, int64_t m, int64_t s, int64_t len) {
      const T* src = in + (m * in_ch + k0) * HW + s;
      for (int64_t k = 0; k < kc; ++k)
        std::copy(src + k * HW, src + k * HW + len, dst + k * NR + x);
    });
  }

  // Tile (row block rb, panel pan) of a K slice (first / last: the first / last slice). A tile
  // that is not straight into out goes through edge (MR x NR): with keep, edge is this tile's
  // own across the slices, accumulates them and goes into out after the last (one scatter
  // instead of one per slice: 2-5% at 2048->512 7x7); else it is added into out every slice.
  void tile(const T* ap, const T* bp, int64_t kc, int64_t rb, int64_t pan, bool first, bool last,
            bool keep, const T* bias, T* out, T* edge) const {
    const int64_t MR = d.mr, NR = d.nr, o0 = rb * MR;
    const int64_t rows = std::min(MR, out_ch - o0), j0 = pan * NR, w = std::min(NR, J - j0);
    const int64_t n = j0 / HW, s0 = j0 % HW;
    if (rows == MR && w == NR && s0 + w <= HW) {  // inside one image: straight into out
      T* c = out + (n * out_ch + o0) * HW + s0;
      // The bias is added after the slices' sum, as the GEMM's epilogue adds it (the same bits
      // as a GEMM per image): with one slice it is C's start value (b + sum rounds once either
      // way), with several it is added after the last.
      const bool seed = first && last && bias != nullptr;
      if (seed)
        for (int64_t i = 0; i < MR; ++i) std::fill(c + i * HW, c + i * HW + NR, bias[o0 + i]);
      d.kernel(kc, ap, bp, c, HW, T(1), first && !seed ? T(0) : T(1));
      if (last && !first && bias != nullptr)
        for (int64_t i = 0; i < MR; ++i)
          for (int64_t t = 0; t < NR; ++t) c[i * HW + t] += bias[o0 + i];
      return;
    }
    // A last panel of at most NR/2 live columns takes the half-width kernel where there is one.
    const auto kern = 2 * w <= NR && d.kernel_half != nullptr ? d.kernel_half : d.kernel;
    kern(kc, ap, bp, edge, NR, T(1), first || !keep ? T(0) : T(1));
    if (keep && !last) return;
    const bool init = keep || first;  // out not yet written by this tile
    for_runs(j0, w, [&](int64_t x, int64_t m, int64_t s, int64_t len) {
      for (int64_t i = 0; i < rows; ++i) {
        const T b = bias != nullptr ? bias[o0 + i] : T(0);
        const T* e = edge + i * NR + x;
        T* c = out + (m * out_ch + o0 + i) * HW + s;
        for (int64_t t = 0; t < len; ++t) c[t] = (init ? b : c[t]) + e[t];
      }
    });
  }
};

thread_local Scratch t_cols;   // packed A and one K slice of packed B panels (alone: one panel)
thread_local Scratch t_edges;  // a team member's edge tiles

// Sizes of the packed operands of a column GEMM (K = cg.in_ch): A (every row block, all of K;
// B panels start 64-byte aligned after it) and the B panels of one K slice. K is sliced as the
// GEMM slices it (gemm_detail::slice_depth), so each output element is the same sum in the
// same order as in a GEMM per image.
template <typename T>
struct ColumnPacks {
  int64_t mr, nr, nrb, npan, kc_max, asize;
  bool keep;  // several K slices: one edge tile per (row block, panel), kept across them
  explicit ColumnPacks(const ColumnGemm<T>& cg)
      : mr(cg.d.mr),
        nr(cg.d.nr),
        nrb((cg.out_ch + mr - 1) / mr),
        npan((cg.J + nr - 1) / nr),
        kc_max(gemm_detail::slice_depth(cg.in_ch, cg.d.kc)),
        asize((nrb * mr * cg.in_ch + 15) / 16 * 16),
        keep(cg.in_ch > kc_max) {}
  // A and the panels of one K slice (shared: every panel; alone: one).
  int64_t elems(bool shared) const { return asize + (shared ? npan : 1) * nr * kc_max; }
  // Edge tiles of a member with `rbs` row blocks (only tiles not straight into out use theirs,
  // at most the member's share of out); without keep one, reused.
  int64_t edge_elems(int64_t rbs) const { return (keep ? rbs * npan : 1) * mr * nr; }
};

// Row blocks [rb0, rb1) of member tid of nth over nrb.
inline void member_rows(int64_t nrb, int tid, int nth, int64_t& rb0, int64_t& rb1) {
  rb0 = nrb * tid / nth;
  rb1 = nrb * (tid + 1) / nth;
}

// Member tid of nth runs the column GEMM cg (K = cg.in_ch) on its row blocks (member_rows): it
// packs its rows of A, its share of each K slice's B panels (a barrier after each packing when
// nth > 1: the panels are shared), then its tiles. apack / bpack: the team's buffers; edges:
// the member's own (cp.edge_elems).
template <typename T>
void column_gemm_member(const ColumnGemm<T>& cg, const ColumnPacks<T>& cp, bool transA, const T* A,
                        int64_t lda, const T* in, const T* bias, T* out, T* apack, T* bpack,
                        T* edges, int tid, int nth) {
  const gemm_detail::KernelDesc<T>& d = cg.d;
  const int64_t MR = d.mr, NR = d.nr, K = cg.in_ch, npan = cp.npan;
  const bool keep = cp.keep;
  int64_t rb0, rb1;
  member_rows(cp.nrb, tid, nth, rb0, rb1);
  for (int64_t rb = rb0; rb < rb1; ++rb) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, cg.out_ch - rb * MR));
    const T* src = transA ? A + rb * MR : A + rb * MR * lda;  // op(A)(o, c)
    gemm_detail::pack_panel(d, true, K, rows, src, lda, transA, apack + rb * MR * K);
  }
  for (int64_t k0 = 0; k0 < K; k0 += cp.kc_max) {
    const int64_t kc = std::min(cp.kc_max, K - k0);
    if (nth > 1) {  // the team's panels of this slice, packed before anyone reads them
#pragma omp barrier
      for (int64_t pan = npan * tid / nth; pan < npan * (tid + 1) / nth; ++pan)
        cg.pack_b(in, pan, k0, kc, bpack + pan * NR * kc);
#pragma omp barrier
    }
    for (int64_t pan = 0; pan < npan; ++pan) {
      const T* bp = bpack + pan * NR * kc;
      if (nth == 1) {  // alone: each panel packed just before its tiles, into one buffer
        cg.pack_b(in, pan, k0, kc, bpack);
        bp = bpack;
      }
      for (int64_t rb = rb0; rb < rb1; ++rb)
        cg.tile(apack + rb * MR * K + k0 * MR, bp, kc, rb, pan, k0 == 0, k0 + kc >= K, keep, bias,
                out, keep ? edges + ((rb - rb0) * npan + pan) * MR * NR : edges);
    }
  }
}

// The batch's columns as one GEMM, the team splitting its rows (whole MR blocks) and sharing
// the packed panels (the calling thread's workspace holds them).
template <typename T>
void pointwise_columns(const ConvParams& p, const Geo& q, bool transA, const T* A, int64_t lda,
                       const T* in, int64_t in_ch, int64_t out_ch, const T* bias, T* out) {
  const ColumnGemm<T> cg{gemm_detail::active_kernel<T>(), q.HW, in_ch, out_ch, p.N * q.HW};
  const ColumnPacks<T> cp(cg);
  T* apack = t_cols.get<T>(cp.elems(true));
  T* bpack = apack + cp.asize;
  int nt = get_num_threads();
#ifdef _OPENMP
  if (omp_in_parallel()) nt = 1;
#endif
  nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, cp.nrb)));
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
#else
    const int tid = 0, nth = 1;
#endif
    int64_t rb0, rb1;
    member_rows(cp.nrb, tid, nth, rb0, rb1);
    T* edges = nullptr;
    try {  // the one allocation inside the region; bad_alloc is carried out and rethrown
      edges = t_edges.get<T>(cp.edge_elems(rb1 - rb0));
    } catch (...) {
      failed.store(true);
    }
#pragma omp barrier
    if (!failed.load())
      column_gemm_member(cg, cp, transA, A, lda, in, bias, out, apack, bpack, edges, tid, nth);
  }
  if (failed.load()) throw std::bad_alloc();
}

// The same, each thread running the column GEMM of its own images alone (all rows): A packed
// by each thread, no shared panels, no barriers.
template <typename T>
void pointwise_images(const ConvParams& p, const Geo& q, bool transA, const T* A, int64_t lda,
                      const T* in, int64_t in_ch, int64_t out_ch, const T* bias, T* out, int team) {
  const gemm_detail::KernelDesc<T> d = gemm_detail::active_kernel<T>();
  for_items(team, team, [&](int64_t member, int) {
    const int64_t n0 = p.N * member / team, n1 = p.N * (member + 1) / team;
    const ColumnGemm<T> cg{d, q.HW, in_ch, out_ch, (n1 - n0) * q.HW};
    const ColumnPacks<T> cp(cg);
    T* apack = t_cols.get<T>(cp.elems(false));
    T* edges = t_edges.get<T>(cp.edge_elems(cp.nrb));
    column_gemm_member(cg, cp, transA, A, lda, in + n0 * in_ch * q.HW, bias,
                       out + n0 * out_ch * q.HW, apack, apack + cp.asize, edges, 0, 1);
  });
}

// ---- primitives ----------------------------------------------------------------
// The image (Cg, H, W) of one (image, group) as im2col reads it: itself, or a phase-split
// copy in this thread's workspace when W is strided.
template <typename T>
std::pair<Layout, const T*> source_image(const ConvParams& p, const Geo& q, const T* img, int nt) {
  if (!use_split(p)) return {plain_layout(p), img};
  const Layout lay = split_layout(p);
  T* dst = t_split.get<T>(q.Cg * p.H * lay.row_len);
  split_phases(img, q.Cg * p.H, p.W, p.stride[1], lay.wp, dst, nt);
  return {lay, dst};
}

// y = Wc * im2col(x) + bias; y overwritten.
template <typename T>
void forward_im2col(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const Geo q = geo(p);
  const T* A = canonical_weight(p, q, w);
  if (batch_pointwise(p, q)) return pointwise_columns(p, q, false, A, q.CKK, x, p.C, p.O, bias, y);
  if (images_pointwise(p, q))
    return pointwise_images(p, q, false, A, q.CKK, x, p.C, p.O, bias, y, team_size(p.N));
  const bool direct = pointwise(p);
  const int64_t items = p.N * p.groups;
  const int64_t step = direct ? q.OH : chunk_rows(q, sizeof(T));
  const int team = team_size(items);
  const int inner = inner_threads(team, q.CKK * q.OHW);
  for_items(items, team, [&](int64_t item, int) {
    const int64_t n = item / p.groups, g = item % p.groups;
    const T* img = x + (n * p.C + g * q.Cg) * q.HW;
    T* out = y + (n * p.O + g * q.Og) * q.OHW;
    Epilogue<T> ep;
    if (bias != nullptr) {
      ep.bias = bias + g * q.Og;
      ep.bias_kind = BiasKind::PerRow;
    }
    if (direct) {  // the image is the GEMM's B
      gemm<T>(false, false, q.Og, q.OHW, q.CKK, T(1), A + g * q.Og * q.CKK, q.CKK, img, q.HW, T(0),
              out, q.OHW, ep);
      return;
    }
    const auto [lay, src] = source_image(p, q, img, inner);
    if (depthwise(q)) {
      std::fill(out, out + q.OHW, bias != nullptr ? bias[g] : T(0));
      dw_forward(p, q, lay, src, A + g * q.KK, out);
      return;
    }
    T* col = t_col.get<T>(q.CKK * step * q.OW);
    for (int64_t oh0 = 0; oh0 < q.OH; oh0 += step) {
      const Rows r{oh0, std::min(oh0 + step, q.OH)};
      const int64_t cols = (r.oh1 - r.oh0) * q.OW;
      im2col(p, q, r, lay, src, col, inner);
      gemm<T>(false, false, q.Og, cols, q.CKK, T(1), A + g * q.Og * q.CKK, q.CKK, col, cols, T(0),
              out + r.oh0 * q.OW, q.OHW, ep);
    }
  });
}

// gx = col2im(Wc^T * gy) + bias (bias per channel of gx, may be null): p's grad-input.
// gx overwritten.
template <typename T>
void adjoint_col2im(const ConvParams& p, const T* gy, const T* w, const T* bias, T* gx) {
  const Geo q = geo(p);
  const T* A = canonical_weight(p, q, w);
  if (batch_pointwise(p, q)) return pointwise_columns(p, q, true, A, q.CKK, gy, p.O, p.C, bias, gx);
  if (images_pointwise(p, q))
    return pointwise_images(p, q, true, A, q.CKK, gy, p.O, p.C, bias, gx, team_size(p.N));
  const bool direct = pointwise(p);
  const int64_t items = p.N * p.groups;
  const int64_t step = direct ? q.OH : chunk_rows(q, sizeof(T));
  const int team = team_size(items);
  const int inner = inner_threads(team, q.CKK * q.OHW);
  for_items(items, team, [&](int64_t item, int) {
    const int64_t n = item / p.groups, g = item % p.groups;
    const T* gin = gy + (n * p.O + g * q.Og) * q.OHW;
    T* out = gx + (n * p.C + g * q.Cg) * q.HW;
    const T* Ag = A + g * q.Og * q.CKK;
    if (direct) {
      Epilogue<T> ep;
      if (bias != nullptr) {
        ep.bias = bias + g * q.Cg;
        ep.bias_kind = BiasKind::PerRow;
      }
      gemm<T>(true, false, q.Cg, q.HW, q.Og, T(1), Ag, q.CKK, gin, q.OHW, T(0), out, q.HW, ep);
      return;
    }
    // Accumulate into out, or into a phase-split copy merged into out at the end.
    const Layout lay = use_split(p) ? split_layout(p) : plain_layout(p);
    const int64_t plane = p.H * lay.row_len;  // elements per channel in lay
    T* acc = lay.split ? t_split.get<T>(q.Cg * plane) : out;
    for (int64_t c = 0; c < q.Cg; ++c) {
      const T b = bias != nullptr ? bias[g * q.Cg + c] : T(0);
      std::fill(acc + c * plane, acc + (c + 1) * plane, b);
    }
    if (depthwise(q)) {
      dw_adjoint(p, q, lay, gin, Ag, acc);
      if (lay.split) merge_phases(acc, q.Cg * p.H, p.W, p.stride[1], lay.wp, out, inner);
      return;
    }
    T* col = t_col.get<T>(q.CKK * step * q.OW);
    for (int64_t oh0 = 0; oh0 < q.OH; oh0 += step) {
      const Rows r{oh0, std::min(oh0 + step, q.OH)};
      const int64_t cols = (r.oh1 - r.oh0) * q.OW;
      gemm<T>(true, false, q.CKK, cols, q.Og, T(1), Ag, q.CKK, gin + r.oh0 * q.OW, q.OHW, T(0), col,
              cols);
      col2im(p, q, r, lay, col, acc, inner);
    }
    if (lay.split) merge_phases(acc, q.Cg * p.H, p.W, p.stride[1], lay.wp, out, inner);
  });
}

// gw = sum_n gy[n] * im2col(x[n])^T, written into the stored layout; gw overwritten.
template <typename T>
void grad_weight_im2col(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const Geo q = geo(p);
  const int64_t wsize = p.groups * q.Og * q.CKK;
  const bool direct = pointwise(p);
  const bool batch = batch_pointwise(p, q);
  const int64_t items = p.N * p.groups;
  const int64_t step = direct ? q.OH : chunk_rows(q, sizeof(T));
  const int team = batch ? 1 : team_size(items);
  const int inner = inner_threads(team, q.CKK * q.OHW);
  T* acc = t_wacc.get<T>(team * wsize);
  if (batch) {  // acc = G X^T over the batch's columns (a GEMM with K = images * HW per chunk)
    for_batch_chunks<T>(p, q, p.C + p.O, [&](int64_t n0, int64_t m, T* gb) {
      const int64_t cols = m * q.HW;
      T* xb = gb + p.O * cols;
      batch_layout(m, p.O, q.HW, gy + n0 * p.O * q.HW, gb, true);
      batch_layout(m, p.C, q.HW, x + n0 * p.C * q.HW, xb, true);
      gemm<T>(false, true, p.O, p.C, cols, T(1), gb, cols, xb, cols, n0 > 0 ? T(1) : T(0), acc,
              p.C);
    });
  } else {
    std::fill(acc, acc + team * wsize, T(0));
  }
  for_items(batch ? 0 : items, team, [&](int64_t item, int member) {
    const int64_t n = item / p.groups, g = item % p.groups;
    const T* img = x + (n * p.C + g * q.Cg) * q.HW;
    const T* gout = gy + (n * p.O + g * q.Og) * q.OHW;
    T* a = acc + member * wsize + g * q.Og * q.CKK;
    if (direct) {
      gemm<T>(false, true, q.Og, q.CKK, q.OHW, T(1), gout, q.OHW, img, q.HW, T(1), a, q.CKK);
      return;
    }
    const auto [lay, src] = source_image(p, q, img, inner);
    if (depthwise(q)) {
      dw_grad_weight(p, q, lay, src, gout, a);
      return;
    }
    T* col = t_col.get<T>(q.CKK * step * q.OW);
    for (int64_t oh0 = 0; oh0 < q.OH; oh0 += step) {
      const Rows r{oh0, std::min(oh0 + step, q.OH)};
      const int64_t cols = (r.oh1 - r.oh0) * q.OW;
      im2col(p, q, r, lay, src, col, inner);
      gemm<T>(false, true, q.Og, q.CKK, cols, T(1), gout + r.oh0 * q.OW, q.OHW, col, cols, T(1), a,
              q.CKK);
    }
  });
  // Sum the members' partials (in member order) into the stored layout: in parallel and
  // element by element when it is the partials' layout (serial, this was a quarter of a 1x1
  // 256->256 14x14 grad-weight on 2 threads).
  if (!p.flip && !p.wtrans) {
    const int nt = inner_threads(1, team * wsize);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i0 = 0; i0 < wsize; i0 += 4096)
      for (int64_t i = i0; i < std::min(wsize, i0 + 4096); ++i) {
        T s = acc[i];
        for (int m = 1; m < team; ++m) s += acc[m * wsize + i];
        gw[i] = s;
      }
    return;
  }
  for_weight_tiles(p, q, [&](int64_t g, int64_t o, int64_t c) {
    const T* a = acc + ((g * q.Og + o) * q.Cg + c) * q.KK;
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        const int64_t k = kh * p.KW + kw;
        T s = a[k];
        for (int m = 1; m < team; ++m) s += a[m * wsize + k];
        gw[widx(p, q, g, o, c, kh, kw)] = s;
      }
  });
}

// ---- direct convolution (float32, AVX-512) ---------------------------------------
// The microkernels and the flat padded layout are described in cpu/isa/conv_kernels.h. Each
// (image, group) is copied once into flat padded planes (about the input's size, so no
// chunking), the weight is packed once per call as [g][block][c][tap][R] (R = 8 or 64 channels:
// pixel_kernel picks the tile), and the output is made of 8 x 48 tiles scattered into y (the
// columns past OW dropped) or of 6 x 64 tiles transposed into it. Measured on Zen 5, 2
// threads: see pixel_kernel and bench/RESULTS.md.
thread_local Scratch t_flat;    // flat padded planes of one (image, group)
thread_local Scratch t_direct;  // packed weights and initial values, by the calling thread

using conv_detail::kDirectCols;
using conv_detail::kDirectRows;

struct Flat {
  int64_t s0, s1;  // stride: each channel is stored as s0*s1 phase planes (polyphase)
  int64_t Hq, Wq;  // a phase plane: ceil(Hp / s0) x ceil(Wp / s1) of the padded Hp x Wp image
  int64_t phase;   // Hq * Wq
  int64_t plane;   // s0 * s1 * phase: one channel
  int64_t cols;    // OH * Wq flat outputs (the columns ow >= OW are dropped)
  int64_t tiles;   // ceil(cols / 48)
  int64_t blocks;  // ceil(Og / 8)
};

// polyphase false: one plane per channel whatever the stride (the pixel tiles read a stride
// through their output positions).
Flat flat_geo(const ConvParams& p, const Geo& q, bool polyphase = true) {
  Flat f;
  f.s0 = polyphase ? p.stride[0] : 1;
  f.s1 = polyphase ? p.stride[1] : 1;
  const int64_t Hp = p.H + p.pad_lo[0] + p.pad_hi[0], Wp = p.W + p.pad_lo[1] + p.pad_hi[1];
  f.Hq = (Hp + f.s0 - 1) / f.s0;
  f.Wq = (Wp + f.s1 - 1) / f.s1;
  f.phase = f.Hq * f.Wq;
  f.plane = f.s0 * f.s1 * f.phase;
  f.cols = q.OH * f.Wq;
  f.tiles = (f.cols + kDirectCols - 1) / kDirectCols;
  f.blocks = (q.Og + kDirectRows - 1) / kDirectRows;
  return f;
}

// Zeros after the last plane: the last tile reads up to kDirectCols - 1 + Wq past it.
int64_t flat_slack(const Flat& f) { return kDirectCols + f.Wq + 16; }

// Where tap (kh, kw) starts reading, relative to the output's flat position: padded row
// oh*s0 + kh*d0 is in phase (kh*d0) % s0, at phase row oh + (kh*d0) / s0; the same along W.
int64_t tap_offset(const ConvParams& p, const Flat& f, int64_t kh, int64_t kw) {
  const int64_t dh = kh * p.kdil[0], dw = kw * p.kdil[1];
  return ((dh % f.s0) * f.s1 + dw % f.s1) * f.phase + (dh / f.s0) * f.Wq + dw / f.s1;
}

// PYENGINE_CONV_DIRECT=0 turns the direct paths off: im2col / the portable depthwise loops
// only (benchmarks, tests).
bool direct_enabled() {
  const char* e = std::getenv("PYENGINE_CONV_DIRECT");
  return active_isa() == Isa::AVX512 && (e == nullptr || e[0] != '0');
}

// The microkernel when the direct path applies: not both stride and input dilation, not a
// plain GEMM (1x1 unpadded) or depthwise. Even a group with fewer than 8 output channels (a
// part-empty tile) beats im2col's GEMM of as few rows: on Zen 5, 2 threads, 8x128->128 28x28
// 3x3 with 32 groups (4 channels each), forward 121 vs 39 GFLOP/s; 2 channels, 57 vs 15. But
// not with fewer output than input channels (the grad-input of an RGB stem: 123 vs 186), which
// via_adjoint sends to the adjoint's GEMM + col2im.
conv_detail::DirectTileF32 direct_kernel(const ConvParams& p) {
  if (!direct_enabled() || pointwise(p)) return nullptr;
  if (!unit(p.idil) && !unit(p.stride)) return nullptr;  // both: im2col
  const Geo q = geo(p);
  if (depthwise(q) || q.OHW == 0 || (q.Og < kDirectRows && q.Og < q.Cg)) return nullptr;
  return conv_detail::avx512::direct_tile_f32();
}

// dst = the Cg channels of img padded by pad_lo / pad_hi (negative pads crop) in the flat
// polyphase layout of f, followed by flat_slack zeros; overwritten. Element (r, v) of the
// padded image goes to phase (r % s0, v % s1) at (r / s0, v / s1).
void pad_flat(const ConvParams& p, int64_t Cg, const Flat& f, const float* img, float* dst) {
  const auto gather2 = conv_detail::avx512::gather2_f32();  // the direct paths have AVX-512
  for (int64_t b = 0; b < f.s1; ++b) {
    // Phase column j holds input column iw = j*s1 - v0; keep j in [j0, j1) (iw in [0, W)).
    // The same for every row and channel: the divisions stay out of the row loop (they cost
    // more than a row of a small depthwise image).
    const int64_t v0 = p.pad_lo[1] - b;
    const int64_t j0 = std::min(f.Wq, std::max<int64_t>(0, (v0 + f.s1 - 1) / f.s1));
    const int64_t last = p.W - 1 + v0;  // j*s1 <= last
    const int64_t j1 = last < 0 ? j0 : std::max(j0, std::min(f.Wq, last / f.s1 + 1));
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t a = 0; a < f.s0; ++a)
        for (int64_t i = 0, ih = a - p.pad_lo[0]; i < f.Hq; ++i, ih += f.s0) {
          float* d = dst + c * f.plane + (a * f.s1 + b) * f.phase + i * f.Wq;
          if (ih < 0 || ih >= p.H || j1 == j0) {
            std::fill(d, d + f.Wq, 0.0f);
            continue;
          }
          // Plain loops, specialized for the common strides: rows are short (tens of
          // elements), where fill / copy calls cost more than the copy (measured 2x faster).
          const float* s = img + (c * p.H + ih) * p.W;  // s[j * s1 - v0] is column j
          for (int64_t j = 0; j < j0; ++j) d[j] = 0.0f;
          if (f.s1 == 1) {
            for (int64_t j = j0; j < j1; ++j) d[j] = s[j - v0];
          } else if (f.s1 == 2 && gather2 != nullptr) {
            gather2(s + 2 * j0 - v0, j1 - j0, d + j0);
          } else {
            for (int64_t j = j0; j < j1; ++j) d[j] = s[j * f.s1 - v0];
          }
          for (int64_t j = j1; j < f.Wq; ++j) d[j] = 0.0f;
        }
  }
  std::fill(dst + Cg * f.plane, dst + Cg * f.plane + flat_slack(f), 0.0f);
}

// One output phase of a direct forward: a stride-1 correlation over the flat image with some
// of the taps. A conv without input dilation has one phase (every output, every tap). With
// input dilation (s0, s1) and stride 1 (transposed convs, grad-input of strided convs), output
// (oh'*s0 + ra, ow'*s1 + rb) meets real input rows and columns only through the taps with
// (ra - pad_lo + kh*dh) % s0 == 0 (and the same along W), the same taps for the whole phase
// (ra, rb); input row oh' + (ra - pad_lo + kh*dh) / s0. So each phase is a stride-1 conv with a
// sub-kernel over the undilated image (padded to cover every phase's reach), and no multiply
// touches an inserted zero.
struct Phase {
  int64_t rows, cols_valid;        // its outputs: rows x cols_valid
  int64_t cols, tiles;             // rows * Wq flat positions, 48 per tile
  int64_t out0, out_row, out_col;  // output (oh', ow') at out0 + oh'*out_row + ow'*out_col
  int64_t tap0, ntaps;             // its taps: DirectPlan::taps / offs [tap0, tap0 + ntaps)
  int64_t in_row, in_col;  // output (oh', ow') measures its taps from oh'*in_row + ow'*in_col
};

struct DirectPlan {
  ConvParams img;  // the image as laid out: p, or (input dilation) undilated with new pads
  Flat f;          // its flat layout
  std::vector<Phase> phases;
  std::vector<int64_t> taps, offs;  // kernel tap kh*KW + kw and its flat offset, by phase
};

int64_t pos_mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

// Per dimension of an input-dilated conv: for each phase r < s, its output count and the taps
// (k, shift) it meets; the low / high padding that every shift needs.
struct DimPhases {
  std::vector<int64_t> count;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> taps;  // (k, shift)
  int64_t pad_lo = 0, pad_hi = 0;
};

DimPhases dim_phases(int64_t in, int64_t out, int64_t K, int64_t s, int64_t kd, int64_t pl) {
  DimPhases d;
  d.count.resize(s);
  d.taps.resize(s);
  for (int64_t r = 0; r < s; ++r) {
    d.count[r] = out > r ? (out - r + s - 1) / s : 0;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t v = r - pl + k * kd;
      if (pos_mod(v, s) != 0) continue;
      const int64_t shift = floor_div(v, s);
      d.taps[r].push_back({k, shift});
      if (d.count[r] == 0) continue;
      d.pad_lo = std::max(d.pad_lo, -shift);
      d.pad_hi = std::max(d.pad_hi, d.count[r] - 1 + shift - (in - 1));
    }
  }
  return d;
}

Phase make_phase(const Flat& f, int64_t rows, int64_t cols_valid, int64_t out0, int64_t out_row,
                 int64_t out_col, int64_t tap0, int64_t ntaps) {
  Phase ph;
  ph.rows = rows;
  ph.cols_valid = cols_valid;
  ph.cols = rows * f.Wq;
  ph.tiles = (ph.cols + kDirectCols - 1) / kDirectCols;
  ph.out0 = out0;
  ph.out_row = out_row;
  ph.out_col = out_col;
  ph.tap0 = tap0;
  ph.ntaps = ntaps;
  ph.in_row = f.Wq;  // unit steps in the flat image
  ph.in_col = 1;
  return ph;
}

// polyphase false (pixel tiles only): a strided conv keeps one plane per channel and its
// outputs step by the stride through it.
DirectPlan direct_plan(const ConvParams& p, const Geo& q, bool polyphase = true) {
  DirectPlan plan;
  if (unit(p.idil)) {
    plan.img = p;
    plan.f = flat_geo(p, q, polyphase);
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        plan.taps.push_back(kh * p.KW + kw);
        plan.offs.push_back(tap_offset(p, plan.f, kh, kw));
      }
    Phase ph = make_phase(plan.f, q.OH, q.OW, 0, q.OW, 1, 0, q.KK);
    if (!polyphase) {
      ph.in_row = p.stride[0] * plan.f.Wq;
      ph.in_col = p.stride[1];
    }
    plan.phases.push_back(ph);
    return plan;
  }
  const DimPhases h = dim_phases(p.H, q.OH, p.KH, p.idil[0], p.kdil[0], p.pad_lo[0]);
  const DimPhases w = dim_phases(p.W, q.OW, p.KW, p.idil[1], p.kdil[1], p.pad_lo[1]);
  ConvParams img = p;  // the undilated image, stride 1, padded for every phase
  img.idil[0] = img.idil[1] = 1;
  img.pad_lo[0] = h.pad_lo;
  img.pad_hi[0] = h.pad_hi;
  img.pad_lo[1] = w.pad_lo;
  img.pad_hi[1] = w.pad_hi;
  plan.img = img;
  plan.f = flat_geo(img, q);  // only its image layout is used (s = 1: Wq = padded width)
  for (int64_t ra = 0; ra < p.idil[0]; ++ra)
    for (int64_t rb = 0; rb < p.idil[1]; ++rb) {
      if (h.count[ra] == 0 || w.count[rb] == 0) continue;
      const int64_t tap0 = static_cast<int64_t>(plan.taps.size());
      for (const auto& [kh, sh] : h.taps[ra])
        for (const auto& [kw, sw] : w.taps[rb]) {
          plan.taps.push_back(kh * p.KW + kw);
          plan.offs.push_back((sh + h.pad_lo) * plan.f.Wq + sw + w.pad_lo);
        }
      const int64_t ntaps = static_cast<int64_t>(plan.taps.size()) - tap0;
      plan.phases.push_back(make_phase(plan.f, h.count[ra], w.count[rb], ra * q.OW + rb,
                                       p.idil[0] * q.OW, p.idil[1], tap0, ntaps));
    }
  return plan;
}

// Tile rows [0, rows) of the phase's flat outputs [q0, q0 + 48) into out (Og planes of OHW).
void scatter_tile(const float* tile, int rows, int64_t q0, const Flat& f, const Phase& ph,
                  int64_t OHW, float* out) {
  const int64_t q1 = std::min(q0 + kDirectCols, ph.cols);
  for (int64_t s = q0; s < q1;) {
    const int64_t r = s / f.Wq, c = s % f.Wq;
    const int64_t end = std::min(q1, (r + 1) * f.Wq);               // this flat row's part
    const int64_t n = std::min(end, r * f.Wq + ph.cols_valid) - s;  // valid columns
    for (int i = 0; i < rows; ++i) {
      const float* src = tile + i * kDirectCols + (s - q0);
      float* dst = out + i * OHW + ph.out0 + r * ph.out_row + c * ph.out_col;
      if (ph.out_col == 1) {
        for (int64_t k = 0; k < n; ++k) dst[k] = src[k];
      } else {
        for (int64_t k = 0; k < n; ++k) dst[k * ph.out_col] = src[k];
      }
    }
    s = end;
  }
}

// Tiles [t0, t1) of one phase of one (image, group), every block of output channels (the
// tile's input stays in L1 / L2 across the blocks; splitting the channels into L1-sized chunks
// measured no faster). The last tile computes only the vectors it needs. wg: the phase's
// packed weights for this group, [block][c][tap][8].
void direct_tiles(conv_detail::DirectTileF32 kern, const Geo& q, const DirectPlan& plan,
                  const Phase& ph, const float* xp, const float* wg, const float* init, float* out,
                  int64_t t0, int64_t t1) {
  alignas(64) float tile[kDirectRows * kDirectCols];
  const int64_t wblock = q.Cg * ph.ntaps * kDirectRows;
  const int64_t* off = plan.offs.data() + ph.tap0;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t cols = std::min<int64_t>(kDirectCols, ph.cols - t * kDirectCols);
    const int nv = static_cast<int>((cols + 15) / 16);
    for (int64_t b = 0; b < plan.f.blocks; ++b) {
      const int rows = static_cast<int>(std::min<int64_t>(kDirectRows, q.Og - b * kDirectRows));
      kern(nv, xp + t * kDirectCols, plan.f.plane, q.Cg, off, static_cast<int>(ph.ntaps),
           wg + b * wblock, init + b * kDirectRows, tile, kDirectCols);
      scatter_tile(tile, rows, t * kDirectCols, plan.f, ph, q.OHW, out + b * kDirectRows * q.OHW);
    }
  }
}

// Valid outputs [k0, k1) of one phase (k = row * cols_valid + column), in tiles of 6 outputs x
// 64 channels, block after block of channels (a block's packed weights stay in L2 across the
// tiles). The last tile of the range repeats its last output. When the phase's outputs are
// consecutive in y (no input dilation), the tiles of 48 outputs are gathered and transposed
// into y in 16x16 blocks; else transposed into channel rows and stored channel by channel.
// wg: the phase's packed weights for this group, [block][c][tap][64].
void pixel_tiles(conv_detail::PixelTileF32 kern, const Geo& q, const DirectPlan& plan,
                 const Phase& ph, const float* xp, const float* wg, const float* init, float* out,
                 int64_t k0, int64_t k1) {
  constexpr int P = conv_detail::kPixelTile;
  constexpr int64_t B = conv_detail::kPixelBlock, kStrip = 8 * P;
  alignas(64) float strip[kStrip * B];
  alignas(64) float chan[B * kStrip];  // the strip transposed (non-consecutive outputs)
  const auto transpose = conv_detail::avx512::transpose_f32();
  const bool consecutive = ph.out_col == 1 && ph.out_row == ph.cols_valid;
  const int64_t wblock = q.Cg * ph.ntaps * B;
  const int64_t* off = plan.offs.data() + ph.tap0;
  // Input channels in chunks of at most 192 KB of packed weights, which a strip's 8 tiles
  // reuse from L2 (measured on Zen 5, 2 threads, 3x3: 256->256 14x14 +4%, 512->512 7x7 +4%,
  // 256->512 14x14 stride 2 +4%; no change where one chunk holds every channel).
  const int64_t chunk =
      std::max<int64_t>(1, (int64_t(192) << 10) / (std::max<int64_t>(1, ph.ntaps) * B * 4));
  for (int64_t o0 = 0; o0 < q.Og; o0 += B) {
    const int nv = static_cast<int>(std::min<int64_t>(4, (q.Og - o0 + 15) / 16));
    const int64_t rows = std::min(B, q.Og - o0);
    float* ob = out + o0 * q.OHW;
    for (int64_t s0 = k0; s0 < k1; s0 += kStrip) {
      const int64_t s1 = std::min(k1, s0 + kStrip);
      // At least one pass, so that with no input channels the tile still holds the bias.
      for (int64_t c0 = 0; c0 < std::max<int64_t>(q.Cg, 1); c0 += chunk) {
        const int64_t cc = std::min(chunk, q.Cg - c0);
        const float* wc = wg + (o0 / B) * wblock + c0 * ph.ntaps * B;
        for (int64_t k = s0; k < s1; k += P) {
          const int n = static_cast<int>(std::min<int64_t>(P, s1 - k));
          const float* xs[P];
          for (int i = 0; i < P; ++i) {
            const int64_t kk = k + std::min(i, n - 1);
            xs[i] = xp + c0 * plan.f.plane + kk / ph.cols_valid * ph.in_row +
                    kk % ph.cols_valid * ph.in_col;
          }
          float* tile = strip + (k - s0) * B;
          kern(nv, xs, plan.f.plane, cc, off, static_cast<int>(ph.ntaps), wc,
               c0 == 0 ? init + o0 : tile, c0 == 0 ? 0 : B, tile);
        }
      }
      if (consecutive) {
        transpose(strip, B, s1 - s0, rows, ob + ph.out0 + s0, q.OHW, s1 - s0);
        continue;
      }
      // Outputs apart in y (output phases): transposed to channel rows first, then each
      // channel's outputs stored in order. Storing tile by tile wrote one value per channel
      // row, 64 rows apart by the plane size; planes of 4 KiB (32x32) put all of them in one
      // L1 set. Measured on Zen 5, 2 threads, in-process A/B, conv_transpose2d forward k4 s2:
      // 8x128->64 16x16 3130 -> 1325 us, 8x256->128 8x8 1553 -> 1378 us; no change where the
      // planes are not a multiple of 4 KiB (grad-input of 8x128->256 28x28 s2: 2229 / 2234).
      int64_t pos[kStrip];
      for (int64_t kk = s0; kk < s1; ++kk)
        pos[kk - s0] = ph.out0 + kk / ph.cols_valid * ph.out_row + kk % ph.cols_valid * ph.out_col;
      transpose(strip, B, s1 - s0, rows, chan, kStrip, s1 - s0);
      for (int64_t o = 0; o < rows; ++o) {
        float* d = ob + o * q.OHW;
        const float* src = chan + o * kStrip;
        for (int64_t i = 0; i < s1 - s0; ++i) d[pos[i]] = src[i];
      }
    }
  }
}

// Which tile a direct forward uses: 6 outputs x 64 channels (pixels) with at least 48 output
// channels per group where the 48-wide tiles of flat positions would compute over 5% more
// outputs than wanted (short rows, strides, output phases), else 8 channels x 48 flat
// positions (rows). Measured on Zen 5, 2 threads, 8 images, 3x3, GFLOP/s pixels / rows:
// 128->128 28x28 1.00-1.08, 256->256 14x14 1.05-1.09, 512->512 7x7 1.2-1.3, stride 2
// 1.04-1.27 (no phase planes, no padded columns); but 64->64 56x56 (4% waste) 0.95-1.04 and
// 0.96 with the bench's bias, 32->32 56x56 0.93, 16->16 112x112 0.70 (a tile of 16 or 32
// channels feeds too few FMAs per load). PYENGINE_CONV_PIXEL=0 / 1 forces one (benchmarks,
// tests).
// rows_plan: the conv's plan for the rows tile (direct_plan with phase planes).
conv_detail::PixelTileF32 pixel_kernel(const DirectPlan& rows_plan, const Geo& q) {
  const auto kern = conv_detail::avx512::pixel_tile_f32();
  if (const char* e = std::getenv("PYENGINE_CONV_PIXEL"); e != nullptr && e[0] != '\0')
    return e[0] == '1' ? kern : nullptr;
  if (q.Og < 48) return nullptr;
  int64_t valid = 0, computed = 0;
  for (const Phase& ph : rows_plan.phases) {
    valid += ph.rows * ph.cols_valid;
    computed += ph.tiles * kDirectCols;
  }
  return 20 * valid < 19 * computed ? kern : nullptr;
}

// The packed weights of a direct forward, R output channels innermost, phase after phase:
// [g][block][c][tap of the phase][R] (channels past Og zero); then the initial values
// [g][blocks * R] (the bias). Read from the stored weight w (flipped or transposed or not).
struct DirectWeights {
  int64_t blocks;              // ceil(Og / R)
  std::vector<float*> wphase;  // phase i, group g at wphase[i] + g * blocks * Cg*ntaps*R
  const float* init;
};

DirectWeights pack_direct(const ConvParams& p, const Geo& q, const DirectPlan& plan, const float* w,
                          const float* bias, int64_t R) {
  DirectWeights dw;
  dw.blocks = (q.Og + R - 1) / R;
  const int64_t igroup = dw.blocks * R;
  const int64_t ntaps_all = static_cast<int64_t>(plan.taps.size());
  const int64_t wall = p.groups * igroup * q.Cg * ntaps_all;
  float* wp = t_direct.get<float>(wall + p.groups * igroup);
  float* init = wp + wall;
  float* d0 = wp;
  for (const Phase& ph : plan.phases) {
    dw.wphase.push_back(d0);
    d0 += p.groups * igroup * q.Cg * ph.ntaps;
  }
  // Wc(g, o, c, tap) = w[g * Og*CKK + o*so + c*sc + stored tap] (a flip reverses the taps).
  const int64_t so = p.wtrans ? q.KK : q.CKK, sc = p.wtrans ? q.Og * q.KK : q.KK;
  std::vector<int64_t> tapk(plan.taps.size());
  for (size_t t = 0; t < tapk.size(); ++t)
    tapk[t] = p.flip ? q.KK - 1 - plan.taps[t] : plan.taps[t];
  // One (phase, group, block) per task, walking the stored weight along its rows: output
  // channel innermost for a transposed weight, taps innermost otherwise.
  const int64_t nph = static_cast<int64_t>(plan.phases.size());
  const int64_t tasks = nph * p.groups * dw.blocks;
  const int nt = inner_threads(1, wall);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t i = task / (p.groups * dw.blocks);
    const Phase& ph = plan.phases[i];
    const int64_t g = task / dw.blocks % p.groups, b = task % dw.blocks;
    const int64_t ntp = ph.ntaps, ck = q.Cg * ntp;
    float* d = dw.wphase[i] + (g * dw.blocks + b) * ck * R;
    const int64_t* tk = tapk.data() + ph.tap0;
    const float* wb = w + g * q.Og * q.CKK + b * R * so;
    const int64_t rows = std::min(R, q.Og - b * R);
    if (!p.wtrans && !p.flip && ntp == q.KK) {  // every tap in order: a plain transpose
      conv_detail::avx512::transpose_f32()(wb, so, rows, ck, d, R, R);
      continue;
    }
    if (p.wtrans) {
      for (int64_t c = 0; c < q.Cg; ++c)
        for (int64_t t = 0; t < ntp; ++t) {
          const float* s = wb + c * sc + tk[t];
          float* dk = d + (c * ntp + t) * R;
          for (int64_t o = 0; o < rows; ++o) dk[o] = s[o * so];
        }
    } else {
      for (int64_t o = 0; o < rows; ++o)
        for (int64_t c = 0; c < q.Cg; ++c)
          for (int64_t t = 0; t < ntp; ++t) d[(c * ntp + t) * R + o] = wb[o * so + c * sc + tk[t]];
    }
    for (int64_t k = 0; k < ck && rows < R; ++k) std::fill(d + k * R + rows, d + (k + 1) * R, 0.0f);
  }
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t o = 0; o < igroup; ++o)
      init[g * igroup + o] = o < q.Og && bias != nullptr ? bias[g * q.Og + o] : 0.0f;
  dw.init = init;
  return dw;
}

// Outputs no phase reaches (an input-dilated conv with a kernel too short for some phase)
// hold the bias: all of y is set to it first when there are any.
void fill_unreached(const ConvParams& p, const Geo& q, const DirectPlan& plan, const float* bias,
                    float* y) {
  int64_t reached = 0;
  for (const Phase& ph : plan.phases) reached += ph.rows * ph.cols_valid;
  if (reached == q.OHW) return;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t o = 0; o < p.O; ++o) {
      float* yo = y + (n * p.O + o) * q.OHW;
      std::fill(yo, yo + q.OHW, bias != nullptr ? bias[o] : 0.0f);
    }
}

// y = Wc * x + bias through the direct path; y overwritten.
void direct_forward(conv_detail::DirectTileF32 kern, const ConvParams& p, const float* x,
                    const float* w, const float* bias, float* y) {
  const Geo q = geo(p);
  DirectPlan plan = direct_plan(p, q);
  const auto pkern = pixel_kernel(plan, q);
  if (pkern != nullptr && !unit(p.stride)) plan = direct_plan(p, q, false);  // no phase planes
  const Flat& f = plan.f;
  const int64_t R = pkern != nullptr ? conv_detail::kPixelBlock : kDirectRows;
  const DirectWeights dw = pack_direct(p, q, plan, w, bias, R);
  const int64_t igroup = dw.blocks * R;

  fill_unreached(p, q, plan, bias, y);

  const int64_t items = p.N * p.groups;
  const int team = team_size(items);
  const int64_t pad_elems = q.Cg * f.plane + flat_slack(f);
  auto run_item = [&](int64_t item, const float* xp, int member, int members) {
    const int64_t n = item / p.groups, g = item % p.groups;
    float* out = y + (n * p.O + g * q.Og) * q.OHW;
    const float* init = dw.init + g * igroup;
    for (size_t i = 0; i < plan.phases.size(); ++i) {
      const Phase& ph = plan.phases[i];
      const float* wg = dw.wphase[i] + g * igroup * q.Cg * ph.ntaps;
      if (pkern != nullptr) {
        const int64_t tiles =
            (ph.rows * ph.cols_valid + conv_detail::kPixelTile - 1) / conv_detail::kPixelTile;
        const int64_t k0 = tiles * member / members * conv_detail::kPixelTile;
        const int64_t k1 = std::min(ph.rows * ph.cols_valid,
                                    tiles * (member + 1) / members * conv_detail::kPixelTile);
        pixel_tiles(pkern, q, plan, ph, xp, wg, init, out, k0, k1);
      } else {
        direct_tiles(kern, q, plan, ph, xp, wg, init, out, ph.tiles * member / members,
                     ph.tiles * (member + 1) / members);
      }
    }
  };
  auto image = [&](int64_t item) {
    const int64_t n = item / p.groups, g = item % p.groups;
    return x + (n * p.C + g * q.Cg) * q.HW;
  };
  // Pixel tiles read only where wanted outputs' taps land: without padding (and with one plane
  // per channel) the image itself is the flat layout, and the copy is skipped (a 1x1 stride-2
  // conv would otherwise copy four times the inputs it reads).
  const bool in_place = pkern != nullptr && unit(p.idil) && p.pad_lo[0] == 0 && p.pad_lo[1] == 0 &&
                        p.pad_hi[0] == 0 && p.pad_hi[1] == 0;
  auto flat_image = [&](int64_t item, float* buf) -> const float* {
    if (in_place) return image(item);
    pad_flat(plan.img, q.Cg, f, image(item), buf);
    return buf;
  };
  if (team > 1) {  // one item per thread at a time
    for_items(items, team, [&](int64_t item, int) {
      run_item(item, flat_image(item, t_flat.get<float>(in_place ? 0 : pad_elems)), 0, 1);
    });
    return;
  }
  // Items one after another, each phase's tiles split over the threads.
  const int nt = inner_threads(1, q.Og * q.OHW * q.CKK / 64);
  float* buf = t_flat.get<float>(in_place ? 0 : pad_elems);
  for (int64_t item = 0; item < items; ++item) {
    const float* xp = flat_image(item, buf);
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
      run_item(item, xp, omp_get_thread_num(), omp_get_num_threads());
#else
      run_item(item, xp, 0, 1);
#endif
    }
  }
}

// The direct grad-weight beats im2col + GEMM with at least 8 input channels per group, or
// with fewer than 16 output channels per group (im2col's GEMM then has as few rows); measured
// on Zen 5, 2 threads, grad-weight GFLOP/s: 8x64->64 56x56 3x3 434 (im2col 427 at 1 thread:
// 222 vs 193 fwd+bwd), 8x128->256 28x28 3x3 stride 2 389 vs 338; 8x3->32 32x32 150 vs 152
// (left to im2col); fwd+bwd of 8x128->128 28x28 3x3, 32 groups of 4 channels: 84 vs 58.
bool direct_grad_weight_pays(const ConvParams& p) {
  const int64_t cg = p.C / p.groups, og = p.O / p.groups;
  return direct_kernel(p) != nullptr && unit(p.idil) && (cg >= 8 || og < 16);
}

// gw = sum_n correlations of x[n] with gy[n] through the direct layout, written into the
// stored layout; gw overwritten. Partial sums are [pair = c*KK + tap][channel] rows, one set
// per team member, added in member order at the end. Each item's gradient chunk of ~192
// positions (L1 / L2) is reused by every pair block before the next chunk.
thread_local Scratch t_gradt;  // one item's output gradient, (position, channel)

void direct_grad_weight(conv_detail::GradWeightTileF32 kern, const ConvParams& p, const float* x,
                        const float* gy, float* gw) {
  constexpr int P = conv_detail::kGradWeightPairs;
  const auto transpose = conv_detail::avx512::transpose_f32();  // with kern, never null
  const Geo q = geo(p);
  const Flat f = flat_geo(p, q, false);  // one plane per channel: a stride is a step
  const int64_t xrow = p.stride[0] * f.Wq, xcol = p.stride[1];
  const int64_t ldo = (q.Og + 15) / 16 * 16;
  const int64_t pblocks = (q.CKK + P - 1) / P;
  const int64_t accg = pblocks * P * ldo;  // one group's partial sums
  const int64_t wacc = p.groups * accg;    // one member's
  const int64_t items = p.N * p.groups;
  const int team = team_size(items);
  auto* off = t_direct.get<int64_t>(q.KK);
  for (int64_t kh = 0; kh < p.KH; ++kh)
    for (int64_t kw = 0; kw < p.KW; ++kw) off[kh * p.KW + kw] = tap_offset(p, f, kh, kw);
  float* acc = t_wacc.get<float>(team * wacc);
  std::fill(acc, acc + team * wacc, 0.0f);
  // Output rows per chunk, in chunks of equal size: a chunk's gradient rows (positions x ldo)
  // about 256 KB, so they stay in L2 while every pair block reads them; larger chunks also
  // mean fewer loads and stores of the partial sums (1.2 MB for 128->256 3x3, beyond L2).
  const int64_t target = std::max<int64_t>(96, 65536 / std::min<int64_t>(ldo, 64));
  const int64_t nchunks =
      (q.OH + std::max<int64_t>(1, target / q.OW) - 1) / std::max<int64_t>(1, target / q.OW);
  const int64_t chunk = (q.OH + nchunks - 1) / nchunks;
  const int64_t pad_elems = q.Cg * f.plane + flat_slack(f);

  // pair blocks [b0, b1) of one item: xp its flat image, gt its transposed gradient
  // Pair blocks go in groups whose partial sums (P x ldo each) fit in ~256 KB of L2; each group
  // walks the item's positions once.
  const int64_t group = std::max<int64_t>(1, (int64_t(256) << 10) / (P * ldo * 4));
  auto blocks = [&](float* a, const float* xp, const float* gt, int64_t b0, int64_t b1) {
    for (int64_t g0 = b0; g0 < b1; g0 += group)
      for (int64_t r0 = 0; r0 < q.OH; r0 += chunk) {
        const int64_t rows = std::min(chunk, q.OH - r0);
        for (int64_t o0 = 0; o0 < q.Og; o0 += 64) {
          const int nv = static_cast<int>(std::min<int64_t>(4, (q.Og - o0 + 15) / 16));
          for (int64_t b = g0; b < std::min(b1, g0 + group); ++b) {
            const float* xs[P];
            for (int i = 0; i < P; ++i) {  // pairs past CKK repeat the last (rows of padding)
              const int64_t pair = std::min(b * P + i, q.CKK - 1);
              xs[i] = xp + (pair / q.KK) * f.plane + off[pair % q.KK] + r0 * xrow;
            }
            kern(nv, xs, xrow, xcol, gt + (o0 / 64) * q.OHW * 64 + r0 * q.OW * 64, 64, rows, q.OW,
                 a + b * P * ldo + o0, ldo);
          }
        }
      }
  };
  auto prepare = [&](int64_t item, float*& xp, float*& gt) {
    const int64_t n = item / p.groups, g = item % p.groups;
    xp = t_flat.get<float>(pad_elems);
    pad_flat(p, q.Cg, f, x + (n * p.C + g * q.Cg) * q.HW, xp);
    gt = t_gradt.get<float>((q.Og + 63) / 64 * 64 * q.OHW);
    // (position, channel) in tiles of 64 channels, channels past Og zero: the layout the
    // kernel streams.
    const float* gi = gy + (n * p.O + g * q.Og) * q.OHW;
    for (int64_t o0 = 0; o0 < q.Og; o0 += 64)
      transpose(gi + o0 * q.OHW, q.OHW, std::min<int64_t>(64, q.Og - o0), q.OHW, gt + o0 * q.OHW,
                64, 64);
  };
  if (team > 1) {  // one item per thread at a time
    for_items(items, team, [&](int64_t item, int member) {
      float *xp, *gt;
      prepare(item, xp, gt);
      blocks(acc + member * wacc + (item % p.groups) * accg, xp, gt, 0, pblocks);
    });
  } else {  // items one after another, their pair blocks split over the threads
    const int nt = inner_threads(1, q.Og * q.OHW * q.CKK / 64);
    for (int64_t item = 0; item < items; ++item) {
      float *xp, *gt;
      prepare(item, xp, gt);
      float* a = acc + (item % p.groups) * accg;
#pragma omp parallel num_threads(nt)
      {
        int64_t b0, b1;
        team_block(pblocks, b0, b1);
        blocks(a, xp, gt, b0, b1);
      }
    }
  }
  // Sum the members' partials (in member order) into the stored layout: [pair][o] rows
  // transposed in 16-pair blocks; a flipped or transposed layout through widx.
  auto sum_at = [&](int64_t g, int64_t pair, int64_t o) {
    const float* a = acc + g * accg + pair * ldo + o;
    float s = a[0];
    for (int m = 1; m < team; ++m) s += a[m * wacc];
    return s;
  };
  if (!p.flip && !p.wtrans) {
    // Blocks of 16 pairs: the members' partials added into member 0's in member order (the
    // sums of sum_at, read along the rows), then transposed into gw. Element by element with
    // sum_at, the reads went down columns, a cache line per value; measured on Zen 5, 2
    // threads, in-process A/B: 8x128->256 28x28 3x3 s2 2124 -> 2050 us, 8x256->512 14x14 s2
    // 2892 -> 2480 us, 8x512->512 7x7 6226 -> 5781 us.
    const int64_t kblocks = (q.CKK + 15) / 16;
    const int nt = inner_threads(1, team * p.groups * pblocks * P * ldo);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t task = 0; task < p.groups * kblocks; ++task) {
      const int64_t g = task / kblocks, k0 = task % kblocks * 16,
                    nk = std::min<int64_t>(16, q.CKK - k0);
      float* a0 = acc + g * accg + k0 * ldo;
      for (int m = 1; m < team; ++m) {
        const float* am = a0 + m * wacc;
        for (int64_t e = 0; e < nk * ldo; ++e) a0[e] += am[e];
      }
      transpose(a0, ldo, nk, q.Og, gw + g * q.Og * q.CKK + k0, q.CKK, nk);
    }
    return;
  }
  for_weight_tiles(p, q, [&](int64_t g, int64_t o, int64_t c) {
    for (int64_t kh = 0; kh < p.KH; ++kh)
      for (int64_t kw = 0; kw < p.KW; ++kw)
        gw[widx(p, q, g, o, c, kh, kw)] = sum_at(g, c * q.KK + kh * p.KW + kw, o);
  });
}

// ---- depthwise, direct (float32, AVX-512) ------------------------------------------
// One channel in and out per group, 16 channels at a time: each (image, 16 channels) item is
// padded into (position, channel) order (pad16), every output row is one call of the row
// kernel, whose loads are one position's 16 channels (so a stride is only a step, and no
// phase planes are needed), and rows go back into y's planes through 16x16 transposes. Items
// go one per thread. Measured on Zen 5, 2 threads: see bench/RESULTS.md.
thread_local Scratch t_dwrow;  // one output row / one item's output gradient, 16 channels
// Outputs of a depthwise phase put back into y in one transpose at most (32 KB of (position,
// 16 channels), in L1).
constexpr int64_t kDwWholeMax = 512;

// (The kernels are null in a build without AVX-512 code, whatever the CPU.)
bool direct_depthwise(const ConvParams& p) {
  if (!direct_enabled() || (!unit(p.idil) && !unit(p.stride))) return false;
  if (conv_detail::avx512::depthwise16_row_f32() == nullptr) return false;
  const Geo q = geo(p);
  return depthwise(q) && q.OHW > 0;
}

// The stored weight's tap k of group g (a flip reverses the taps; Cg = Og = 1, so a
// transposed layout is the same).
float dw_tap(const ConvParams& p, const Geo& q, const float* w, int64_t g, int64_t k) {
  return w[g * q.KK + (p.flip ? q.KK - 1 - k : k)];
}

// The 16 channels [c0, c0 + nc) of one image (planes of H x W from img) padded as pi pads
// them (negative pads crop), stored as (position r*Wp + v, 16 channels) over the padded Hp x Wp
// plane; channels past nc zero; overwritten. Rows go through the 16x16 transposes.
void pad16(const ConvParams& pi, const float* img, int nc, int64_t Hp, int64_t Wp, float* x16) {
  const auto transpose = conv_detail::avx512::transpose_f32();
  const int64_t HW = pi.H * pi.W, pl0 = pi.pad_lo[0], pl1 = pi.pad_lo[1];
  const int64_t iw0 = std::max<int64_t>(0, -pl1), iw1 = std::min(pi.W, Wp - pl1);
  for (int64_t r = 0; r < Hp; ++r) {
    float* d = x16 + r * Wp * 16;
    const int64_t ih = r - pl0;
    if (ih < 0 || ih >= pi.H || iw1 <= iw0) {
      std::fill(d, d + Wp * 16, 0.0f);
      continue;
    }
    std::fill(d, d + (iw0 + pl1) * 16, 0.0f);
    transpose(img + ih * pi.W + iw0, HW, nc, iw1 - iw0, d + (iw0 + pl1) * 16, 16, 16);
    std::fill(d + (iw1 + pl1) * 16, d + Wp * 16, 0.0f);
  }
}

// The row length of depthwise_s2_forward's padded plane: the kernel over-reads each row up to
// 2 * 16*ceil(OW/16) + (KW-1)*dw + 32 floats.
int64_t dw_plane_ld(const ConvParams& p, const Geo& q) {
  return std::max(p.pad_lo[1] + p.W + p.pad_hi[1],
                  32 * ((q.OW + 15) / 16) + (p.KW - 1) * p.kdil[1] + 32);
}

// Column stride 2 (no input dilation, no cropping pads), output rows longer than 8 and a padded
// plane that stays in L1 (32 KB) take depthwise_s2_forward. Measured on Zen 5, 2 threads, 3x3
// stride 2, us, plane / 16-channel path: 8x256 28x28 177-189 / 213-216, 8x128 56x56 311-316 /
// 306-322; but 8x1024 7x7 (4 outputs a row: most of each vector idle, and 16x more items) 189 /
// 137, 8x64 112x112 (a 74 KB plane) 1103 / 951.
bool depthwise_s2(const ConvParams& p) {
  if (p.stride[1] != 2 || p.OW() <= 8 || !unit(p.idil) || p.pad_lo[0] < 0 || p.pad_lo[1] < 0 ||
      p.pad_hi[0] < 0 || p.pad_hi[1] < 0 ||
      conv_detail::avx512::depthwise_s2_plane_f32() == nullptr)
    return false;
  const int64_t Hp = p.H + p.pad_lo[0] + p.pad_hi[0];
  return Hp * dw_plane_ld(p, geo(p)) * 4 <= (int64_t(32) << 10);
}

// One channel plane, zero-padded (depthwise_s2_forward), and the padded geometry whose zeros
// it holds: items with the same geometry only rewrite the image rows.
thread_local Scratch t_dwplane;
thread_local std::array<int64_t, 7> t_dwplane_zeros{};

// y = Wc * x + bias for a depthwise conv with column stride 2, one (image, channel) plane per
// item: the plane is copied into a zero-padded buffer (rows long enough for the kernel's
// over-reads) and convolved straight into y's plane (the 16-channel path spent 46% of a
// stride-2 forward in transposes). y overwritten.
void depthwise_s2_forward(const ConvParams& p, const float* x, const float* w, const float* bias,
                          float* y) {
  const Geo q = geo(p);
  const auto kern = conv_detail::avx512::depthwise_s2_plane_f32();
  const int64_t Hp = p.H + p.pad_lo[0] + p.pad_hi[0], pl = p.pad_lo[1];
  const int64_t ld = dw_plane_ld(p, q);
  std::vector<float> wk(p.groups * q.KK);
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t k = 0; k < q.KK; ++k) wk[g * q.KK + k] = dw_tap(p, q, w, g, k);
  const int64_t items = p.N * p.groups;
  for_items(items, team_size(items), [&](int64_t item, int) {
    const int64_t n = item / p.groups, g = item % p.groups;
    const float* img = x + (n * p.C + g) * q.HW;
    // The key is cleared while the buffer may move (a failed growth must not leave it valid).
    const std::array<int64_t, 7> before = t_dwplane_zeros;
    t_dwplane_zeros = {};
    float* buf = t_dwplane.get<float>(Hp * ld);
    const std::array<int64_t, 7> zeros{
        reinterpret_cast<int64_t>(buf), Hp, ld, p.pad_lo[0], pl, p.H, p.W};
    if (before != zeros) std::fill(buf, buf + Hp * ld, 0.0f);
    t_dwplane_zeros = zeros;
    float* d = buf + p.pad_lo[0] * ld + pl;
    for (int64_t ih = 0; ih < p.H; ++ih) {
      const float* src = img + ih * p.W;
      float* dst = d + ih * ld;
      for (int64_t i = 0; i < p.W; ++i) dst[i] = src[i];
    }
    kern(buf, ld, q.OH, q.OW, p.stride[0], p.kdil[0], p.kdil[1], static_cast<int>(p.KH),
         static_cast<int>(p.KW), wk.data() + g * q.KK, bias != nullptr ? bias[g] : 0.0f,
         y + (n * p.O + g) * q.OHW);
  });
}

// y = Wc * x + bias for a depthwise conv (any stride; input dilation as output phases); y
// overwritten.
void depthwise_forward(const ConvParams& p, const float* x, const float* w, const float* bias,
                       float* y) {
  if (depthwise_s2(p)) return depthwise_s2_forward(p, x, w, bias, y);
  const Geo q = geo(p);
  const DirectPlan plan = direct_plan(p, q, false);
  const ConvParams& pi = plan.img;
  const int64_t Hp = pi.H + pi.pad_lo[0] + pi.pad_hi[0], Wp = plan.f.Wq;
  fill_unreached(p, q, plan, bias, y);
  const auto kern = conv_detail::avx512::depthwise16_row_f32();
  const auto transpose = conv_detail::avx512::transpose_f32();
  const int64_t ntaps_all = static_cast<int64_t>(plan.taps.size());
  const int64_t cgroups = (p.groups + 15) / 16;
  std::vector<float> w16(cgroups * ntaps_all * 16, 0.0f), b16(cgroups * 16, 0.0f);
  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t t = 0; t < ntaps_all; ++t)
      w16[((g / 16) * ntaps_all + t) * 16 + g % 16] = dw_tap(p, q, w, g, plan.taps[t]);
    if (bias != nullptr) b16[g] = bias[g];
  }
  int64_t cols = 1;
  for (const Phase& ph : plan.phases) cols = std::max(cols, ph.cols_valid);
  const int64_t items = p.N * cgroups;
  for_items(items, team_size(items), [&](int64_t item, int) {
    const int64_t n = item / cgroups, cg = item % cgroups, c0 = cg * 16;
    const int nc = static_cast<int>(std::min<int64_t>(16, p.groups - c0));
    float* x16 = t_flat.get<float>(Hp * Wp * 16);
    pad16(pi, x + (n * p.C + c0) * q.HW, nc, Hp, Wp, x16);
    float* out = y + (n * p.O + c0) * q.OHW;
    for (const Phase& ph : plan.phases) {
      const int64_t* off = plan.offs.data() + ph.tap0;
      const float* wg = w16.data() + (cg * ntaps_all + ph.tap0) * 16;
      // A small phase whose rows are consecutive in y goes back in one transpose of all its
      // positions: short rows (7 or 14 outputs) would each take a mostly idle 16x16 block.
      const int64_t n_out = ph.rows * ph.cols_valid;
      const bool whole = ph.out_col == 1 && ph.out_row == ph.cols_valid && n_out <= kDwWholeMax;
      float* row = t_dwrow.get<float>((whole ? n_out : cols) * 16);
      for (int64_t r = 0; r < ph.rows; ++r) {
        kern(ph.cols_valid, x16 + r * ph.in_row * 16, ph.in_col, off, static_cast<int>(ph.ntaps),
             wg, b16.data() + c0, whole ? row + r * ph.cols_valid * 16 : row);
        if (whole) continue;
        float* d = out + ph.out0 + r * ph.out_row;
        if (ph.out_col == 1) {
          transpose(row, 16, ph.cols_valid, nc, d, q.OHW, ph.cols_valid);
          continue;
        }
        for (int64_t j = 0; j < ph.cols_valid; ++j)
          for (int c = 0; c < nc; ++c) d[c * q.OHW + j * ph.out_col] = row[j * 16 + c];
      }
      if (whole) transpose(row, 16, n_out, nc, out + ph.out0, q.OHW, n_out);
    }
  });
}

// gw = sum_n correlations of x[n] with gy[n] for a depthwise conv without input dilation, in
// the stored layout; gw overwritten. Per-member partial sums [16-channel group][tap][16],
// added in member order.
void depthwise_grad_weight(const ConvParams& p, const float* x, const float* gy, float* gw) {
  const Geo q = geo(p);
  const DirectPlan plan = direct_plan(p, q, false);  // one phase, every tap in order
  const Phase& ph = plan.phases[0];
  const int64_t Hp = p.H + p.pad_lo[0] + p.pad_hi[0], Wp = plan.f.Wq;
  const auto kern = conv_detail::avx512::depthwise16_grad_f32();
  const auto transpose = conv_detail::avx512::transpose_f32();
  const int64_t cgroups = (p.groups + 15) / 16, wsize = cgroups * q.KK * 16;
  const int64_t items = p.N * cgroups;
  const int team = team_size(items);
  float* acc = t_wacc.get<float>(team * wsize);
  std::fill(acc, acc + team * wsize, 0.0f);
  for_items(items, team, [&](int64_t item, int member) {
    const int64_t n = item / cgroups, cg = item % cgroups, c0 = cg * 16;
    const int nc = static_cast<int>(std::min<int64_t>(16, p.groups - c0));
    float* x16 = t_flat.get<float>(Hp * Wp * 16);
    pad16(p, x + (n * p.C + c0) * q.HW, nc, Hp, Wp, x16);
    float* g16 = t_dwrow.get<float>(q.OHW * 16);
    transpose(gy + (n * p.O + c0) * q.OHW, q.OHW, nc, q.OHW, g16, 16, 16);
    float* a = acc + member * wsize + cg * q.KK * 16;
    for (int64_t r = 0; r < q.OH; ++r)
      kern(q.OW, g16 + r * q.OW * 16, x16 + r * ph.in_row * 16, ph.in_col, plan.offs.data(),
           static_cast<int>(q.KK), a);
  });
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t k = 0; k < q.KK; ++k) {
      const int64_t i = ((g / 16) * q.KK + k) * 16 + g % 16;
      float s = acc[i];
      for (int m = 1; m < team; ++m) s += acc[m * wsize + i];
      gw[g * q.KK + (p.flip ? q.KK - 1 - k : k)] = s;
    }
}

// ---- Winograd F(2x2, 3x3) -------------------------------------------------------
// Stride-1 3x3 convs (and so their grad-input) with 2x2 output tiles: 16 multiplications per
// tile and channel pair instead of 36 (the kernels and the algebra: cpu/isa/conv_kernels.h).
// The tiles of the batch are numbered (image, tile row, tile column) and cut into chunks of
// wino_chunk tiles, one chunk per thread at a time; a chunk's 16 transformed inputs V (C x
// tiles each) and products M (channels rounded up to 8 x tiles each) stay in the core's L2.

thread_local Scratch t_wino_u;  // transformed weights, written by the calling thread
thread_local Scratch t_wino;    // one chunk's V and M

// PYENGINE_CONV_WINOGRAD: "0" off, "1" wherever the shape allows (tests), else chosen.
int wino_mode() {
  const char* e = std::getenv("PYENGINE_CONV_WINOGRAD");
  return e == nullptr || e[0] == '\0' ? -1 : (e[0] == '1' ? 1 : 0);
}

constexpr int64_t kWinoCols = 48;  // tiles per GEMM tile (3 vectors)

// Tiles per chunk: V and M of a chunk (16 * (C + O8) floats per tile) in about 768 KiB of
// L2, in whole GEMM tiles of 48, at least one.
int64_t wino_chunk(int64_t C, int64_t O8) {
  const int64_t per_tile = 16 * (C + O8) * int64_t(sizeof(float));
  const int64_t fit = (int64_t(768) << 10) / per_tile / kWinoCols * kWinoCols;
  return std::clamp<int64_t>(fit, kWinoCols, 4 * kWinoCols);
}

// The tiles of a batch, the chunks they are cut into, and the layout of a chunk's matrices.
// Rows of a chunk's matrices have 16 floats of room for the kernels' whole-vector stores and
// loads past the last tile; each xi's matrix starts 64 bytes off a 4 KiB multiple, or the
// transforms' 16 streams (one per xi) would fall in one L1 set.
struct WinoPlan {
  Geo q;
  int64_t nob, O8, TH, TW, T, chunk, nchunks, ld, vxi, mxi;
};

WinoPlan wino_plan(const ConvParams& p) {
  WinoPlan w;
  w.q = geo(p);
  w.nob = (p.O + 7) / 8;
  w.O8 = w.nob * 8;
  w.TH = (w.q.OH + 1) / 2;
  w.TW = (w.q.OW + 1) / 2;
  w.T = p.N * w.TH * w.TW;
  w.chunk = wino_chunk(p.C, w.O8);
  w.nchunks = (w.T + w.chunk - 1) / w.chunk;
  w.ld = w.chunk + 16;
  w.vxi = p.C * w.ld + 16;
  w.mxi = w.O8 * w.ld + 16;
  return w;
}

// Where the shape allows, Winograd where it measured faster than the direct tiles (Zen 5, 2
// threads, forward, direct / Winograd time): 8x64->64 56x56 1.48, 8x128->128 28x28 1.76,
// 8x32->32 56x56 1.34, 1x64->64 56x56 1.27; on 14x14 tile rows (runs of 7 tiles in 16 lanes)
// only with many channels: 128->128 1.09, 256->256 1.06, 384->384 1.22, 256->128 1.15, but
// 64->64 0.65; 8x512->512 28x28 1.39 (larger channel counts were not measured, so they stay
// direct). It loses with fewer chunks than four per thread (1x256->256 14x14 0.40,
// 8x512->512 7x7 0.42, 8x64->64 8x8 0.60) and where the transforms outweigh the saved products
// (8x16->16 28x28 0.97, 8x8->8 56x56 0.78).
bool winograd_applies(const ConvParams& p) {
  const int mode = wino_mode();
  if (mode == 0 || !direct_enabled() || p.groups != 1 || p.KH != 3 || p.KW != 3) return false;
  if (!unit(p.stride) || !unit(p.kdil) || !unit(p.idil) || p.OH() < 1 || p.OW() < 1) return false;
  if (mode == 1) return true;
  const WinoPlan w = wino_plan(p);
  const int64_t ch = std::min(p.C, p.O);
  return ch >= 32 && (w.q.OW >= 28 || ch >= 128) && p.C + w.O8 <= 1024 &&
         w.T >= 4 * get_num_threads() * w.chunk;
}

// The weight transform G of F(2x2, 3x3), rows (1, 0, 0), (1/2, 1/2, 1/2), (1/2, -1/2, 1/2),
// (0, 0, 1): out = G v (the forward's weights) and out = G^T v (the grad-weight back to the
// kernel), additions and exact halves only.
void wino_g(double v0, double v1, double v2, double out[4]) {
  out[0] = v0;
  out[1] = 0.5 * (v0 + v1 + v2);
  out[2] = 0.5 * (v0 - v1 + v2);
  out[3] = v2;
}
void wino_gt(double v0, double v1, double v2, double v3, double out[3]) {
  out[0] = v0 + 0.5 * (v1 + v2);
  out[1] = 0.5 * (v1 - v2);
  out[2] = 0.5 * (v1 + v2) + v3;
}

// u[(xi*nob + ob)*C*8 + c*8 + i] = (G g G^T)[xi / 4][xi % 4] for output o = ob*8 + i (zero
// past O), input c, g = the canonical 3x3 kernel (o, c), read from the stored weight w through
// flip / wtrans (no canonical copy: for a grad-input's transposed 256x256 weight that serial
// copy was 6% of the call); computed in double.
void wino_weights(const ConvParams& p, const float* w, float* u) {
  const Geo q = geo(p);
  const int64_t C = p.C, O = p.O, nob = (O + 7) / 8, xs = nob * C * 8;  // xs: xi to xi + 1
  // Over the team: at 256 x 256 channels this was a serial millisecond of the forward.
  for_items(nob, team_size(nob), [&](int64_t ob, int) {
    for (int64_t c = 0; c < C; ++c)
      for (int i = 0; i < 8; ++i) {
        const int64_t o = ob * 8 + i;
        double gg[3][4] = {};  // (G g)^T: column b of G g
        if (o < O) {
          float g[9];  // the canonical kernel, read through flip / wtrans
          for (int k = 0; k < 9; ++k) g[k] = w[widx(p, q, 0, o, c, k / 3, k % 3)];
          for (int b = 0; b < 3; ++b) wino_g(g[b], g[3 + b], g[6 + b], gg[b]);
        }
        float* uo = u + ob * C * 8 + c * 8 + i;
        for (int a = 0; a < 4; ++a) {
          double h[4];  // row a of G g G^T
          wino_g(gg[0][a], gg[1][a], gg[2][a], h);
          for (int b = 0; b < 4; ++b) uo[(a * 4 + b) * xs] = static_cast<float>(h[b]);
        }
      }
  });
}

// The grad-weight (summed over tiles per thread, then over threads) wins on fewer shapes than
// the forward (Zen 5, 2 threads, Winograd / direct time): 8x64->64 56x56 0.73, 8x128->128
// 28x28 0.78, 8x64->128 28x28 0.81, 8x96->96 30x30 0.93; but 8x32->32 112x112 1.04, 2x32->32
// 56x56 1.18, 1x64->64 56x56 1.05 (eight chunks), and at 14x14 1.2-1.25 (256->256, 384->384,
// 128->128: 392 tiles, four chunks per thread).
bool winograd_grad_weight_applies(const ConvParams& p) {
  if (!winograd_applies(p)) return false;
  if (wino_mode() == 1) return true;
  const WinoPlan w = wino_plan(p);
  return std::min(p.C, p.O) >= 64 && w.T >= 8 * get_num_threads() * w.chunk;
}

// fn(n, th, tw, cnt, col) for the runs of chunk k's tiles: a tile row cut at 16 tiles, at the
// chunk's ends and at tile-row ends; col is the run's first column in the chunk's matrices.
// Returns the chunk's tile count.
template <typename F>
int64_t for_wino_runs(const WinoPlan& w, int64_t k, F&& fn) {
  const int64_t t0 = k * w.chunk, end = std::min(t0 + w.chunk, w.T);
  for (int64_t t = t0; t < end;) {
    const int64_t n = t / (w.TH * w.TW), th = t / w.TW % w.TH, tw = t % w.TW;
    const int cnt = static_cast<int>(std::min<int64_t>({16, w.TW - tw, end - t}));
    fn(n, th, tw, cnt, t - t0);
    t += cnt;
  }
  return end - t0;
}

// fn(c0, cn) for blocks of channels [c0, c0 + cn) of C: the transforms visit a chunk's runs
// once per block of 16 channels, so that each channel's rows are read (or written) as a few
// streams rather than one run of all channels at a time (3% faster than all channels or one,
// 8x64->64 56x56 forward and grad-weight).
template <typename F>
void for_channel_blocks(int64_t C, F&& fn) {
  constexpr int64_t kBlock = 16;
  for (int64_t c0 = 0; c0 < C; c0 += kBlock) fn(c0, std::min(kBlock, C - c0));
}

// Chunk k's transformed inputs: V[xi*vxi + c*ld + col], overwritten.
void wino_inputs(const ConvParams& p, const WinoPlan& w, int64_t k, const float* x, float* V) {
  const auto input = conv_detail::avx512::wino_input_f32();
  for_channel_blocks(p.C, [&](int64_t c0, int64_t cn) {
    for_wino_runs(w, k, [&](int64_t n, int64_t th, int64_t tw, int cnt, int64_t col) {
      input(x + (n * p.C + c0) * w.q.HW, w.q.HW, cn, p.H, p.W, 2 * th - p.pad_lo[0],
            2 * tw - p.pad_lo[1], cnt, V + c0 * w.ld + col, w.ld, w.vxi);
    });
  });
}

void winograd_forward(const ConvParams& p, const float* x, const float* w, const float* bias,
                      float* y) {
  const WinoPlan pl = wino_plan(p);
  const auto tile = conv_detail::avx512::direct_tile_f32();  // one tap at 0, zero init
  const int64_t tap0[1] = {0};
  const float zero[8] = {};
  const auto output = conv_detail::avx512::wino_output_f32();
  const Geo& q = pl.q;
  float* u = t_wino_u.get<float>(16 * pl.O8 * p.C);
  wino_weights(p, w, u);
  for_items(pl.nchunks, team_size(pl.nchunks), [&](int64_t k, int) {
    float* V = t_wino.get<float>(16 * (pl.vxi + pl.mxi));
    float* M = V + 16 * pl.vxi;
    wino_inputs(p, pl, k, x, V);
    const int64_t cols = std::min(pl.chunk, pl.T - k * pl.chunk);
    for (int xi = 0; xi < 16; ++xi)
      for (int64_t j = 0; j < cols; j += kWinoCols) {
        const int nv = static_cast<int>(std::min<int64_t>(3, (cols - j + 15) / 16));
        for (int64_t ob = 0; ob < pl.nob; ++ob)
          tile(nv, V + xi * pl.vxi + j, pl.ld, p.C, tap0, 1, u + (xi * pl.nob + ob) * p.C * 8, zero,
               M + xi * pl.mxi + ob * 8 * pl.ld + j, pl.ld);
      }
    for_channel_blocks(p.O, [&](int64_t o0, int64_t on) {
      for_wino_runs(pl, k, [&](int64_t n, int64_t th, int64_t tw, int cnt, int64_t col) {
        output(M + o0 * pl.ld + col, pl.ld, pl.mxi, on, cnt, bias ? bias + o0 : nullptr,
               y + (n * p.O + o0) * q.OHW, q.OHW, q.OH, q.OW, 2 * th, 2 * tw);
      });
    });
  });
}

// gw (stored layout, overwritten) = G^T dU G with dU[xi](o, c) = sum over tiles of
// (A e A^T)[xi](o) * V[xi](c): per xi a GEMM over the chunk's tiles, summed per thread, then
// over threads.
void winograd_grad_weight(const ConvParams& p, const float* x, const float* gy, float* gw) {
  const WinoPlan pl = wino_plan(p);
  const auto grad_output = conv_detail::avx512::wino_grad_output_f32();
  const Geo& q = pl.q;
  const int team = team_size(pl.nchunks);
  const int64_t usize = 16 * p.O * p.C;
  float* acc = t_wacc.get<float>(team * usize);
  std::fill(acc, acc + team * usize, 0.0f);
  for_items(pl.nchunks, team, [&](int64_t k, int member) {
    float* V = t_wino.get<float>(16 * (pl.vxi + pl.mxi));
    float* dM = V + 16 * pl.vxi;
    wino_inputs(p, pl, k, x, V);
    const int64_t cols = std::min(pl.chunk, pl.T - k * pl.chunk);
    for_channel_blocks(p.O, [&](int64_t o0, int64_t on) {
      for_wino_runs(pl, k, [&](int64_t n, int64_t th, int64_t tw, int cnt, int64_t col) {
        grad_output(gy + (n * p.O + o0) * q.OHW, q.OHW, on, q.OH, q.OW, 2 * th, 2 * tw, cnt,
                    dM + o0 * pl.ld + col, pl.ld, pl.mxi);
      });
    });
    float* a = acc + member * usize;
    for (int xi = 0; xi < 16; ++xi)  // a[xi] (O x C) += dM[xi] (O x cols) * V[xi]^T
      gemm<float>(false, true, p.O, p.C, cols, 1.0f, dM + xi * pl.mxi, pl.ld, V + xi * pl.vxi,
                  pl.ld, 1.0f, a + xi * p.O * p.C, p.C);
  });
  // Sum the team's partial sums and transform back, G^T dU G as (G^T (dU G)); rows of o split
  // over the team.
  for_items(p.O, team, [&](int64_t o, int) {
    for (int64_t c = 0; c < p.C; ++c) {
      double du[16];
      for (int xi = 0; xi < 16; ++xi) {
        du[xi] = 0.0;
        for (int m = 0; m < team; ++m) du[xi] += acc[m * usize + (xi * p.O + o) * p.C + c];
      }
      double dug[4][3];  // dU G: row a is G^T applied to row a of dU
      for (int a = 0; a < 4; ++a)
        wino_gt(du[a * 4], du[a * 4 + 1], du[a * 4 + 2], du[a * 4 + 3], dug[a]);
      for (int kw = 0; kw < 3; ++kw) {
        double g[3];  // column kw of G^T (dU G)
        wino_gt(dug[0][kw], dug[1][kw], dug[2][kw], dug[3][kw], g);
        for (int kh = 0; kh < 3; ++kh) gw[widx(p, q, 0, o, c, kh, kw)] = static_cast<float>(g[kh]);
      }
    }
  });
}

// Which primitive computes a forward. A conv with idil > 1 and stride 1 (transposed convs,
// grad-input of strided convs) must go through its adjoint (idil == 1): im2col would
// multiply the inserted zeros. A stride-1 conv with fewer output than input channels per
// group also goes that way (the grad-input of a conv with few input channels, e.g. an RGB
// stem): its own GEMM would have only Og rows (a fraction of one register tile when
// Og < MR) and im2col would copy the wider input side; the adjoint's GEMM has Og*KH*KW rows
// and col2im touches the thinner output side. A 1x1 stride-1 conv with a flipped, transposed
// weight (the grad-input of a 1x1 conv2d) goes that way too: the adjoint is the same GEMM
// reading the stored weight transposed in place, with no repacking.
bool via_adjoint(const ConvParams& p) {
  if (!unit(p.stride)) return false;
  if (!unit(p.idil)) return true;
  if (pointwise(p)) return p.flip && p.wtrans;  // the adjoint reads the stored weight as is
  const int64_t cg = p.C / p.groups, og = p.O / p.groups;
  return !pointwise(p) && og < cg;
}

}  // namespace

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  if (p.N == 0 || p.O == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (winograd_applies(p)) return winograd_forward(p, x, w, bias, y);
    if (const auto kern = direct_kernel(p)) return direct_forward(kern, p, x, w, bias, y);
    if (direct_depthwise(p)) return depthwise_forward(p, x, w, bias, y);
  }
  if (via_adjoint(p))
    adjoint_col2im(conv_adjoint(p), x, w, bias, y);
  else
    forward_im2col(p, x, w, bias, y);
}

template <typename T>
void conv_grad_input(const ConvParams& p, const T* gy, const T* w, T* gx) {
  if (p.N == 0 || p.C == 0) return;
  conv_forward(conv_adjoint(p), gy, w, static_cast<const T*>(nullptr), gx);
}

template <typename T>
void conv_grad_weight(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const int64_t wsize = p.O * (p.C / p.groups) * p.KH * p.KW;
  if (p.N == 0 || wsize == 0) {
    std::fill(gw, gw + wsize, T(0));
    return;
  }
  // A conv with input dilation and stride 1 (a transposed conv) goes through its adjoint with
  // the roles of x and gy swapped (the same bilinear form): the direct kernel and im2col both
  // need a conv without input dilation, or they would multiply the inserted zeros.
  const bool swap = !unit(p.idil) && unit(p.stride);
  const ConvParams pp = swap ? conv_adjoint(p) : p;
  const T* xx = swap ? gy : x;
  const T* gg = swap ? x : gy;
  if constexpr (std::is_same_v<T, float>) {
    if (winograd_grad_weight_applies(pp)) return winograd_grad_weight(pp, xx, gg, gw);
    if (direct_depthwise(pp) && unit(pp.idil)) return depthwise_grad_weight(pp, xx, gg, gw);
    if (direct_grad_weight_pays(pp)) {
      if (const auto kern = conv_detail::avx512::grad_weight_tile_f32())
        return direct_grad_weight(kern, pp, xx, gg, gw);
    }
  }
  grad_weight_im2col(pp, xx, gg, gw);
}

// Channels over the team; each channel's sum has a fixed order (bitwise whatever the thread
// count): a row in 16 lanes of T (a loop that vectorizes), the lanes and the rows added in
// double. Measured on Zen 5, 2 threads: 22 us at 8x256x14x14 and 37 us at 8x64x56x56, where
// NumPy's sum over (0, 2, 3) took 79 and 219 us.
template <typename T>
void conv_grad_bias(const ConvParams& p, const T* gy, T* gb) {
  constexpr int L = 16;
  const int64_t hw = p.OH() * p.OW();
  const int nt = inner_threads(1, p.N * p.O * hw);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t o = 0; o < p.O; ++o) {
    double s = 0.0;
    for (int64_t n = 0; n < p.N; ++n) {
      const T* r = gy + (n * p.O + o) * hw;
      T lane[L] = {};
      int64_t i = 0;
      for (; i + L <= hw; i += L)
        for (int l = 0; l < L; ++l) lane[l] += r[i + l];
      for (int l = 0; l < L; ++l) s += static_cast<double>(lane[l]);
      for (; i < hw; ++i) s += static_cast<double>(r[i]);
    }
    gb[o] = static_cast<T>(s);
  }
}

#define PYENGINE_INSTANTIATE_CONV(T)                                                  \
  template void conv_forward<T>(const ConvParams&, const T*, const T*, const T*, T*); \
  template void conv_grad_input<T>(const ConvParams&, const T*, const T*, T*);        \
  template void conv_grad_weight<T>(const ConvParams&, const T*, const T*, T*);       \
  template void conv_grad_bias<T>(const ConvParams&, const T*, T*);
PYENGINE_INSTANTIATE_CONV(float)
PYENGINE_INSTANTIATE_CONV(double)
#undef PYENGINE_INSTANTIATE_CONV

}  // namespace pyengine::cpu
