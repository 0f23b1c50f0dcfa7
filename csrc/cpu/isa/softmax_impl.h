// The softmax-family kernels (contracts in cpu/softmax.h), written once and compiled per ISA:
// each cpu/isa/softmax_<isa>.cpp defines PE_SOFTMAX_ISA and includes this file. Inner loops
// are `#pragma omp simd`; float exp is a branch-free polynomial (below) so that those loops
// vectorize; double uses std::exp (float64 exists for gradient checks, it need not be fast).
#pragma once
#ifndef PE_SOFTMAX_ISA
#error "define PE_SOFTMAX_ISA (generic, avx2 or avx512) before including softmax_impl.h"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cpu/isa/rowwise_util.h"
#include "cpu/isa/softmax_kernels.h"

namespace pyengine::cpu::softmax_detail::PE_SOFTMAX_ISA {
namespace {

// exp for float, vectorizable: exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln2 / 2,
// exp(r) by a degree-6 minimax polynomial (coefficients of the Cephes expf, max error ~1 ulp).
// ln 2 is split in two parts (Cody-Waite) so r is exact. Inputs below -87.3 give 0 (torch
// gives a denormal there); inputs above 88 saturate at exp(88) (softmax only sees x - max <= 0).
// NaN propagates.
// c ? a : b on the bits, so the select is arithmetic rather than control flow and the loops
// that use it vectorize on SSE2 / AVX2 as well (GCC does not if-convert float selects there
// under the default -ftrapping-math). NaN in b passes through when c is false.
inline float select_bits(bool c, float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof ia);
  std::memcpy(&ib, &b, sizeof ib);
  const int32_t m = -static_cast<int32_t>(c);
  const int32_t r = (ia & m) | (ib & ~m);
  float f;
  std::memcpy(&f, &r, sizeof f);
  return f;
}

inline float exp_f32(float x) {
  float xc = select_bits(x < -87.3f, -87.3f, x);  // also maps -inf to -87.3 (then to 0 below)
  xc = select_bits(xc > 88.0f, 88.0f, xc);
  const float t = xc * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23 trick)
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t keep = x >= -87.3f ? ~0u : 0u;  // all ones, or 0 below -87.3
  // NaN -> int is undefined behaviour: a NaN n uses 0 (p is NaN anyway); the shift is unsigned.
  const int32_t k = n == n ? static_cast<int32_t>(n) : 0;
  const uint32_t bits = (static_cast<uint32_t>(k + 127) << 23) & keep;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;  // NaN * 0 is still NaN
}

template <typename T>
inline T vexp(T x);
template <>
inline float vexp<float>(float x) {
  return exp_f32(x);
}
template <>
inline double vexp<double>(double x) {
  return std::exp(x);
}

constexpr int64_t kBlock = 64;  // positions of inner handled together on the strided path

// ---- softmax forward ------------------------------------------------------------------------

template <typename T>
void softmax_row(const T* x, T* y, int64_t n, bool log) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;  // vectorizes (std::max does not)
  double s = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kSumChunk) {
    const int64_t len = std::min(kSumChunk, n - i0);
    T part = 0;
    if (log) {
#pragma omp simd reduction(+ : part)
      for (int64_t i = i0; i < i0 + len; ++i) part += vexp<T>(x[i] - m);
    } else {
#pragma omp simd reduction(+ : part)
      for (int64_t i = i0; i < i0 + len; ++i) {
        const T e = vexp<T>(x[i] - m);
        y[i] = e;
        part += e;
      }
    }
    s += part;
  }
  if (log) {
    const T shift = static_cast<T>(static_cast<double>(m) + std::log(s));
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] - shift;
  } else {
    const T inv = static_cast<T>(1.0 / s);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
}

// One block of `w` <= kBlock positions along inner; x and y point at (o, 0, i0).
template <typename T>
void softmax_block(const T* x, T* y, int64_t dim, int64_t inner, int64_t w, bool log) {
  T m[kBlock], s[kBlock];
  for (int64_t j = 0; j < w; ++j) {
    m[j] = -std::numeric_limits<T>::infinity();
    s[j] = 0;
  }
  for (int64_t c = 0; c < dim; ++c) {
    const T* xc = x + c * inner;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) m[j] = xc[j] > m[j] ? xc[j] : m[j];
  }
  for (int64_t c = 0; c < dim; ++c) {
    const T* xc = x + c * inner;
    T* yc = y + c * inner;
    if (log) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) s[j] += vexp<T>(xc[j] - m[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        const T e = vexp<T>(xc[j] - m[j]);
        yc[j] = e;
        s[j] += e;
      }
    }
  }
  if (log) {
    for (int64_t j = 0; j < w; ++j) s[j] = m[j] + std::log(s[j]);
    for (int64_t c = 0; c < dim; ++c) {
      const T* xc = x + c * inner;
      T* yc = y + c * inner;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) yc[j] = xc[j] - s[j];
    }
  } else {
    for (int64_t j = 0; j < w; ++j) s[j] = T(1) / s[j];
    for (int64_t c = 0; c < dim; ++c) {
      T* yc = y + c * inner;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) yc[j] *= s[j];
    }
  }
}

template <typename T>
void softmax_forward(int64_t outer, int64_t dim, int64_t inner, const T* x, T* y, bool log) {
  if (outer == 0 || dim == 0 || inner == 0) return;
  if (inner == 1) {
    const int nt = threads_for(outer * dim * 4, outer);
    const int64_t ahead = rows_ahead<T>(dim);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      if (ahead && o + ahead < outer) {
        prefetch_row(x + (o + ahead) * dim, dim);
        prefetch_row_w(y + (o + ahead) * dim, dim);
      }
      softmax_row(x + o * dim, y + o * dim, dim, log);
    }
    return;
  }
  const int64_t nb = (inner + kBlock - 1) / kBlock;
  const int nt = threads_for(outer * dim * inner * 4, outer * nb);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t item = 0; item < outer * nb; ++item) {
    const int64_t o = item / nb, i0 = (item % nb) * kBlock;
    const int64_t off = o * dim * inner + i0;
    softmax_block(x + off, y + off, dim, inner, std::min(kBlock, inner - i0), log);
  }
}

// ---- softmax backward -----------------------------------------------------------------------

template <typename T>
void softmax_backward_row(const T* y, const T* g, T* d, int64_t n, bool log) {
  double s = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kSumChunk) {
    const int64_t len = std::min(kSumChunk, n - i0);
    T part = 0;
    if (log) {
#pragma omp simd reduction(+ : part)
      for (int64_t i = i0; i < i0 + len; ++i) part += g[i];
    } else {
#pragma omp simd reduction(+ : part)
      for (int64_t i = i0; i < i0 + len; ++i) part += g[i] * y[i];
    }
    s += part;
  }
  const T st = static_cast<T>(s);
  if (log) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = g[i] - vexp<T>(y[i]) * st;
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = y[i] * (g[i] - st);
  }
}

template <typename T>
void softmax_backward_block(const T* y, const T* g, T* d, int64_t dim, int64_t inner, int64_t w,
                            bool log) {
  T s[kBlock];
  for (int64_t j = 0; j < w; ++j) s[j] = 0;
  for (int64_t c = 0; c < dim; ++c) {
    const T* yc = y + c * inner;
    const T* gc = g + c * inner;
    if (log) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) s[j] += gc[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) s[j] += gc[j] * yc[j];
    }
  }
  for (int64_t c = 0; c < dim; ++c) {
    const T* yc = y + c * inner;
    const T* gc = g + c * inner;
    T* dc = d + c * inner;
    if (log) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) dc[j] = gc[j] - vexp<T>(yc[j]) * s[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) dc[j] = yc[j] * (gc[j] - s[j]);
    }
  }
}

template <typename T>
void softmax_backward(int64_t outer, int64_t dim, int64_t inner, const T* y, const T* g, T* d,
                      bool log) {
  if (outer == 0 || dim == 0 || inner == 0) return;
  if (inner == 1) {
    const int nt = threads_for(outer * dim * 3, outer);
    const int64_t ahead = rows_ahead<T>(2 * dim);
    for_rows_out(nt, outer, dim, d, [&](int64_t o, T* dout, bool streaming) {
      if (ahead && o + ahead < outer) {
        prefetch_row(y + (o + ahead) * dim, dim);
        prefetch_row(g + (o + ahead) * dim, dim);
        if (!streaming) prefetch_row_w(d + (o + ahead) * dim, dim);
      }
      softmax_backward_row(y + o * dim, g + o * dim, dout, dim, log);
    });
    return;
  }
  const int64_t nb = (inner + kBlock - 1) / kBlock;
  const int nt = threads_for(outer * dim * inner * 3, outer * nb);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t item = 0; item < outer * nb; ++item) {
    const int64_t o = item / nb, i0 = (item % nb) * kBlock;
    const int64_t off = o * dim * inner + i0;
    softmax_backward_block(y + off, g + off, d + off, dim, inner, std::min(kBlock, inner - i0),
                           log);
  }
}

// ---- cross_entropy --------------------------------------------------------------------------

// One sample: its C logits at x[c * cs] (cs = D), dlogits likewise. wsum = sum_c w_c (or C).
template <typename T>
void ce_sample(const CrossEntropy<T>& a, int64_t n, int64_t d, double wsum) {
  const int64_t C = a.C, cs = a.D, s_idx = n * a.D + d;
  const int64_t base = n * C * a.D + d;
  const T* x = a.x + base;
  T* dl = a.dlogits ? a.dlogits + base : nullptr;
  const T* w = a.weight;
  const double eps = a.label_smoothing;
  int64_t t = -1;
  if (a.target) {
    t = a.target[s_idx];
    if (t == a.ignore_index) {
      a.loss[s_idx] = 0;
      if (a.sample_weight) a.sample_weight[s_idx] = 0;
      if (dl) {
        for (int64_t c = 0; c < C; ++c) dl[c * cs] = 0;
      }
      return;
    }
  }
  T m = -std::numeric_limits<T>::infinity();
  if (cs == 1) {
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;
  } else {
    for (int64_t c = 0; c < C; ++c) m = x[c * cs] > m ? x[c * cs] : m;
  }
  double s = 0;
  if (cs == 1) {
    for (int64_t i0 = 0; i0 < C; i0 += kSumChunk) {
      const int64_t len = std::min(kSumChunk, C - i0);
      T part = 0;
      if (dl) {
#pragma omp simd reduction(+ : part)
        for (int64_t c = i0; c < i0 + len; ++c) {
          const T e = vexp<T>(x[c] - m);
          dl[c] = e;
          part += e;
        }
      } else {
#pragma omp simd reduction(+ : part)
        for (int64_t c = i0; c < i0 + len; ++c) part += vexp<T>(x[c] - m);
      }
      s += part;
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      const T e = vexp<T>(x[c * cs] - m);
      if (dl) dl[c * cs] = e;
      s += e;
    }
  }
  const double lse = static_cast<double>(m) + std::log(s);
  const double inv_s = 1.0 / s;
  if (a.target) {
    const double wt = w ? static_cast<double>(w[t]) : 1.0;
    double loss = (1 - eps) * wt * (lse - static_cast<double>(x[t * cs]));
    if (eps > 0) {
      double swx = 0;  // sum_c w_c x_c
      for (int64_t c = 0; c < C; ++c)
        swx += (w ? static_cast<double>(w[c]) : 1.0) * static_cast<double>(x[c * cs]);
      loss += eps / static_cast<double>(C) * (lse * wsum - swx);
    }
    a.loss[s_idx] = static_cast<T>(loss);
    if (a.sample_weight) a.sample_weight[s_idx] = static_cast<T>(wt);
    if (dl) {
      const T kp = static_cast<T>(((1 - eps) * wt + eps * wsum / static_cast<double>(C)) * inv_s);
      const T kw = static_cast<T>(eps / static_cast<double>(C));
      if (cs == 1) {
        if (w) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) dl[c] = dl[c] * kp - kw * w[c];
        } else {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) dl[c] = dl[c] * kp - kw;
        }
      } else {
        for (int64_t c = 0; c < C; ++c) dl[c * cs] = dl[c * cs] * kp - kw * (w ? w[c] : T(1));
      }
      dl[t * cs] -= static_cast<T>((1 - eps) * wt);
    }
    return;
  }
  // probability targets
  const T* q = a.target_prob + base;
  const double qs = eps / static_cast<double>(C);
  double A = 0, B = 0;  // sum_c w_c q'_c, sum_c w_c q'_c x_c
  for (int64_t c = 0; c < C; ++c) {
    const double wq =
        (w ? static_cast<double>(w[c]) : 1.0) * ((1 - eps) * static_cast<double>(q[c * cs]) + qs);
    A += wq;
    B += wq * static_cast<double>(x[c * cs]);
  }
  a.loss[s_idx] = static_cast<T>(A * lse - B);
  if (a.sample_weight) a.sample_weight[s_idx] = 1;
  if (dl) {
    const T kp = static_cast<T>(A * inv_s);
    const T k1 = static_cast<T>(1 - eps), k0 = static_cast<T>(qs);
    for (int64_t c = 0; c < C; ++c)
      dl[c * cs] = dl[c * cs] * kp - (w ? w[c] : T(1)) * (k1 * q[c * cs] + k0);
  }
}

thread_local RowScratch t_tile;

// D > 1 ((N, C, d1, ...) input): `w` <= kBlock consecutive positions j0..j0+w-1 of sample n
// together, so the loops over classes run vectorized along the contiguous positions (the
// per-sample path would walk each sample's classes at stride D). The C x w tile of logits is
// copied once into a contiguous per-thread buffer: with D a power of two, the C rows of a tile
// sit at the same L1 set (4 KB aliasing) and repeated passes over them in place thrash L1
// (measured 10x slower for 64x21x64x64). Same formulas as ce_sample.
template <typename T>
void ce_block(const CrossEntropy<T>& a, int64_t n, int64_t j0, int64_t w, double wsum) {
  const int64_t C = a.C, D = a.D;
  const int64_t base = n * C * D + j0;
  const T* x = a.x + base;
  T* dl = a.dlogits ? a.dlogits + base : nullptr;
  const T* q = a.target_prob ? a.target_prob + base : nullptr;
  const T* cw = a.weight;
  const double eps = a.label_smoothing, qs = eps / static_cast<double>(C);
  T* tile = t_tile.get<T>(C * kBlock);  // tile[c * kBlock + j]: logits, then exp(x - max)
  T m[kBlock], e_sum[kBlock], kp[kBlock], keep[kBlock];
  double acc_a[kBlock], acc_b[kBlock];  // class targets: sum w x; probabilities: A and B
  for (int64_t j = 0; j < w; ++j) {
    m[j] = -std::numeric_limits<T>::infinity();
    e_sum[j] = 0;
    acc_a[j] = acc_b[j] = 0;
  }
  for (int64_t c = 0; c < C; ++c) {  // one read of the logits: copy, max, weighted sums
    const T* xc = x + c * D;
    T* tc = tile + c * kBlock;
    const double wc = cw ? static_cast<double>(cw[c]) : 1.0;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      tc[j] = xc[j];
      m[j] = xc[j] > m[j] ? xc[j] : m[j];
    }
    if (q) {
      const T* qc = q + c * D;
      for (int64_t j = 0; j < w; ++j) {
        const double wq = wc * ((1 - eps) * static_cast<double>(qc[j]) + qs);
        acc_a[j] += wq;
        acc_b[j] += wq * static_cast<double>(xc[j]);
      }
    } else if (eps > 0) {
      for (int64_t j = 0; j < w; ++j) acc_a[j] += wc * static_cast<double>(xc[j]);
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    T* tc = tile + c * kBlock;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      const T e = vexp<T>(tc[j] - m[j]);
      tc[j] = e;
      e_sum[j] += e;
    }
  }
  const T k1 = static_cast<T>(1 - eps), kq = static_cast<T>(qs);
  for (int64_t j = 0; j < w; ++j) {
    const int64_t s_idx = n * D + j0 + j;
    const double lse = static_cast<double>(m[j]) + std::log(static_cast<double>(e_sum[j]));
    const double inv_s = 1.0 / static_cast<double>(e_sum[j]);
    if (q) {
      a.loss[s_idx] = static_cast<T>(acc_a[j] * lse - acc_b[j]);
      if (a.sample_weight) a.sample_weight[s_idx] = 1;
      kp[j] = static_cast<T>(acc_a[j] * inv_s);
      continue;
    }
    const int64_t t = a.target[s_idx];
    if (t == a.ignore_index) {
      a.loss[s_idx] = 0;
      if (a.sample_weight) a.sample_weight[s_idx] = 0;
      kp[j] = keep[j] = 0;
      continue;
    }
    const double wt = cw ? static_cast<double>(cw[t]) : 1.0;
    double loss = (1 - eps) * wt * (lse - static_cast<double>(x[t * D + j]));
    if (eps > 0) loss += qs * (lse * wsum - acc_a[j]);
    a.loss[s_idx] = static_cast<T>(loss);
    if (a.sample_weight) a.sample_weight[s_idx] = static_cast<T>(wt);
    kp[j] = static_cast<T>(((1 - eps) * wt + eps * wsum / static_cast<double>(C)) * inv_s);
    keep[j] = 1;
  }
  if (!dl) return;
  for (int64_t c = 0; c < C; ++c) {  // one write of the gradient
    const T* tc = tile + c * kBlock;
    T* dc = dl + c * D;
    const T wc = cw ? cw[c] : T(1);
    if (q) {
      const T* qc = q + c * D;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) dc[j] = tc[j] * kp[j] - wc * (k1 * qc[j] + kq);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) dc[j] = tc[j] * kp[j] - kq * wc * keep[j];
    }
  }
  if (q) return;
  for (int64_t j = 0; j < w; ++j) {
    if (keep[j] == 0) continue;
    const int64_t t = a.target[n * D + j0 + j];
    const double wt = cw ? static_cast<double>(cw[t]) : 1.0;
    dl[t * D + j] -= static_cast<T>((1 - eps) * wt);
  }
}

template <typename T>
void cross_entropy(const CrossEntropy<T>& a) {
  const int64_t samples = a.N * a.D;
  if (samples == 0) return;
  double wsum = static_cast<double>(a.C);
  if (a.weight) {
    wsum = 0;
    for (int64_t c = 0; c < a.C; ++c) wsum += a.weight[c];
  }
  if (a.D > 1) {
    const int64_t nb = (a.D + kBlock - 1) / kBlock;
    const int nt = threads_for(samples * a.C * 4, a.N * nb);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t item = 0; item < a.N * nb; ++item) {
      const int64_t n = item / nb, j0 = (item % nb) * kBlock;
      ce_block(a, n, j0, std::min(kBlock, a.D - j0), wsum);
    }
    return;
  }
  const int nt = threads_for(samples * a.C * 4, samples);
  const int64_t ahead = rows_ahead<T>(a.C);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t s = 0; s < samples; ++s) {
    if (ahead && s + ahead < samples) {
      prefetch_row(a.x + (s + ahead) * a.C, a.C);
      if (a.dlogits) prefetch_row_w(a.dlogits + (s + ahead) * a.C, a.C);
    }
    ce_sample(a, s, 0, wsum);
  }
}

}  // namespace

template <typename T>
SoftmaxKernels<T> make_kernels() {
  return {&softmax_forward<T>, &softmax_backward<T>, &cross_entropy<T>};
}

SoftmaxKernels<float> kernels_f32() { return make_kernels<float>(); }
SoftmaxKernels<double> kernels_f64() { return make_kernels<double>(); }

}  // namespace pyengine::cpu::softmax_detail::PE_SOFTMAX_ISA
