// Normalization kernels on CUDA; contract in cuda/norm.h (and csrc/cpu/norm.h).
//
// batch_norm: three launches. Partial sums per (channel, slice of its rows) from a C x B grid,
// one thread per channel to combine them (statistics, running statistics, dweight / dbias),
// then one block per piece of a row to write y or dx = k*dy + kx*(x - mean) + k0.
// layer_norm: one block per row for the forward and dx, the row held in registers when it has
// at most 4096 values (else read two or three times); dweight / dbias are partial sums over
// (32 columns, a slice of rows) blocks, then one thread per column adds the slices in order.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "common.cuh"
#include "norm.h"
#include "rowwise.cuh"

namespace pyengine::cuda {
namespace {

using rowwise::block_sum;
using rowwise::kThreads;
using rowwise::kWarps;

template <typename T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

unsigned grid_of(int64_t blocks) {
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 2147483647));
}

// ---- batch_norm -------------------------------------------------------------------------------
// Each channel's N*S values are cut into pieces: a run of at most kPiece values of one (n, c)
// row. Blocks (c, b) of a grid C x B take pieces b, b + B, ... of channel c, so that a handful
// of channels still fill the GPU; one thread per channel then combines the B partial sums in
// double, and a last kernel walks every piece to write y (or dx).

constexpr int64_t kPiece = 2048;

struct Pieces {
  int64_t per_row, per_channel;  // pieces in one (n, c) row of S values, in one channel
};

__host__ __device__ inline Pieces pieces_of(int64_t N, int64_t S) {
  const int64_t per_row = (S + kPiece - 1) / kPiece;
  return {per_row, N * per_row};
}

// Piece p of channel c: values [s0, s1) of row n; returns the offset of (n, c, 0).
__device__ inline int64_t piece_row(int64_t p, int64_t c, int64_t C, int64_t S, Pieces pc,
                                    int64_t& s0, int64_t& s1) {
  const int64_t n = p / pc.per_row;
  s0 = (p % pc.per_row) * kPiece;
  s1 = min(s0 + kPiece, S);
  return (n * C + c) * S;
}

// The block's two sums u and v, into dst[0] and dst[1] (OVERWRITTEN) by thread 0.
__device__ __forceinline__ void store_partials(double u, double v, double* dst, double* smem) {
  u = block_sum(u, smem);
  v = block_sum(v, smem);
  if (threadIdx.x == 0) {
    dst[0] = u;
    dst[1] = v;
  }
}

// Grid (C, B): block (c, b) sums channel c's pieces b, b + B, ... in double: sum(x - K) and
// sum((x - K)^2), K = the channel's first value (the shift and the double sums keep
// E[x^2] - E[x]^2 from cancelling when the mean is far from 0 or from K against the spread).
// part[(c * B + b) * 2 + {0, 1}] is OVERWRITTEN.
template <typename T>
__global__ void bn_stats_kernel(cpu::BatchNormForward<T> a, Pieces pc, double* part) {
  __shared__ double smem[kWarps];
  const int64_t c = blockIdx.x, B = gridDim.y;
  const double K = static_cast<double>(a.x[c * a.S]);
  double s1 = 0, s2 = 0;
  for (int64_t p = blockIdx.y; p < pc.per_channel; p += B) {
    int64_t lo, hi;
    const T* x = a.x + piece_row(p, c, a.C, a.S, pc, lo, hi);
    for (int64_t s = lo + threadIdx.x; s < hi; s += blockDim.x) {
      const double d = static_cast<double>(x[s]) - K;
      s1 += d;
      s2 += d * d;
    }
  }
  store_partials(s1, s2, part + (c * B + blockIdx.y) * 2, smem);
}

// One thread per channel: mean / invstd from the partial sums (training) or the running
// statistics (eval); updates the running statistics and writes save_mean / save_invstd.
template <typename T>
__global__ void bn_finalize_kernel(cpu::BatchNormForward<T> a, int64_t B, const double* part) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= a.C) return;
  double mean, var;
  if (a.training) {
    double s1 = 0, s2 = 0;
    for (int64_t b = 0; b < B; ++b) {
      s1 += part[(c * B + b) * 2];
      s2 += part[(c * B + b) * 2 + 1];
    }
    const double M = static_cast<double>(a.N * a.S), d = s1 / M;
    mean = M > 0 ? static_cast<double>(a.x[c * a.S]) + d : d;  // no values: NaN, as 0/0
    var = M > 0 ? s2 / M - d * d : d;
    if (var < 0) var = 0;  // rounding; a NaN (from a NaN or an inf input) stays NaN
    if (a.running_mean) {
      const double m = a.momentum, unbiased = M > 1 ? var * M / (M - 1) : var;
      a.running_mean[c] =
          static_cast<T>((1 - m) * static_cast<double>(a.running_mean[c]) + m * mean);
      a.running_var[c] =
          static_cast<T>((1 - m) * static_cast<double>(a.running_var[c]) + m * unbiased);
    }
  } else {
    mean = static_cast<double>(a.running_mean[c]);
    var = static_cast<double>(a.running_var[c]);
  }
  a.save_mean[c] = static_cast<T>(mean);
  a.save_invstd[c] = static_cast<T>(1.0 / sqrt(var + a.eps));
}

// y = (x - mean) * invstd * weight + bias (OVERWRITTEN), one block per piece of the tensor.
template <typename T>
__global__ void bn_apply_kernel(cpu::BatchNormForward<T> a, Pieces pc) {
  using A = typename Acc<T>::type;
  const int64_t items = a.C * pc.per_channel;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t row = it / pc.per_row, c = row % a.C;
    const int64_t lo = (it % pc.per_row) * kPiece, hi = min(lo + kPiece, a.S);
    const A invstd = static_cast<A>(a.save_invstd[c]), mean = static_cast<A>(a.save_mean[c]);
    const A scale = (a.weight ? static_cast<A>(a.weight[c]) : A(1)) * invstd;
    const A shift = a.bias ? static_cast<A>(a.bias[c]) : A(0);
    const T* x = a.x + row * a.S;
    T* y = a.y + row * a.S;
    for (int64_t s = lo + threadIdx.x; s < hi; s += blockDim.x)  // x - mean first: no cancellation
      y[s] = static_cast<T>((static_cast<A>(x[s]) - mean) * scale + shift);
  }
}

// Backward, grid (C, B): block (c, b) sums sum(dy) and sum(dy * (x - mean)) over channel c's
// pieces b, b + B, ... in double; part[(c * B + b) * 2 + {0, 1}] is OVERWRITTEN.
template <typename T>
__global__ void bn_grad_stats_kernel(cpu::BatchNormBackward<T> a, Pieces pc, double* part) {
  __shared__ double smem[kWarps];
  const int64_t c = blockIdx.x, B = gridDim.y;
  const double mean = static_cast<double>(a.mean[c]);
  double s0 = 0, s1 = 0;
  for (int64_t p = blockIdx.y; p < pc.per_channel; p += B) {
    int64_t lo, hi;
    const int64_t off = piece_row(p, c, a.C, a.S, pc, lo, hi);
    for (int64_t s = lo + threadIdx.x; s < hi; s += blockDim.x) {
      const double g = static_cast<double>(a.dy[off + s]);
      s0 += g;
      s1 += g * (static_cast<double>(a.x[off + s]) - mean);
    }
  }
  store_partials(s0, s1, part + (c * B + blockIdx.y) * 2, smem);
}

// One thread per channel: dweight, dbias, and dx = k*dy + kx*(x - mean) + k0's coefficients
// into coef[c * 3 + {0, 1, 2}] (OVERWRITTEN).
template <typename T>
__global__ void bn_grad_finalize_kernel(cpu::BatchNormBackward<T> a, int64_t B, const double* part,
                                        double* coef) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= a.C) return;
  double sdy = 0, sdyx = 0;
  for (int64_t b = 0; b < B; ++b) {
    sdy += part[(c * B + b) * 2];
    sdyx += part[(c * B + b) * 2 + 1];
  }
  const double invstd = static_cast<double>(a.invstd[c]);
  if (a.dweight) a.dweight[c] = static_cast<T>(sdyx * invstd);
  if (a.dbias) a.dbias[c] = static_cast<T>(sdy);
  const double k = (a.weight ? static_cast<double>(a.weight[c]) : 1.0) * invstd;
  const double M = static_cast<double>(a.N * a.S);
  coef[c * 3] = k;
  coef[c * 3 + 1] = a.training ? -k * invstd * invstd * sdyx / M : 0.0;
  coef[c * 3 + 2] = a.training ? -k * sdy / M : 0.0;
}

// dx = k*dy + kx*(x - mean) + k0 (OVERWRITTEN) with the channel's coef, one block per piece.
template <typename T>
__global__ void bn_grad_apply_kernel(cpu::BatchNormBackward<T> a, Pieces pc, const double* coef) {
  using A = typename Acc<T>::type;
  const int64_t items = a.C * pc.per_channel;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t row = it / pc.per_row, c = row % a.C;
    const int64_t lo = (it % pc.per_row) * kPiece, hi = min(lo + kPiece, a.S);
    const A k = static_cast<A>(coef[c * 3]), kx = static_cast<A>(coef[c * 3 + 1]);
    const A k0 = static_cast<A>(coef[c * 3 + 2]), mean = static_cast<A>(a.mean[c]);
    const int64_t off = row * a.S;
    for (int64_t s = lo + threadIdx.x; s < hi; s += blockDim.x)
      a.dx[off + s] = static_cast<T>(k * static_cast<A>(a.dy[off + s]) +
                                     kx * (static_cast<A>(a.x[off + s]) - mean) + k0);
  }
}

// ---- layer_norm -------------------------------------------------------------------------------

template <typename T>
__global__ void ln_forward_kernel(cpu::LayerNormForward<T> a) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  for (int64_t r = blockIdx.x; r < a.M; r += gridDim.x) {
    const T* x = a.x + r * a.N;
    T* y = a.y + r * a.N;
    A s = 0;
    for (int64_t j = threadIdx.x; j < a.N; j += blockDim.x) s += static_cast<A>(x[j]);
    const A mean = a.N ? block_sum(s, smem) / static_cast<A>(a.N) : A(0);
    A q = 0;
    for (int64_t j = threadIdx.x; j < a.N; j += blockDim.x) {
      const A d = static_cast<A>(x[j]) - mean;
      q += d * d;
    }
    const A var = a.N ? block_sum(q, smem) / static_cast<A>(a.N) : A(0);
    const A rstd = A(1) / sqrt(var + static_cast<A>(a.eps));
    if (threadIdx.x == 0) {
      a.mean[r] = static_cast<T>(mean);
      a.rstd[r] = static_cast<T>(rstd);
    }
    for (int64_t j = threadIdx.x; j < a.N; j += blockDim.x) {
      A v = (static_cast<A>(x[j]) - mean) * rstd;
      if (a.weight) v *= static_cast<A>(a.weight[j]);
      if (a.bias) v += static_cast<A>(a.bias[j]);
      y[j] = static_cast<T>(v);
    }
  }
}

// ln_forward_kernel for rows of at most P * kThreads values, read once into registers
// (one block per row; y, mean, rstd OVERWRITTEN).
template <typename T, int P>
__global__ void ln_forward_regs_kernel(cpu::LayerNormForward<T> a) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  const A n = static_cast<A>(a.N);
  for (int64_t r = blockIdx.x; r < a.M; r += gridDim.x) {
    A v[P];
    rowwise::load_row<P>(a.x + r * a.N, a.N, A(0), v);
    A s = 0;
#pragma unroll
    for (int p = 0; p < P; ++p) s += v[p];
    const A mean = block_sum(s, smem) / n;
    A q = 0;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const A d = threadIdx.x + static_cast<int64_t>(p) * kThreads < a.N ? v[p] - mean : A(0);
      q += d * d;
    }
    const A rstd = A(1) / sqrt(block_sum(q, smem) / n + static_cast<A>(a.eps));
    if (threadIdx.x == 0) {
      a.mean[r] = static_cast<T>(mean);
      a.rstd[r] = static_cast<T>(rstd);
    }
    T* y = a.y + r * a.N;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(p) * kThreads;
      if (j >= a.N) break;
      A o = (v[p] - mean) * rstd;
      if (a.weight) o *= static_cast<A>(a.weight[j]);
      if (a.bias) o += static_cast<A>(a.bias[j]);
      y[j] = static_cast<T>(o);
    }
  }
}

template <typename T>
__global__ void ln_backward_dx_kernel(cpu::LayerNormBackward<T> a) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  for (int64_t r = blockIdx.x; r < a.M; r += gridDim.x) {
    const T* g = a.dy + r * a.N;
    const T* x = a.x + r * a.N;
    const A mean = static_cast<A>(a.mean[r]), rstd = static_cast<A>(a.rstd[r]);
    A s0 = 0, s1 = 0;
    for (int64_t j = threadIdx.x; j < a.N; j += blockDim.x) {
      const A gw = static_cast<A>(g[j]) * (a.weight ? static_cast<A>(a.weight[j]) : A(1));
      s0 += gw;
      s1 += gw * (static_cast<A>(x[j]) - mean);
    }
    s0 = block_sum(s0, smem);
    s1 = block_sum(s1, smem);
    const A n = static_cast<A>(a.N);
    const A c0 = -rstd * s0 / n, c1 = -rstd * rstd * rstd * s1 / n;
    for (int64_t j = threadIdx.x; j < a.N; j += blockDim.x) {
      const A gw = static_cast<A>(g[j]) * (a.weight ? static_cast<A>(a.weight[j]) : A(1));
      a.dx[r * a.N + j] = static_cast<T>(rstd * gw + c1 * (static_cast<A>(x[j]) - mean) + c0);
    }
  }
}

// ln_backward_dx_kernel for rows of at most P * kThreads values: dy and x read once into
// registers (one block per row; dx OVERWRITTEN).
template <typename T, int P>
__global__ void ln_backward_dx_regs_kernel(cpu::LayerNormBackward<T> a) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  const A n = static_cast<A>(a.N);
  for (int64_t r = blockIdx.x; r < a.M; r += gridDim.x) {
    A gw[P], xm[P];  // dy * weight, x - mean (0 past the row)
    rowwise::load_row<P>(a.dy + r * a.N, a.N, A(0), gw);
    rowwise::load_row<P>(a.x + r * a.N, a.N, A(0), xm);
    const A mean = static_cast<A>(a.mean[r]), rstd = static_cast<A>(a.rstd[r]);
    A s0 = 0, s1 = 0;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(p) * kThreads;
      if (j < a.N) {
        if (a.weight) gw[p] *= static_cast<A>(a.weight[j]);
        xm[p] -= mean;
      }
      s0 += gw[p];
      s1 += gw[p] * xm[p];
    }
    s0 = block_sum(s0, smem);
    s1 = block_sum(s1, smem);
    const A c0 = -rstd * s0 / n, c1 = -rstd * rstd * rstd * s1 / n;
    T* dx = a.dx + r * a.N;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(p) * kThreads;
      if (j >= a.N) break;
      dx[j] = static_cast<T>(rstd * gw[p] + c1 * xm[p] + c0);
    }
  }
}

// dweight / dbias in two launches, so that a tall matrix keeps every multiprocessor busy (one
// thread per column walking all rows used only N / 256 blocks). Partial sums: block (bx, s)
// takes columns [32 bx, 32 bx + 32) (one per lane: a warp reads 32 consecutive values of a row)
// and rows [M s / S, M (s + 1) / S), its 8 warps taking every 8th row; it OVERWRITES
//   part[(2 s) * N + j] = sum dy * (x - mean) * rstd,   part[(2 s + 1) * N + j] = sum dy.
constexpr int kLnCols = 32;

template <typename T>
__global__ void ln_params_partial_kernel(cpu::LayerNormBackward<T> a, int64_t S,
                                         typename Acc<T>::type* part) {
  using A = typename Acc<T>::type;
  __shared__ A sw_s[kWarps][kLnCols], sb_s[kWarps][kLnCols];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kLnCols + lane, s = blockIdx.y;
  const int64_t r0 = a.M * s / S, r1 = a.M * (s + 1) / S;
  A sw = 0, sb = 0;
  if (j < a.N) {
    for (int64_t r = r0 + warp; r < r1; r += kWarps) {
      const A g = static_cast<A>(a.dy[r * a.N + j]);
      sw += g * (static_cast<A>(a.x[r * a.N + j]) - static_cast<A>(a.mean[r])) *
            static_cast<A>(a.rstd[r]);
      sb += g;
    }
  }
  sw_s[warp][lane] = sw;
  sb_s[warp][lane] = sb;
  __syncthreads();
  if (warp == 0 && j < a.N) {
    A tw = 0, tb = 0;
    for (int w = 0; w < kWarps; ++w) {  // a fixed order: the sums are deterministic
      tw += sw_s[w][lane];
      tb += sb_s[w][lane];
    }
    part[(2 * s) * a.N + j] = tw;
    part[(2 * s + 1) * a.N + j] = tb;
  }
}

// One thread per column: dweight[j] / dbias[j] (OVERWRITTEN, where not null) = the S partial
// sums in slice order.
template <typename T>
__global__ void ln_params_finalize_kernel(cpu::LayerNormBackward<T> a, int64_t S,
                                          const typename Acc<T>::type* part) {
  using A = typename Acc<T>::type;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < a.N;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    A sw = 0, sb = 0;
    for (int64_t s = 0; s < S; ++s) {
      sw += part[(2 * s) * a.N + j];
      sb += part[(2 * s + 1) * a.N + j];
    }
    if (a.dweight) a.dweight[j] = static_cast<T>(sw);
    if (a.dbias) a.dbias[j] = static_cast<T>(sb);
  }
}

// layer_norm: at least 32 rows per slice (fewer rows per block would spend more on the
// partials than on the rows), and grid.y's limit.
int64_t ln_slices(int64_t M, int64_t N) {
  return slices_per_group((N + kLnCols - 1) / kLnCols, std::min<int64_t>((M + 31) / 32, 65535),
                          "layer_norm");
}

// batch_norm: at most one slice per piece and kMaxSlices (the partial sums are combined
// serially per channel).
constexpr int64_t kMaxSlices = 256;

int64_t bn_slices(int64_t C, Pieces pc) {
  return slices_per_group(C, std::min(pc.per_channel, kMaxSlices), "batch_norm");
}

}  // namespace

template <typename T>
void batch_norm_forward(const cpu::BatchNormForward<T>& a, cudaStream_t stream) {
  if (a.C == 0) return;
  const Pieces pc = pieces_of(a.N, a.S);
  // eval reads the running statistics: no partial sums, no scratch
  const int64_t B = a.training && pc.per_channel > 0 ? bn_slices(a.C, pc) : 0;
  std::optional<StreamScratch> part;
  if (B > 0) {
    part.emplace(static_cast<size_t>(a.C * B) * 2 * sizeof(double), stream, "batch_norm");
    bn_stats_kernel<T><<<dim3(grid_of(a.C), static_cast<unsigned>(B)), kThreads, 0, stream>>>(
        a, pc, part->as<double>());
    PE_CUDA_CHECK_LAUNCH("batch_norm");
  }
  bn_finalize_kernel<T><<<grid_of((a.C + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      a, B, part ? part->as<double>() : nullptr);
  PE_CUDA_CHECK_LAUNCH("batch_norm");
  if (pc.per_channel > 0) {
    bn_apply_kernel<T><<<grid_of(a.C * pc.per_channel), kThreads, 0, stream>>>(a, pc);
    PE_CUDA_CHECK_LAUNCH("batch_norm");
  }
}

template <typename T>
void batch_norm_backward(const cpu::BatchNormBackward<T>& a, cudaStream_t stream) {
  if (a.C == 0) return;
  const Pieces pc = pieces_of(a.N, a.S);
  const int64_t B = bn_slices(a.C, pc);
  StreamScratch part(static_cast<size_t>(a.C) * (2 * B + 3) * sizeof(double), stream, "batch_norm");
  double* coef = part.as<double>() + 2 * a.C * B;
  if (pc.per_channel > 0) {
    bn_grad_stats_kernel<T><<<dim3(grid_of(a.C), static_cast<unsigned>(B)), kThreads, 0, stream>>>(
        a, pc, part.as<double>());
    PE_CUDA_CHECK_LAUNCH("batch_norm");
  }
  bn_grad_finalize_kernel<T><<<grid_of((a.C + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      a, pc.per_channel > 0 ? B : 0, part.as<double>(), coef);
  PE_CUDA_CHECK_LAUNCH("batch_norm");
  if (a.dx && pc.per_channel > 0) {
    bn_grad_apply_kernel<T><<<grid_of(a.C * pc.per_channel), kThreads, 0, stream>>>(a, pc, coef);
    PE_CUDA_CHECK_LAUNCH("batch_norm");
  }
}

template <typename T>
void layer_norm_forward(const cpu::LayerNormForward<T>& a, cudaStream_t stream) {
  if (a.M == 0) return;
  const bool in_regs = rowwise::with_row_regs(a.N, [&](auto regs) {
    ln_forward_regs_kernel<T, decltype(regs)::value><<<grid_of(a.M), kThreads, 0, stream>>>(a);
  });
  if (!in_regs) ln_forward_kernel<T><<<grid_of(a.M), kThreads, 0, stream>>>(a);
  PE_CUDA_CHECK_LAUNCH("layer_norm");
}

template <typename T>
void layer_norm_backward(const cpu::LayerNormBackward<T>& a, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  if (a.dx && a.M > 0) {
    const bool in_regs = rowwise::with_row_regs(a.N, [&](auto regs) {
      ln_backward_dx_regs_kernel<T, decltype(regs)::value>
          <<<grid_of(a.M), kThreads, 0, stream>>>(a);
    });
    if (!in_regs) ln_backward_dx_kernel<T><<<grid_of(a.M), kThreads, 0, stream>>>(a);
    PE_CUDA_CHECK_LAUNCH("layer_norm");
  }
  if ((a.dweight || a.dbias) && a.N > 0) {
    const int64_t S = a.M > 0 ? ln_slices(a.M, a.N) : 0;
    std::optional<StreamScratch> part;
    if (S > 0) {
      part.emplace(static_cast<size_t>(2 * S * a.N) * sizeof(A), stream, "layer_norm");
      const dim3 grid(static_cast<unsigned>((a.N + kLnCols - 1) / kLnCols),
                      static_cast<unsigned>(S));
      ln_params_partial_kernel<T><<<grid, kThreads, 0, stream>>>(a, S, part->as<A>());
      PE_CUDA_CHECK_LAUNCH("layer_norm");
    }
    ln_params_finalize_kernel<T><<<grid_of((a.N + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        a, S, part ? part->as<A>() : nullptr);
    PE_CUDA_CHECK_LAUNCH("layer_norm");
  }
}

#define PE_NORM_CUDA_INSTANTIATE(T)                                                     \
  template void batch_norm_forward<T>(const cpu::BatchNormForward<T>&, cudaStream_t);   \
  template void batch_norm_backward<T>(const cpu::BatchNormBackward<T>&, cudaStream_t); \
  template void layer_norm_forward<T>(const cpu::LayerNormForward<T>&, cudaStream_t);   \
  template void layer_norm_backward<T>(const cpu::LayerNormBackward<T>&, cudaStream_t);
PE_NORM_CUDA_INSTANTIATE(float)
PE_NORM_CUDA_INSTANTIATE(double)
#undef PE_NORM_CUDA_INSTANTIATE

}  // namespace pyengine::cuda
