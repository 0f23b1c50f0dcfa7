// The norm kernels (contracts in cpu/norm.h), written once and compiled per ISA: each
// cpu/isa/norm_<isa>.cpp defines PE_NORM_ISA and includes this file, so the same loops are
// vectorized for SSE2, AVX2+FMA and AVX-512 (`#pragma omp simd` on the inner loops).
//
// batch_norm, S > 1: a team member owns whole channels. A channel (N*S elements, e.g. 400 KB
// for 32x64x56x56 fp32) stays in L2 between its passes, so DRAM sees x once and y once:
//   forward:  sum -> mean; sum (x - mean)^2 -> var; y = (x - mean) * scale + bias
//   backward: sum dy, sum dy*(x - mean) -> dweight, dbias; dx = a*dy + b*(x - mean) + c
// batch_norm, S == 1 ((N, C) input): members own blocks of rows and keep per-channel partial
// sums (double) in the workspace, reduced by the calling thread between passes.
// layer_norm: a member owns whole rows (a row stays in L1 across its passes); the backward's
// dweight / dbias are per-member partial rows in the workspace, reduced at the end.
// Outputs (y, dx) of 12 MiB or more are built a row (a slab, for batch_norm) at a time in a
// buffer and written with streaming stores (rowwise_util.h: for_rows_out, stream_copy).
#pragma once
#ifndef PE_NORM_ISA
#error "define PE_NORM_ISA (generic, avx2 or avx512) before including norm_impl.h"
#endif

#include <cmath>
#include <cstdint>

#include "cpu/isa/norm_kernels.h"
#include "cpu/isa/rowwise_util.h"

namespace pyengine::cpu::norm_detail::PE_NORM_ISA {
namespace {

thread_local RowScratch t_scratch;

// ---- accumulation helpers: T within a chunk, double across chunks ----------------------

// sum (x - k): with a pivot k near the data (its first element) the terms are deviations, so
// the T accumulation stays accurate when |mean| >> std.
template <typename T>
double sum_dev(const T* x, int64_t n, T k) {  // first pass: from DRAM
  return stream_sum<T>(n, [=](int64_t i) { return x[i] - k; });
}

// sum (x - c)^2 (second pass: the data is in L1 / L2)
template <typename T>
double sum_sq_dev(const T* x, int64_t n, T c) {
  return lane_sum<T>(n, [=](int64_t i) {
    const T d = x[i] - c;
    return d * d;
  });
}

// sum dy and sum dy * (x - c) (first pass: from DRAM)
template <typename T>
void sum_dy_dyx(const T* dy, const T* x, int64_t n, T c, double& sdy, double& sdyx) {
  stream_sum2<T>(
      n, [=](int64_t i) { return dy[i]; }, [=](int64_t i) { return dy[i] * (x[i] - c); }, sdy,
      sdyx);
}

// Mean and biased variance of x[n*stride + s], n < N, s < S (two passes, see the header).
// var is corrected for the rounding of the mean to T: sum (x - m_T)^2 / M = var + (m - m_T)^2.
template <typename T>
void channel_stats(const T* x, int64_t N, int64_t S, int64_t stride, double& mean, double& var,
                   T& mean_t) {
  const double M = static_cast<double>(N * S);
  const T pivot = x[0];
  double s = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (n + 1 < N) prefetch_row(x + (n + 1) * stride, S);  // the next slab: a new stream
    s += sum_dev(x + n * stride, S, pivot);
  }
  mean = static_cast<double>(pivot) + s / M;
  mean_t = static_cast<T>(mean);
  double q = 0;
  // reverse order: the slabs read last by the first pass are the ones still in cache
  for (int64_t n = N - 1; n >= 0; --n) q += sum_sq_dev(x + n * stride, S, mean_t);
  const double d = mean - static_cast<double>(mean_t);
  var = std::max(q / M - d * d, 0.0);
}

// ---- batch_norm forward -------------------------------------------------------------------

template <typename T>
void update_running(const BatchNormForward<T>& a, int64_t c, double mean, double var) {
  if (a.running_mean == nullptr) return;
  const double M = static_cast<double>(a.N * a.S);
  const double m = a.momentum;
  const double unbiased = M > 1 ? var * M / (M - 1) : var;
  a.running_mean[c] = static_cast<T>((1 - m) * a.running_mean[c] + m * mean);
  a.running_var[c] = static_cast<T>((1 - m) * a.running_var[c] + m * unbiased);
}

// y[n, c, :] = (x - mean) * scale + shift for one channel; buf: nullptr, or a row buffer through
// which each slab is streamed out (stream_copy).
template <typename T>
void bn_apply_channel(const BatchNormForward<T>& a, int64_t c, T mean, T scale, T shift, T* buf) {
  const int64_t CS = a.C * a.S;
  for (int64_t n = 0; n < a.N; ++n) {
    const T* xp = a.x + n * CS + c * a.S;
    T* yp = a.y + n * CS + c * a.S;
    T* out = buf ? buf : yp;
    if (n + 1 < a.N && !buf) prefetch_row_w(yp + CS, a.S);
#pragma omp simd
    for (int64_t s = 0; s < a.S; ++s) out[s] = (xp[s] - mean) * scale + shift;
    if (buf) stream_copy(yp, buf, a.S);
  }
}

template <typename T>
void bn_forward_channels(const BatchNormForward<T>& a) {
  const int64_t CS = a.C * a.S;
  const int nt = threads_for(a.N * CS * 3, a.C);
  const bool stream = streamed(a.N * a.C, a.S * static_cast<int64_t>(sizeof(T)));
#pragma omp parallel num_threads(nt)
  {
    T* buf = stream ? stream_row_buffer().get<T>(a.S) : nullptr;
#pragma omp for schedule(static) nowait
    for (int64_t c = 0; c < a.C; ++c) {
      double mean, var;
      T mean_t;
      if (a.training) {
        channel_stats(a.x + c * a.S, a.N, a.S, CS, mean, var, mean_t);
        update_running(a, c, mean, var);
      } else {
        mean = a.running_mean[c];
        var = a.running_var[c];
        mean_t = a.running_mean[c];
      }
      const double invstd = 1.0 / std::sqrt(var + a.eps);
      const double w = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
      const double b = a.bias ? static_cast<double>(a.bias[c]) : 0.0;
      a.save_mean[c] = mean_t;
      a.save_invstd[c] = static_cast<T>(invstd);
      // (x - mean_t) is exact for x near the mean; the rounding of the mean to T goes to the shift
      const double scale = w * invstd;
      const double shift = b - (mean - static_cast<double>(mean_t)) * scale;
      bn_apply_channel(a, c, mean_t, static_cast<T>(scale), static_cast<T>(shift), buf);
    }
    if (stream) stream_fence();
  }
}

// S == 1: x is (N, C). Members own row blocks; per-channel partial sums in double.
template <typename T>
void bn_forward_rows(const BatchNormForward<T>& a) {
  const int64_t N = a.N, C = a.C;
  const int nt = threads_for(N * C * 3, N);
  // layout: per-member partials (nt*C) | mean (C) | var (C) | scale, shift (2C of T)
  double* part = t_scratch.get<double>(static_cast<int64_t>(nt) * C + 4 * C);
  double* mean = part + static_cast<int64_t>(nt) * C;
  double* var = mean + C;
  T* mean_t = a.save_mean;
  T* invstd_t = a.save_invstd;
  if (a.training) {
#pragma omp parallel num_threads(nt)
    {
      const int id = team_id(), size = team_size();
      int64_t r0, r1;
      split_range(N, id, size, r0, r1);
      double* p = part + static_cast<int64_t>(id) * C;
      for (int64_t c = 0; c < C; ++c) p[c] = 0;
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = a.x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) p[c] += xr[c];
      }
#pragma omp barrier
#pragma omp single
      {
        for (int64_t c = 0; c < C; ++c) {
          double s = 0;
          for (int t = 0; t < size; ++t) s += part[static_cast<int64_t>(t) * C + c];
          mean[c] = s / static_cast<double>(N);
          mean_t[c] = static_cast<T>(mean[c]);
        }
      }  // implicit barrier
      for (int64_t c = 0; c < C; ++c) p[c] = 0;
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = a.x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const double d = static_cast<double>(xr[c] - mean_t[c]);
          p[c] += d * d;
        }
      }
#pragma omp barrier
#pragma omp single
      {
        for (int64_t c = 0; c < C; ++c) {
          double q = 0;
          for (int t = 0; t < size; ++t) q += part[static_cast<int64_t>(t) * C + c];
          const double d = mean[c] - static_cast<double>(mean_t[c]);
          var[c] = std::max(q / static_cast<double>(N) - d * d, 0.0);
        }
      }
    }
    for (int64_t c = 0; c < C; ++c) update_running(a, c, mean[c], var[c]);
  } else {
    for (int64_t c = 0; c < C; ++c) {
      var[c] = a.running_var[c];
      mean_t[c] = a.running_mean[c];
      mean[c] = a.running_mean[c];
    }
  }
  T* scale = reinterpret_cast<T*>(var + C);
  T* shift = scale + C;
  for (int64_t c = 0; c < C; ++c) {
    const double is = 1.0 / std::sqrt(var[c] + a.eps);
    invstd_t[c] = static_cast<T>(is);
    const double sc = (a.weight ? static_cast<double>(a.weight[c]) : 1.0) * is;
    scale[c] = static_cast<T>(sc);
    shift[c] = static_cast<T>((a.bias ? static_cast<double>(a.bias[c]) : 0.0) -
                              (mean[c] - static_cast<double>(mean_t[c])) * sc);
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const T* xr = a.x + r * C;
    T* yr = a.y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mean_t[c]) * scale[c] + shift[c];
  }
}

template <typename T>
void batch_norm_forward(const BatchNormForward<T>& a) {
  if (a.C == 0) return;
  if (a.S == 1)
    bn_forward_rows(a);
  else
    bn_forward_channels(a);
}

// ---- batch_norm backward ------------------------------------------------------------------

template <typename T>
void bn_backward_channels(const BatchNormBackward<T>& a) {
  const int64_t CS = a.C * a.S;
  const double M = static_cast<double>(a.N * a.S);
  const int nt = threads_for(a.N * CS * 3, a.C);
  const bool stream = a.dx && streamed(a.N * a.C, a.S * static_cast<int64_t>(sizeof(T)));
#pragma omp parallel num_threads(nt)
  {
    T* buf = stream ? stream_row_buffer().get<T>(a.S) : nullptr;
#pragma omp for schedule(static) nowait
    for (int64_t c = 0; c < a.C; ++c) {
      const T mean = a.mean[c];
      const double invstd = a.invstd[c];
      double sdy = 0, sdyx = 0;
      for (int64_t n = 0; n < a.N; ++n) {
        const int64_t off = n * CS + c * a.S;
        if (n + 1 < a.N) {
          prefetch_row(a.dy + off + CS, a.S);
          prefetch_row(a.x + off + CS, a.S);
        }
        sum_dy_dyx(a.dy + off, a.x + off, a.S, mean, sdy, sdyx);
      }
      if (a.dweight) a.dweight[c] = static_cast<T>(sdyx * invstd);
      if (a.dbias) a.dbias[c] = static_cast<T>(sdy);
      if (!a.dx) continue;
      const double w = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
      const double k = w * invstd;
      // dx = k*dy + kx*(x - mean) + k0
      const T ka = static_cast<T>(k);
      const T kx = a.training ? static_cast<T>(-k * invstd * invstd * sdyx / M) : T(0);
      const T k0 = a.training ? static_cast<T>(-k * sdy / M) : T(0);
      // Slabs in reverse order: the last ones read by the reductions are still in L2 (a
      // channel's dy and x, 800 KB at 32x3136, do not all stay there next to dx).
      for (int64_t n = a.N - 1; n >= 0; --n) {
        const int64_t off = n * CS + c * a.S;
        const T* g = a.dy + off;
        const T* xp = a.x + off;
        T* d = buf ? buf : a.dx + off;
        if (n > 0 && !buf) prefetch_row_w(d - CS, a.S);
#pragma omp simd
        for (int64_t s = 0; s < a.S; ++s) d[s] = ka * g[s] + kx * (xp[s] - mean) + k0;
        if (buf) stream_copy(a.dx + off, buf, a.S);
      }
    }
    if (stream) stream_fence();
  }
}

template <typename T>
void bn_backward_rows(const BatchNormBackward<T>& a) {
  const int64_t N = a.N, C = a.C;
  const int nt = threads_for(N * C * 3, N);
  // layout: per-member partials (2*nt*C) | sdy (C) | sdyx (C) | ka, kx, k0 (3C of T)
  double* part = t_scratch.get<double>(2 * static_cast<int64_t>(nt) * C + 5 * C);
  double* sdy = part + 2 * static_cast<int64_t>(nt) * C;
  double* sdyx = sdy + C;
#pragma omp parallel num_threads(nt)
  {
    const int id = team_id(), size = team_size();
    int64_t r0, r1;
    split_range(N, id, size, r0, r1);
    double* p0 = part + 2 * static_cast<int64_t>(id) * C;
    double* p1 = p0 + C;
    for (int64_t c = 0; c < 2 * C; ++c) p0[c] = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const T* g = a.dy + r * C;
      const T* xr = a.x + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        p0[c] += g[c];
        p1[c] += static_cast<double>(g[c] * (xr[c] - a.mean[c]));
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    double s0 = 0, s1 = 0;
    for (int t = 0; t < nt; ++t) {
      s0 += part[2 * static_cast<int64_t>(t) * C + c];
      s1 += part[2 * static_cast<int64_t>(t) * C + C + c];
    }
    sdy[c] = s0;
    sdyx[c] = s1;
    if (a.dweight) a.dweight[c] = static_cast<T>(s1 * static_cast<double>(a.invstd[c]));
    if (a.dbias) a.dbias[c] = static_cast<T>(s0);
  }
  if (!a.dx) return;
  // coefficients of dx = ka*dy + kx*(x - mean) + k0, per channel (in the partial area)
  T* ka = reinterpret_cast<T*>(sdyx + C);
  T* kx = ka + C;
  T* k0 = kx + C;
  const double M = static_cast<double>(N);
  for (int64_t c = 0; c < C; ++c) {
    const double invstd = a.invstd[c];
    const double k = (a.weight ? static_cast<double>(a.weight[c]) : 1.0) * invstd;
    ka[c] = static_cast<T>(k);
    kx[c] = a.training ? static_cast<T>(-k * invstd * invstd * sdyx[c] / M) : T(0);
    k0[c] = a.training ? static_cast<T>(-k * sdy[c] / M) : T(0);
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < N; ++r) {
    const T* g = a.dy + r * C;
    const T* xr = a.x + r * C;
    T* d = a.dx + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] = ka[c] * g[c] + kx[c] * (xr[c] - a.mean[c]) + k0[c];
  }
}

template <typename T>
void batch_norm_backward(const BatchNormBackward<T>& a) {
  if (a.C == 0) return;
  if (a.N * a.S == 0) {  // empty batch: zero parameter gradients
    for (int64_t c = 0; c < a.C; ++c) {
      if (a.dweight) a.dweight[c] = 0;
      if (a.dbias) a.dbias[c] = 0;
    }
    return;
  }
  if (a.S == 1)
    bn_backward_rows(a);
  else
    bn_backward_channels(a);
}

// ---- layer_norm -----------------------------------------------------------------------------

// Row r of layer_norm's forward, written to y (a.y's row, or a row buffer when streaming).
template <typename T>
void layer_norm_row(const LayerNormForward<T>& a, int64_t r, int64_t ahead, T* y, bool own_y) {
  const int64_t M = a.M, N = a.N;
  const T* x = a.x + r * N;
  double mean = 0, var = 0;
  T mt = 0;
  if (ahead && r + ahead < M) {
    prefetch_row(a.x + (r + ahead) * N, N);
    if (own_y) prefetch_row_w(a.y + (r + ahead) * N, N);
  }
  if (N > 0) channel_stats(x, 1, N, N, mean, var, mt);  // N == 0: mean 0, var 0
  const double rs = 1.0 / std::sqrt(var + a.eps);
  const T rstd = static_cast<T>(rs);
  a.mean[r] = mt;
  a.rstd[r] = rstd;
  const T* w = a.weight;
  const T* b = a.bias;
  // (x - mt) is exact for x near the mean; the rounding of the mean to T is corrected by off
  const T off = static_cast<T>(-(mean - static_cast<double>(mt)) * rs);
  if (w && b) {
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) y[j] = ((x[j] - mt) * rstd + off) * w[j] + b[j];
  } else if (w) {
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) y[j] = ((x[j] - mt) * rstd + off) * w[j];
  } else if (b) {
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) y[j] = (x[j] - mt) * rstd + off + b[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) y[j] = (x[j] - mt) * rstd + off;
  }
}

template <typename T>
void layer_norm_forward(const LayerNormForward<T>& a) {
  const int64_t M = a.M, N = a.N;
  if (M == 0) return;
  const int nt = threads_for(M * N * 3, M);
  const int64_t ahead = rows_ahead<T>(N);
  for_rows_out(nt, M, N, a.y, [&](int64_t r, T* y, bool streaming) {
    layer_norm_row(a, r, ahead, y, !streaming);
  });
}

// R consecutive rows r..r+R-1 of layer_norm's backward. Pass 1 per row (streaming dy and x from
// DRAM): s0 = sum g*w, s1 = sum g*w*(x - mean). Pass 2, all R rows at once while they are in
// L1: dx, and the dweight / dbias partials pw / pb updated once per R rows instead of per row
// (their read-modify-write cost as much as dx itself at R = 1).
template <typename T, int R>
void ln_backward_rows(const LayerNormBackward<T>& a, int64_t r, int64_t ahead, int64_t r_end, T* pw,
                      T* pb, T* dbuf) {
  const int64_t N = a.N;
  const T* w = a.weight;
  const T* g[R];
  const T* x[R];
  T* d[R];
  T mean[R], rstd[R], c0[R], c1[R];
  for (int k = 0; k < R; ++k) {
    const int64_t row = r + k;
    g[k] = a.dy + row * N;
    x[k] = a.x + row * N;
    d[k] = !a.dx ? nullptr : dbuf ? dbuf + k * N : a.dx + row * N;
    mean[k] = a.mean[row];
    rstd[k] = a.rstd[row];
    if (ahead && row + ahead < r_end) {
      prefetch_row(g[k] + ahead * N, N);
      prefetch_row(x[k] + ahead * N, N);
      if (a.dx && !dbuf) prefetch_row_w(d[k] + ahead * N, N);
    }
    if (!a.dx) continue;
    double s0 = 0, s1 = 0;
    const T* gk = g[k];
    const T* xk = x[k];
    const T mk = mean[k];
    if (w) {
      stream_sum2<T>(
          N, [=](int64_t j) { return gk[j] * w[j]; },
          [=](int64_t j) { return gk[j] * w[j] * (xk[j] - mk); }, s0, s1);
    } else {
      stream_sum2<T>(
          N, [=](int64_t j) { return gk[j]; }, [=](int64_t j) { return gk[j] * (xk[j] - mk); }, s0,
          s1);
    }
    // dx = rstd*g*w - rstd*s0/N - (x - mean) * rstd^3 * s1 / N
    const double rs = rstd[k];
    c0[k] = static_cast<T>(-rs * s0 / static_cast<double>(N));
    c1[k] = static_cast<T>(-rs * rs * rs * s1 / static_cast<double>(N));
  }
  if (a.dx) {
    if (pw) {
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) {
        const T wj = w ? w[j] : T(1);
        T aw = 0, ab = 0;
        for (int k = 0; k < R; ++k) {
          const T xc = x[k][j] - mean[k];
          d[k][j] = rstd[k] * g[k][j] * wj + c1[k] * xc + c0[k];
          aw += g[k][j] * xc * rstd[k];
          ab += g[k][j];
        }
        pw[j] += aw;
        pb[j] += ab;
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) {
        const T wj = w ? w[j] : T(1);
        for (int k = 0; k < R; ++k)
          d[k][j] = rstd[k] * g[k][j] * wj + c1[k] * (x[k][j] - mean[k]) + c0[k];
      }
    }
    if (dbuf) {
      for (int k = 0; k < R; ++k) stream_copy(a.dx + (r + k) * N, d[k], N);
    }
  } else if (pw) {
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) {
      T aw = 0, ab = 0;
      for (int k = 0; k < R; ++k) {
        aw += g[k][j] * (x[k][j] - mean[k]) * rstd[k];
        ab += g[k][j];
      }
      pw[j] += aw;
      pb[j] += ab;
    }
  }
}

template <typename T>
void layer_norm_backward(const LayerNormBackward<T>& a) {
  const int64_t M = a.M, N = a.N;
  const bool want_params = a.dweight || a.dbias;
  const int nt = threads_for(M * N * 3, std::max<int64_t>(M, 1));
  // dx rows are built in a buffer and streamed out, as for_rows_out does
  const bool stream = a.dx && streamed(M, N * static_cast<int64_t>(sizeof(T)));
  // per-member partial rows: dweight then dbias
  // (all nt slots zeroed here: a smaller team than asked leaves some unwritten)
  T* part = want_params ? t_scratch.get<T>(2 * static_cast<int64_t>(nt) * N) : nullptr;
  if (part) std::fill(part, part + 2 * static_cast<int64_t>(nt) * N, T(0));
#pragma omp parallel num_threads(nt)
  {
    const int id = team_id(), size = team_size();
    int64_t r0, r1;
    split_range(M, id, size, r0, r1);
    T* pw = part ? part + 2 * static_cast<int64_t>(id) * N : nullptr;
    T* pb = pw ? pw + N : nullptr;
    const int64_t ahead = rows_ahead<T>(2 * N);
    // One row at a time: blocks of 2 or 4 rows (one pw / pb update per block) measured slower
    // on Zen 5 (8192x768: 2.4 ms at 1 row, 2.7 at 2, 3.4 at 4; the rows no longer fit L1).
    constexpr int kRows = 1;
    T* dbuf = stream ? stream_row_buffer().get<T>(kRows * N) : nullptr;
    int64_t r = r0;
    for (; r + kRows <= r1; r += kRows) ln_backward_rows<T, kRows>(a, r, ahead, r1, pw, pb, dbuf);
    if (stream) stream_fence();
  }
  if (!want_params) return;
  for (int64_t j = 0; j < N; ++j) {
    T sw = 0, sb = 0;
    for (int t = 0; t < nt; ++t) {
      sw += part[2 * static_cast<int64_t>(t) * N + j];
      sb += part[2 * static_cast<int64_t>(t) * N + N + j];
    }
    if (a.dweight) a.dweight[j] = sw;
    if (a.dbias) a.dbias[j] = sb;
  }
}

}  // namespace

template <typename T>
NormKernels<T> make_kernels() {
  return {&batch_norm_forward<T>, &batch_norm_backward<T>, &layer_norm_forward<T>,
          &layer_norm_backward<T>};
}

NormKernels<float> kernels_f32() { return make_kernels<float>(); }
NormKernels<double> kernels_f64() { return make_kernels<double>(); }

}  // namespace pyengine::cpu::norm_detail::PE_NORM_ISA
