// CPU pooling drivers (contracts in pool.h). The row kernels are ISA-specific
// (cpu/isa/pool_*.cpp); this file owns planes, windows, padding and threads.
//
// Max and average pooling copy each input plane once into a per-thread buffer
// laid out phase by phase (see isa/pool_kernels.h): the padded column v = iw +
// pW goes to phase row v % sW at position v / sW. Every window tap (kh, kw)
// then reads a contiguous run for consecutive outputs, so the row kernels are
// plain vector loads whatever the stride, dilation or padding. Padding holds
// -inf (max) or 0 (avg); padded rows are skipped, not stored. The average
// backward adds into a gradient buffer of the same layout and copies it back.
#include "cpu/pool.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <new>

#include "core/cpu_features.h"
#include "core/parallel.h"
#include "core/workspace.h"
#include "cpu/isa/pool_kernels.h"

namespace pyengine::cpu {
namespace {

using pool_detail::RowKernels;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- workspace ---------------------------------------------------------------
// A per-thread, 64-byte aligned scratch buffer that grows and is reused, so the
// hot path does not allocate (fresh pages are expensive on our VMs).
using Scratch = ::pyengine::Workspace;  // csrc/core/workspace.h

thread_local Scratch t_plane;   // one phase-layout plane (each worker thread)
thread_local Scratch t_rows;    // tap lists and row scratch (each worker thread)
thread_local Scratch t_tables;  // per-call tables, filled by the calling thread

// Carves consecutive 64-byte aligned arrays out of one scratch buffer.
class Carver {
 public:
  template <typename U>
  size_t add(int64_t n) {
    const size_t at = size_;
    size_ += (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(U) + 63) / 64 * 64;
    return at;
  }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

template <typename U>
U* at(void* base, size_t off) {
  return reinterpret_cast<U*>(static_cast<char*>(base) + off);
}

// ---- ISA selection -----------------------------------------------------------
template <typename T>
RowKernels<T> generic_kernels();
template <>
RowKernels<float> generic_kernels<float>() {
  return pool_detail::generic::row_kernels_f32();
}
template <>
RowKernels<double> generic_kernels<double>() {
  return pool_detail::generic::row_kernels_f64();
}

// The vector paths compute indices in 32-bit lanes (float32): planes whose
// indices might not fit take the generic path.
template <typename T>
RowKernels<T> select_kernels(bool indices_fit_int32) {
  if (!indices_fit_int32) return generic_kernels<T>();
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512:
      if constexpr (sizeof(T) == 4)
        return pool_detail::avx512::row_kernels_f32();
      else
        return pool_detail::avx512::row_kernels_f64();
    case Isa::AVX2:
      if constexpr (sizeof(T) == 4)
        return pool_detail::avx2::row_kernels_f32();
      else
        return pool_detail::avx2::row_kernels_f64();
#endif
    default: return generic_kernels<T>();
  }
}

// ---- threads -----------------------------------------------------------------
// Runs fn(p) for p in [0, planes) on OpenMP threads (one thread for small work).
// An exception (a failed workspace allocation) is carried out of the region.
template <typename Fn>
void for_each_plane(int64_t planes, int64_t work_per_plane, Fn&& fn) {
  if (planes <= 0) return;
  const double work = static_cast<double>(planes) * static_cast<double>(work_per_plane);
  const int nt =
      work < 16384.0 ? 1 : static_cast<int>(std::min<int64_t>(get_num_threads(), planes));
  std::exception_ptr err = nullptr;
  std::atomic<bool> failed{false};
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t p = 0; p < planes; ++p) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      fn(p);
    } catch (...) {
#pragma omp critical(pyengine_pool_error)
      {
        if (!err) err = std::current_exception();
      }
      failed.store(true);
    }
  }
  if (err) std::rethrow_exception(err);
}

// ---- phase layout of one plane ---------------------------------------------
struct Phase {
  int64_t s, pad, Lp, row;  // stride, left padding, phase-row length, elements per input row
};

Phase phase_of(const Pool2d& g) {
  const int64_t reach = (g.OW - 1) * g.sW + (g.kW - 1) * g.dW + 1;  // padded columns read
  const int64_t wv = std::max(g.W + g.pW, reach);
  const int64_t qmax = ((g.kW - 1) * g.dW) / g.sW;
  const int64_t Lp = std::max(ceil_div(wv, g.sW), g.OW + qmax);
  return {g.sW, g.pW, Lp, g.sW * Lp};
}

// Per-call column tables shared (read-only) by the worker threads.
struct ColTables {
  const int64_t* tap_off;   // kW: (c % s) * Lp + c / s with c = kw*dW
  const int64_t* tap_col;   // kW: c - pW
  const int64_t* init_col;  // OW: PyTorch's first in-plane column of the window (max only)
};

ColTables col_tables(const Pool2d& g, const Phase& ph, void* mem, size_t off_tap, size_t off_col,
                     size_t off_init) {
  int64_t* tap_off = at<int64_t>(mem, off_tap);
  int64_t* tap_col = at<int64_t>(mem, off_col);
  int64_t* init_col = at<int64_t>(mem, off_init);
  for (int64_t kw = 0; kw < g.kW; ++kw) {
    const int64_t c = kw * g.dW;
    tap_off[kw] = (c % g.sW) * ph.Lp + c / g.sW;
    tap_col[kw] = c - g.pW;
  }
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    int64_t w0 = ow * g.sW - g.pW;
    while (w0 < 0) w0 += g.dW;
    init_col[ow] = w0;
  }
  return {tap_off, tap_col, init_col};
}

// Fills the tap list of output row oh: pointers into the phase plane and index bases.
// Returns the number of taps and sets *first_row to PyTorch's first in-plane row.
template <typename P>
int row_taps(const Pool2d& g, const Phase& ph, const ColTables& ct, int64_t oh, P* plane, P** ptrs,
             int64_t* bases, int64_t* first_row) {
  const int64_t hs = oh * g.sH - g.pH;
  int64_t h0 = hs;
  while (h0 < 0) h0 += g.dH;
  *first_row = h0;
  int n = 0;
  for (int64_t kh = 0; kh < g.kH; ++kh) {
    const int64_t ih = hs + kh * g.dH;
    if (ih < 0 || ih >= g.H) continue;
    for (int64_t kw = 0; kw < g.kW; ++kw) {
      ptrs[n] = plane + ih * ph.row + ct.tap_off[kw];
      if (bases) bases[n] = ih * g.W + ct.tap_col[kw];
      ++n;
    }
  }
  return n;
}

// Average pooling divisors for every output, PyTorch's rule.
template <typename T>
void avg_divisors(const Pool2d& g, bool count_include_pad, int64_t divisor_override, T* div) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t hs = oh * g.sH - g.pH;
    const int64_t he = std::min(hs + g.kH, g.H + g.pH);
    const int64_t hin = std::min(he, g.H) - std::max<int64_t>(hs, 0);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      T d;
      if (divisor_override != 0) {
        d = static_cast<T>(divisor_override);
      } else {
        const int64_t ws = ow * g.sW - g.pW;
        const int64_t we = std::min(ws + g.kW, g.W + g.pW);
        const int64_t win = std::min(we, g.W) - std::max<int64_t>(ws, 0);
        const int64_t cnt = count_include_pad ? (he - hs) * (we - ws) : hin * win;
        d = static_cast<T>(cnt > 0 ? cnt : 1);  // an empty window sums to 0 (PyTorch writes 0)
      }
      div[oh * g.OW + ow] = d;
    }
  }
}

bool indices_fit_int32(const Pool2d& g, const Phase& ph) {
  return g.H * g.W + ph.row + g.OW * g.sW < (int64_t{1} << 31);
}

// ---- max / avg pooling through the phase layout --------------------------------
template <typename T>
void max_pool_impl(const Pool2d& g, const T* x, T* y, int64_t* idx) {
  const Phase ph = phase_of(g);
  const RowKernels<T> K = select_kernels<T>(indices_fit_int32(g, ph));
  Carver c;
  const size_t o_tap = c.add<int64_t>(g.kW), o_col = c.add<int64_t>(g.kW),
               o_init = c.add<int64_t>(g.OW);
  void* tables = t_tables.get(c.size());
  const ColTables ct = col_tables(g, ph, tables, o_tap, o_col, o_init);
  const int64_t ntap = g.kH * g.kW;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for_each_plane(g.planes, g.H * g.W + g.OH * g.OW * ntap, [&](int64_t p) {
    Carver rc;
    const size_t o_ptr = rc.add<const T*>(ntap), o_base = rc.add<int64_t>(ntap);
    void* rows = t_rows.get(rc.size());
    const T** ptrs = at<const T*>(rows, o_ptr);
    int64_t* bases = at<int64_t>(rows, o_base);
    T* plane = static_cast<T*>(t_plane.get(static_cast<size_t>(g.H * ph.row) * sizeof(T)));
    const T* xp = x + p * g.H * g.W;
    for (int64_t ih = 0; ih < g.H; ++ih)
      K.dephase(xp + ih * g.W, g.W, ph.pad, ph.s, neg_inf, plane + ih * ph.row, ph.Lp);
    T* yp = y + p * g.OH * g.OW;
    int64_t* ip = idx ? idx + p * g.OH * g.OW : nullptr;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0 = 0;
      const int n = row_taps<const T>(g, ph, ct, oh, plane, ptrs, ip ? bases : nullptr, &h0);
      K.max_row(g.OW, n, ptrs, bases, g.sW, h0 * g.W, ct.init_col, yp + oh * g.OW,
                ip ? ip + oh * g.OW : nullptr);
    }
  });
}

template <typename T>
void avg_pool_impl(const Pool2d& g, bool cip, int64_t div_override, const T* x, T* y) {
  const Phase ph = phase_of(g);
  const RowKernels<T> K = select_kernels<T>(true);  // no indices
  Carver c;
  const size_t o_tap = c.add<int64_t>(g.kW), o_col = c.add<int64_t>(g.kW),
               o_init = c.add<int64_t>(g.OW), o_div = c.add<T>(g.OH * g.OW);
  void* tables = t_tables.get(c.size());
  const ColTables ct = col_tables(g, ph, tables, o_tap, o_col, o_init);
  T* div = at<T>(tables, o_div);
  avg_divisors(g, cip, div_override, div);
  const int64_t ntap = g.kH * g.kW;
  for_each_plane(g.planes, g.H * g.W + g.OH * g.OW * ntap, [&](int64_t p) {
    Carver rc;
    const size_t o_ptr = rc.add<const T*>(ntap);
    const T** ptrs = at<const T*>(t_rows.get(rc.size()), o_ptr);
    T* plane = static_cast<T*>(t_plane.get(static_cast<size_t>(g.H * ph.row) * sizeof(T)));
    const T* xp = x + p * g.H * g.W;
    for (int64_t ih = 0; ih < g.H; ++ih)
      K.dephase(xp + ih * g.W, g.W, ph.pad, ph.s, T(0), plane + ih * ph.row, ph.Lp);
    T* yp = y + p * g.OH * g.OW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0 = 0;
      const int n = row_taps<const T>(g, ph, ct, oh, plane, ptrs, nullptr, &h0);
      K.sum_row(g.OW, n, ptrs, div + oh * g.OW, yp + oh * g.OW);
    }
  });
}

template <typename T>
void avg_pool_backward_impl(const Pool2d& g, bool cip, int64_t div_override, const T* gy, T* gx) {
  const Phase ph = phase_of(g);
  const RowKernels<T> K = select_kernels<T>(true);
  Carver c;
  const size_t o_tap = c.add<int64_t>(g.kW), o_col = c.add<int64_t>(g.kW),
               o_init = c.add<int64_t>(g.OW), o_div = c.add<T>(g.OH * g.OW);
  void* tables = t_tables.get(c.size());
  const ColTables ct = col_tables(g, ph, tables, o_tap, o_col, o_init);
  T* div = at<T>(tables, o_div);
  avg_divisors(g, cip, div_override, div);
  const int64_t ntap = g.kH * g.kW;
  for_each_plane(g.planes, g.H * g.W + g.OH * g.OW * ntap, [&](int64_t p) {
    Carver rc;
    const size_t o_ptr = rc.add<T*>(ntap), o_gs = rc.add<T>(g.OW);
    void* rows = t_rows.get(rc.size());
    T** ptrs = at<T*>(rows, o_ptr);
    T* gs = at<T>(rows, o_gs);
    T* plane = static_cast<T*>(t_plane.get(static_cast<size_t>(g.H * ph.row) * sizeof(T)));
    std::memset(plane, 0, static_cast<size_t>(g.H * ph.row) * sizeof(T));
    const T* gyp = gy + p * g.OH * g.OW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0 = 0;
      const int n = row_taps<T>(g, ph, ct, oh, plane, ptrs, nullptr, &h0);
      const T* gr = gyp + oh * g.OW;
      const T* dr = div + oh * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) gs[ow] = gr[ow] / dr[ow];
      K.add_row(g.OW, n, ptrs, gs);
    }
    T* gxp = gx + p * g.H * g.W;
    for (int64_t ih = 0; ih < g.H; ++ih)
      K.rephase(plane + ih * ph.row, ph.Lp, ph.pad, ph.s, g.W, gxp + ih * g.W);
  });
}

// ---- adaptive windows ------------------------------------------------------------
int64_t ada_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
int64_t ada_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// The regular pooling that equals an adaptive one when the sizes divide.
Pool2d divisible_pool(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  Pool2d g;
  g.planes = planes;
  g.H = H;
  g.W = W;
  g.OH = OH;
  g.OW = OW;
  g.kH = g.sH = H / OH;
  g.kW = g.sW = W / OW;
  return g;
}

// Sum of n contiguous values with 8 running partial sums.
template <typename T>
T plane_sum(const T* x, int64_t n) {
  T acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += x[i + k];
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += x[i];
  return s;
}

}  // namespace

// ---------------------------------------------------------------- public kernels

template <typename T>
void max_pool2d_forward(const Pool2d& g, const T* x, T* y, int64_t* idx) {
  max_pool_impl(g, x, y, idx);
}

template <typename T>
void max_pool2d_backward(int64_t planes, int64_t in_hw, int64_t out_hw, const T* gy,
                         const int64_t* idx, T* gx) {
  for_each_plane(planes, in_hw + out_hw, [&](int64_t p) {
    T* gxp = gx + p * in_hw;
    const T* gyp = gy + p * out_hw;
    const int64_t* ip = idx + p * out_hw;
    std::memset(gxp, 0, static_cast<size_t>(in_hw) * sizeof(T));
    for (int64_t o = 0; o < out_hw; ++o) {
      const int64_t i = ip[o];
      if (static_cast<uint64_t>(i) < static_cast<uint64_t>(in_hw)) gxp[i] += gyp[o];
    }
  });
}

template <typename T>
void pool_gather(int64_t planes, int64_t src_hw, int64_t out_hw, const T* src, const int64_t* idx,
                 T* out) {
  for_each_plane(planes, out_hw, [&](int64_t p) {
    const T* sp = src + p * src_hw;
    const int64_t* ip = idx + p * out_hw;
    T* op = out + p * out_hw;
    for (int64_t o = 0; o < out_hw; ++o) {
      const int64_t i = ip[o];
      op[o] = static_cast<uint64_t>(i) < static_cast<uint64_t>(src_hw) ? sp[i] : T(0);
    }
  });
}

template <typename T>
void avg_pool2d_forward(const Pool2d& g, bool count_include_pad, int64_t divisor_override,
                        const T* x, T* y) {
  Pool2d a = g;
  a.dH = a.dW = 1;
  avg_pool_impl(a, count_include_pad, divisor_override, x, y);
}

template <typename T>
void avg_pool2d_backward(const Pool2d& g, bool count_include_pad, int64_t divisor_override,
                         const T* gy, T* gx) {
  Pool2d a = g;
  a.dH = a.dW = 1;
  avg_pool_backward_impl(a, count_include_pad, divisor_override, gy, gx);
}

template <typename T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y) {
  if (OH == 1 && OW == 1) {
    const T n = static_cast<T>(H * W);
    for_each_plane(planes, H * W, [&](int64_t p) { y[p] = plane_sum(x + p * H * W, H * W) / n; });
    return;
  }
  if (H % OH == 0 && W % OW == 0) {
    avg_pool_impl(divisible_pool(planes, H, W, OH, OW), true, 0, x, y);
    return;
  }
  for_each_plane(planes, H * W + OH * OW, [&](int64_t p) {
    T* rowsum = static_cast<T*>(t_rows.get(static_cast<size_t>(W) * sizeof(T)));
    const T* xp = x + p * H * W;
    T* yp = y + p * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = ada_start(oh, H, OH), h1 = ada_end(oh, H, OH);
      std::memcpy(rowsum, xp + h0 * W, static_cast<size_t>(W) * sizeof(T));
      for (int64_t ih = h0 + 1; ih < h1; ++ih)
        for (int64_t iw = 0; iw < W; ++iw) rowsum[iw] += xp[ih * W + iw];
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = ada_start(ow, W, OW), w1 = ada_end(ow, W, OW);
        T s = 0;
        for (int64_t iw = w0; iw < w1; ++iw) s += rowsum[iw];
        yp[oh * OW + ow] = s / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  const T* gy, T* gx) {
  if (OH == 1 && OW == 1) {
    const T n = static_cast<T>(H * W);
    for_each_plane(planes, H * W, [&](int64_t p) {
      const T v = gy[p] / n;
      std::fill(gx + p * H * W, gx + (p + 1) * H * W, v);
    });
    return;
  }
  if (H % OH == 0 && W % OW == 0) {
    avg_pool_backward_impl(divisible_pool(planes, H, W, OH, OW), true, 0, gy, gx);
    return;
  }
  for_each_plane(planes, H * W + OH * OW, [&](int64_t p) {
    T* gxp = gx + p * H * W;
    const T* gyp = gy + p * OH * OW;
    std::memset(gxp, 0, static_cast<size_t>(H * W) * sizeof(T));
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = ada_start(oh, H, OH), h1 = ada_end(oh, H, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = ada_start(ow, W, OW), w1 = ada_end(ow, W, OW);
        const T v = gyp[oh * OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) gxp[ih * W + iw] += v;
      }
    }
  });
}

template <typename T>
void adaptive_max_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y, int64_t* idx) {
  if (H % OH == 0 && W % OW == 0) {
    max_pool_impl(divisible_pool(planes, H, W, OH, OW), x, y, idx);
    return;
  }
  for_each_plane(planes, H * W + OH * OW, [&](int64_t p) {
    const T* xp = x + p * H * W;
    T* yp = y + p * OH * OW;
    int64_t* ip = idx ? idx + p * OH * OW : nullptr;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = ada_start(oh, H, OH), h1 = ada_end(oh, H, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = ada_start(ow, W, OW), w1 = ada_end(ow, W, OW);
        T best = -std::numeric_limits<T>::infinity();
        int64_t bi = h0 * W + w0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const T v = xp[ih * W + iw];
            if (__builtin_expect(v != v, 0)) {  // a NaN wins (rare: a predictable branch)
              best = v;
              bi = ih * W + iw;
              continue;
            }
            // branch-free select: whether v wins is data-dependent and would mispredict
            const int64_t m = -static_cast<int64_t>(v > best);
            bi = ((ih * W + iw) & m) | (bi & ~m);
            best = best < v ? v : best;  // keeps a NaN best (NaN < v is false)
          }
        yp[oh * OW + ow] = best;
        if (ip) ip[oh * OW + ow] = bi;
      }
    }
  });
}

int64_t max_unpool2d_find_bad_index(int64_t planes, int64_t in_hw, int64_t out_hw,
                                    const int64_t* idx) {
  const int64_t n = planes * in_hw;
  for (int64_t i = 0; i < n; ++i)
    if (static_cast<uint64_t>(idx[i]) >= static_cast<uint64_t>(out_hw)) return i;
  return -1;
}

template <typename T>
void max_unpool2d_forward(int64_t planes, int64_t in_hw, int64_t out_hw, const T* x,
                          const int64_t* idx, T* y) {
  for_each_plane(planes, in_hw + out_hw, [&](int64_t p) {
    T* yp = y + p * out_hw;
    const T* xp = x + p * in_hw;
    const int64_t* ip = idx + p * in_hw;
    std::memset(yp, 0, static_cast<size_t>(out_hw) * sizeof(T));
    for (int64_t i = 0; i < in_hw; ++i) {
      const int64_t o = ip[i];
      if (static_cast<uint64_t>(o) < static_cast<uint64_t>(out_hw)) yp[o] = xp[i];
    }
  });
}

template <typename T>
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                const T* x, T* y) {
  const int64_t OW = W * fW;
  for_each_plane(planes, H * W * fH * fW, [&](int64_t p) {
    const T* xp = x + p * H * W;
    T* yp = y + p * H * fH * OW;
    for (int64_t ih = 0; ih < H; ++ih) {
      T* row = yp + ih * fH * OW;
      const T* xr = xp + ih * W;
      if (fW == 1) {
        std::memcpy(row, xr, static_cast<size_t>(W) * sizeof(T));
      } else if (fW == 2) {
        for (int64_t iw = 0; iw < W; ++iw) row[2 * iw] = row[2 * iw + 1] = xr[iw];
      } else {
        for (int64_t iw = 0; iw < W; ++iw)
          for (int64_t k = 0; k < fW; ++k) row[iw * fW + k] = xr[iw];
      }
      for (int64_t k = 1; k < fH; ++k)
        std::memcpy(row + k * OW, row, static_cast<size_t>(OW) * sizeof(T));
    }
  });
}

template <typename T>
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                 const T* gy, T* gx) {
  // The block sums are average pooling of gy with kernel = stride = the factors and divisor 1.
  Pool2d g;
  g.planes = planes;
  g.H = H * fH;
  g.W = W * fW;
  g.OH = H;
  g.OW = W;
  g.kH = g.sH = fH;
  g.kW = g.sW = fW;
  avg_pool_impl(g, true, 1, gy, gx);
}

#define PE_POOL_INSTANTIATE(T)                                                                    \
  template void max_pool2d_forward<T>(const Pool2d&, const T*, T*, int64_t*);                     \
  template void max_pool2d_backward<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*);  \
  template void pool_gather<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*);          \
  template void avg_pool2d_forward<T>(const Pool2d&, bool, int64_t, const T*, T*);                \
  template void avg_pool2d_backward<T>(const Pool2d&, bool, int64_t, const T*, T*);               \
  template void adaptive_avg_pool2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,       \
                                               const T*, T*);                                     \
  template void adaptive_avg_pool2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,      \
                                                const T*, T*);                                    \
  template void adaptive_max_pool2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,       \
                                               const T*, T*, int64_t*);                           \
  template void max_unpool2d_forward<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*); \
  template void upsample_nearest2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,        \
                                              const T*, T*);                                      \
  template void upsample_nearest2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,       \
                                               const T*, T*);

PE_POOL_INSTANTIATE(float)
PE_POOL_INSTANTIATE(double)
#undef PE_POOL_INSTANTIATE

}  // namespace pyengine::cpu
