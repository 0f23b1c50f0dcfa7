// The generalized 2-D convolution (contract in cpu/conv.h), built on the CPU GEMM.
//
// Three primitives, each a loop over (image, group) pairs around one GEMM:
//   forward_im2col      y  = Wc * im2col(x)            (any parameters; the path of conv2d)
//   adjoint_col2im      gx = col2im(Wc^T * gy)         (p's grad-input; used for every conv
//                                                       with idil > 1 and stride 1, i.e.
//                                                       transposed convs, as the adjoint of
//                                                       a conv with idil == 1)
//   grad_weight_im2col  gW = sum_n gy * im2col(x)^T
// Wc is the weight in canonical layout (groups, Og, Cg*KH*KW), which is the stored weight
// itself for conv2d and a repacked copy (flip / transposed storage) otherwise; weights are
// small next to the activations. A 1x1, stride-1, unpadded conv skips im2col: the image is
// already the GEMM's B matrix.
#include "cpu/conv.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/parallel.h"
#include "cpu/gemm.h"
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
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(ptr_); }

  template <typename T>
  T* get(int64_t elems) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(elems, 1)) * sizeof(T);
    if (bytes > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      cap_ = 0;
      const size_t rounded = (bytes + 4095) / 4096 * 4096;
      ptr_ = std::aligned_alloc(64, rounded);
      if (ptr_ == nullptr) throw std::bad_alloc();
      cap_ = rounded;
    }
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t cap_ = 0;
};

thread_local Scratch t_col;    // the columns of one (image, group): Cg*KH*KW x OH*OW
thread_local Scratch t_wpack;  // canonical weight, written by the calling thread
thread_local Scratch t_wacc;   // grad-weight partial sums, one slice per team member

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

// The weight as (groups, Og, Cg*KH*KW) row-major: w itself when already so, else a copy in
// the calling thread's workspace.
template <typename T>
const T* canonical_weight(const ConvParams& p, const Geo& q, const T* w) {
  if (!p.flip && !p.wtrans) return w;
  T* dst = t_wpack.get<T>(p.groups * q.Og * q.CKK);
  T* d = dst;
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t o = 0; o < q.Og; ++o)
      for (int64_t c = 0; c < q.Cg; ++c)
        for (int64_t kh = 0; kh < p.KH; ++kh)
          for (int64_t kw = 0; kw < p.KW; ++kw) *d++ = w[widx(p, q, g, o, c, kh, kw)];
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

// Walks the (Cg*KH*KW) x (OH*OW) column matrix of one (image, group) and calls
// row_fn(dst_row_ptr, src_row_ptr_or_null, lo, hi, off, sw) for every output row segment.
// im2col and col2im are this walk with a gather or a scatter-add.
template <typename T, typename Src, typename Fn>
void walk_columns(const ConvParams& p, const Geo& q, Src* img, T* col, Fn&& row_fn) {
  const int64_t sh = p.stride[0], sw = p.stride[1];
  for (int64_t c = 0; c < q.Cg; ++c) {
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      const int64_t offh = kh * p.kdil[0] - p.pad_lo[0];
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        const int64_t offw = kw * p.kdil[1] - p.pad_lo[1];
        T* rows = col + ((c * p.KH + kh) * p.KW + kw) * q.OHW;
        int64_t lo = 0, hi = 0;
        if (p.idil[1] == 1) valid_range(p.W, q.OW, sw, offw, lo, hi);
        for (int64_t oh = 0; oh < q.OH; ++oh) {
          const int64_t ih = source(oh * sh + offh, p.idil[0], p.H);
          row_fn(rows + oh * q.OW, ih < 0 ? nullptr : img + (c * p.H + ih) * p.W, lo, hi, offw, sw);
        }
      }
    }
  }
}

// col = im2col(img): img is (Cg, H, W) of one image and group; col is overwritten.
template <typename T>
void im2col(const ConvParams& p, const Geo& q, const T* img, T* col) {
  const int64_t OW = q.OW;
  const int64_t idw = p.idil[1];
  walk_columns(p, q, img, col,
               [&](T* d, const T* s, int64_t lo, int64_t hi, int64_t off, int64_t sw) {
                 if (s == nullptr) {
                   std::fill(d, d + OW, T(0));
                 } else if (idw == 1) {
                   std::fill(d, d + lo, T(0));
                   if (sw == 1) {
                     if (hi > lo) std::memcpy(d + lo, s + lo + off, (hi - lo) * sizeof(T));
                   } else {
                     for (int64_t ow = lo; ow < hi; ++ow) d[ow] = s[ow * sw + off];
                   }
                   std::fill(d + hi, d + OW, T(0));
                 } else {
                   for (int64_t ow = 0; ow < OW; ++ow) {
                     const int64_t iw = source(ow * sw + off, idw, p.W);
                     d[ow] = iw < 0 ? T(0) : s[iw];
                   }
                 }
               });
}

// img += col2im(col): the adjoint of im2col; img (Cg, H, W) is accumulated into.
template <typename T>
void col2im(const ConvParams& p, const Geo& q, const T* col, T* img) {
  const int64_t OW = q.OW;
  const int64_t idw = p.idil[1];
  walk_columns(p, q, img, const_cast<T*>(col),
               [&](const T* d, T* s, int64_t lo, int64_t hi, int64_t off, int64_t sw) {
                 if (s == nullptr) return;
                 if (idw == 1) {
                   if (sw == 1) {
                     T* t = s + off;
                     for (int64_t ow = lo; ow < hi; ++ow) t[ow] += d[ow];
                   } else {
                     for (int64_t ow = lo; ow < hi; ++ow) s[ow * sw + off] += d[ow];
                   }
                 } else {
                   for (int64_t ow = 0; ow < OW; ++ow) {
                     const int64_t iw = source(ow * sw + off, idw, p.W);
                     if (iw >= 0) s[iw] += d[ow];
                   }
                 }
               });
}

// ---- threads -------------------------------------------------------------------
// Team size for a loop over `items` (image, group) pairs: one item per thread at a time
// when there are at least as many items as threads (each GEMM inside then runs on one
// thread: no barriers, no shared panels), else 1 (the GEMMs use the threads).
int team_size(int64_t items) {
  const int nt = get_num_threads();
#ifdef _OPENMP
  if (nt > 1 && items >= nt && !omp_in_parallel()) return nt;
#endif
  (void)items;
  (void)nt;
  return 1;
}

// body(item, member) for item in [0, items), member < team. Exceptions (only bad_alloc)
// cannot leave an OpenMP region: the first is carried out and rethrown.
template <typename F>
void for_items(int64_t items, int team, F&& body) {
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

// ---- primitives ----------------------------------------------------------------
// y = Wc * im2col(x) + bias; y overwritten.
template <typename T>
void forward_im2col(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const Geo q = geo(p);
  const T* A = canonical_weight(p, q, w);
  const bool direct = pointwise(p);
  const int64_t items = p.N * p.groups;
  for_items(items, team_size(items), [&](int64_t item, int) {
    const int64_t n = item / p.groups, g = item % p.groups;
    const T* img = x + (n * p.C + g * q.Cg) * q.HW;
    const T* B = img;
    if (!direct) {
      T* col = t_col.get<T>(q.CKK * q.OHW);
      im2col(p, q, img, col);
      B = col;
    }
    Epilogue<T> ep;
    if (bias != nullptr) {
      ep.bias = bias + g * q.Og;
      ep.bias_kind = BiasKind::PerRow;
    }
    gemm<T>(false, false, q.Og, q.OHW, q.CKK, T(1), A + g * q.Og * q.CKK, q.CKK, B, q.OHW, T(0),
            y + (n * p.O + g * q.Og) * q.OHW, q.OHW, ep);
  });
}

// gx = col2im(Wc^T * gy) + bias (bias per channel of gx, may be null): p's grad-input.
// gx overwritten.
template <typename T>
void adjoint_col2im(const ConvParams& p, const T* gy, const T* w, const T* bias, T* gx) {
  const Geo q = geo(p);
  const T* A = canonical_weight(p, q, w);
  const bool direct = pointwise(p);
  const int64_t items = p.N * p.groups;
  for_items(items, team_size(items), [&](int64_t item, int) {
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
    T* col = t_col.get<T>(q.CKK * q.OHW);
    gemm<T>(true, false, q.CKK, q.OHW, q.Og, T(1), Ag, q.CKK, gin, q.OHW, T(0), col, q.OHW);
    for (int64_t c = 0; c < q.Cg; ++c) {
      const T b = bias != nullptr ? bias[g * q.Cg + c] : T(0);
      std::fill(out + c * q.HW, out + (c + 1) * q.HW, b);
    }
    col2im(p, q, col, out);
  });
}

// gw = sum_n gy[n] * im2col(x[n])^T, written into the stored layout; gw overwritten.
template <typename T>
void grad_weight_im2col(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const Geo q = geo(p);
  const int64_t wsize = p.groups * q.Og * q.CKK;
  const bool direct = pointwise(p);
  const int64_t items = p.N * p.groups;
  const int team = team_size(items);
  T* acc = t_wacc.get<T>(team * wsize);
  std::fill(acc, acc + team * wsize, T(0));
  for_items(items, team, [&](int64_t item, int member) {
    const int64_t n = item / p.groups, g = item % p.groups;
    const T* img = x + (n * p.C + g * q.Cg) * q.HW;
    const T* B = img;
    if (!direct) {
      T* col = t_col.get<T>(q.CKK * q.OHW);
      im2col(p, q, img, col);
      B = col;
    }
    gemm<T>(false, true, q.Og, q.CKK, q.OHW, T(1), gy + (n * p.O + g * q.Og) * q.OHW, q.OHW, B,
            q.OHW, T(1), acc + member * wsize + g * q.Og * q.CKK, q.CKK);
  });
  const T* a = acc;
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t o = 0; o < q.Og; ++o)
      for (int64_t c = 0; c < q.Cg; ++c)
        for (int64_t kh = 0; kh < p.KH; ++kh)
          for (int64_t kw = 0; kw < p.KW; ++kw, ++a) {
            T s = a[0];
            for (int m = 1; m < team; ++m) s += a[m * wsize];
            gw[widx(p, q, g, o, c, kh, kw)] = s;
          }
}

// The im2col primitives serve every conv except idil > 1 with stride 1 (transposed convs),
// which would multiply the inserted zeros; those go through their adjoint (idil == 1).
bool via_adjoint(const ConvParams& p) { return !unit(p.idil) && unit(p.stride); }

}  // namespace

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  if (p.N == 0 || p.O == 0) return;
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
  if (via_adjoint(p))
    grad_weight_im2col(conv_adjoint(p), gy, x, gw);  // same bilinear form, roles swapped
  else
    grad_weight_im2col(p, x, gy, gw);
}

template <typename T>
void conv_grad_bias(const ConvParams& p, const T* gy, T* gb) {
  const int64_t hw = p.OH() * p.OW();
  for (int64_t o = 0; o < p.O; ++o) {
    double s = 0.0;  // memory-bound: a wide accumulator costs nothing
    for (int64_t n = 0; n < p.N; ++n) {
      const T* r = gy + (n * p.O + o) * hw;
      for (int64_t i = 0; i < hw; ++i) s += static_cast<double>(r[i]);
    }
    gb[o] = static_cast<T>(s);
  }
}

#define PYENGINE_INSTANTIATE_CONV(T)                                                    \
  template void conv_forward<T>(const ConvParams&, const T*, const T*, const T*, T*); \
  template void conv_grad_input<T>(const ConvParams&, const T*, const T*, T*);        \
  template void conv_grad_weight<T>(const ConvParams&, const T*, const T*, T*);       \
  template void conv_grad_bias<T>(const ConvParams&, const T*, T*);
PYENGINE_INSTANTIATE_CONV(float)
PYENGINE_INSTANTIATE_CONV(double)
#undef PYENGINE_INSTANTIATE_CONV

}  // namespace pyengine::cpu
