// Normalization kernels on CUDA; contract in cuda/norm.h (and csrc/cpu/norm.h).
//
// batch_norm: one block per channel walks its N*S elements (n-major, s contiguous, so the
// threads of a block read consecutive addresses when S is large): sum -> mean, sum of squared
// deviations -> var, then y. Thread 0 updates the running statistics. The backward is the same
// shape: sum dy and sum dy*(x - mean), then dx = a*dy + b*(x - mean) + c.
// layer_norm: one block per row for the forward and dx; dweight / dbias are a column kernel
// (one thread per column, rows walked in order; threads of a warp read consecutive columns).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

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

template <typename T>
__global__ void bn_forward_kernel(cpu::BatchNormForward<T> a) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  const int64_t CS = a.C * a.S, M = a.N * a.S;
  for (int64_t c = blockIdx.x; c < a.C; c += gridDim.x) {
    A mean, var;
    if (a.training) {
      A s = 0;
      for (int64_t i = threadIdx.x; i < M; i += blockDim.x)
        s += static_cast<A>(a.x[(i / a.S) * CS + c * a.S + i % a.S]);
      mean = block_sum(s, smem) / static_cast<A>(M);
      A q = 0;
      for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
        const A d = static_cast<A>(a.x[(i / a.S) * CS + c * a.S + i % a.S]) - mean;
        q += d * d;
      }
      var = block_sum(q, smem) / static_cast<A>(M);
      if (threadIdx.x == 0 && a.running_mean) {
        const A m = static_cast<A>(a.momentum);
        const A unbiased = M > 1 ? var * static_cast<A>(M) / static_cast<A>(M - 1) : var;
        a.running_mean[c] = static_cast<T>((1 - m) * static_cast<A>(a.running_mean[c]) + m * mean);
        a.running_var[c] =
            static_cast<T>((1 - m) * static_cast<A>(a.running_var[c]) + m * unbiased);
      }
    } else {
      mean = static_cast<A>(a.running_mean[c]);
      var = static_cast<A>(a.running_var[c]);
    }
    const A invstd = A(1) / sqrt(var + static_cast<A>(a.eps));
    const A scale = (a.weight ? static_cast<A>(a.weight[c]) : A(1)) * invstd;
    const A shift = a.bias ? static_cast<A>(a.bias[c]) : A(0);
    if (threadIdx.x == 0) {
      a.save_mean[c] = static_cast<T>(mean);
      a.save_invstd[c] = static_cast<T>(invstd);
    }
    for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
      const int64_t off = (i / a.S) * CS + c * a.S + i % a.S;
      a.y[off] = static_cast<T>((static_cast<A>(a.x[off]) - mean) * scale + shift);
    }
  }
}

template <typename T>
__global__ void bn_backward_kernel(cpu::BatchNormBackward<T> a) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  const int64_t CS = a.C * a.S, M = a.N * a.S;
  for (int64_t c = blockIdx.x; c < a.C; c += gridDim.x) {
    const A mean = static_cast<A>(a.mean[c]), invstd = static_cast<A>(a.invstd[c]);
    A s0 = 0, s1 = 0;
    for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
      const int64_t off = (i / a.S) * CS + c * a.S + i % a.S;
      const A g = static_cast<A>(a.dy[off]);
      s0 += g;
      s1 += g * (static_cast<A>(a.x[off]) - mean);
    }
    const A sdy = block_sum(s0, smem);
    const A sdyx = block_sum(s1, smem);
    if (threadIdx.x == 0) {
      if (a.dweight) a.dweight[c] = static_cast<T>(sdyx * invstd);
      if (a.dbias) a.dbias[c] = static_cast<T>(sdy);
    }
    if (!a.dx) continue;
    const A k = (a.weight ? static_cast<A>(a.weight[c]) : A(1)) * invstd;
    const A Mf = static_cast<A>(M);
    const A kx = a.training ? -k * invstd * invstd * sdyx / Mf : A(0);
    const A k0 = a.training ? -k * sdy / Mf : A(0);
    for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
      const int64_t off = (i / a.S) * CS + c * a.S + i % a.S;
      a.dx[off] = static_cast<T>(k * static_cast<A>(a.dy[off]) +
                                 kx * (static_cast<A>(a.x[off]) - mean) + k0);
    }
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

template <typename T>
__global__ void ln_backward_params_kernel(cpu::LayerNormBackward<T> a) {
  using A = typename Acc<T>::type;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < a.N;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    A sw = 0, sb = 0;
    for (int64_t r = 0; r < a.M; ++r) {
      const A g = static_cast<A>(a.dy[r * a.N + j]);
      sw += g * (static_cast<A>(a.x[r * a.N + j]) - static_cast<A>(a.mean[r])) *
            static_cast<A>(a.rstd[r]);
      sb += g;
    }
    if (a.dweight) a.dweight[j] = static_cast<T>(sw);
    if (a.dbias) a.dbias[j] = static_cast<T>(sb);
  }
}

}  // namespace

template <typename T>
void batch_norm_forward(const cpu::BatchNormForward<T>& a, cudaStream_t stream) {
  if (a.C == 0) return;
  bn_forward_kernel<T><<<grid_of(a.C), kThreads, 0, stream>>>(a);
  PE_CUDA_CHECK_LAUNCH("batch_norm");
}

template <typename T>
void batch_norm_backward(const cpu::BatchNormBackward<T>& a, cudaStream_t stream) {
  if (a.C == 0) return;
  bn_backward_kernel<T><<<grid_of(a.C), kThreads, 0, stream>>>(a);
  PE_CUDA_CHECK_LAUNCH("batch_norm");
}

template <typename T>
void layer_norm_forward(const cpu::LayerNormForward<T>& a, cudaStream_t stream) {
  if (a.M == 0) return;
  ln_forward_kernel<T><<<grid_of(a.M), kThreads, 0, stream>>>(a);
  PE_CUDA_CHECK_LAUNCH("layer_norm");
}

template <typename T>
void layer_norm_backward(const cpu::LayerNormBackward<T>& a, cudaStream_t stream) {
  if (a.dx && a.M > 0) {
    ln_backward_dx_kernel<T><<<grid_of(a.M), kThreads, 0, stream>>>(a);
    PE_CUDA_CHECK_LAUNCH("layer_norm");
  }
  if ((a.dweight || a.dbias) && a.N > 0) {
    ln_backward_params_kernel<T>
        <<<grid_of((a.N + kThreads - 1) / kThreads), kThreads, 0, stream>>>(a);
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
