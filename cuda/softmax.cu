// Softmax-family kernels on CUDA; contract in cuda/softmax.h (and csrc/cpu/softmax.h).
//
// softmax / log_softmax: one block per row (o, i) of `dim` elements at stride `inner`: a block
// max, a block sum of exp(x - max), then the write. Backward: one block sum, then the write.
// Contiguous rows (inner == 1) of at most 4096 values are read once, into registers.
// cross_entropy: one block per sample, the same three steps, log-sum-exp and the losses in the
// accumulation type, dlogits written in the last step. nll_loss: one thread per sample.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "common.cuh"
#include "rowwise.cuh"
#include "softmax.h"

namespace pyengine::cuda {
namespace {

using rowwise::block_max;
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

template <typename A>
__device__ __forceinline__ A exp_of(A v) {
  return exp(v);
}
template <>
__device__ __forceinline__ float exp_of<float>(float v) {
  return __expf(v);
}

template <typename T>
__global__ void softmax_forward_kernel(int64_t outer, int64_t dim, int64_t inner, const T* x, T* y,
                                       bool log) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  for (int64_t row = blockIdx.x; row < outer * inner; row += gridDim.x) {
    const int64_t base = (row / inner) * dim * inner + row % inner;
    const T* xr = x + base;
    T* yr = y + base;
    A m = -std::numeric_limits<A>::infinity();
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
      const A v = static_cast<A>(xr[c * inner]);
      m = (v > m || v != v) ? v : m;
    }
    m = block_max(m, smem);
    A s = 0;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
      s += exp_of(static_cast<A>(xr[c * inner]) - m);
    s = block_sum(s, smem);
    const A lse = m + ::log(s), inv = A(1) / s;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
      const A v = static_cast<A>(xr[c * inner]);
      yr[c * inner] = static_cast<T>(log ? v - lse : exp_of(v - m) * inv);
    }
  }
}

template <typename T>
__global__ void softmax_backward_kernel(int64_t outer, int64_t dim, int64_t inner, const T* y,
                                        const T* g, T* d, bool log) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  for (int64_t row = blockIdx.x; row < outer * inner; row += gridDim.x) {
    const int64_t base = (row / inner) * dim * inner + row % inner;
    A s = 0;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
      const int64_t k = base + c * inner;
      s += log ? static_cast<A>(g[k]) : static_cast<A>(g[k]) * static_cast<A>(y[k]);
    }
    s = block_sum(s, smem);
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
      const int64_t k = base + c * inner;
      const A yv = static_cast<A>(y[k]), gv = static_cast<A>(g[k]);
      d[k] = static_cast<T>(log ? gv - exp(yv) * s : yv * (gv - s));
    }
  }
}

// softmax_forward_kernel for contiguous rows (inner == 1) of at most P * kThreads values, read
// once into registers; one block per row, y OVERWRITTEN.
template <typename T, int P>
__global__ void softmax_forward_regs_kernel(int64_t rows, int64_t dim, const T* x, T* y, bool log) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  const A ninf = -std::numeric_limits<A>::infinity();
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    A v[P];
    rowwise::load_row<P>(x + row * dim, dim, ninf, v);
    A m = ninf;
#pragma unroll
    for (int p = 0; p < P; ++p) m = (v[p] > m || v[p] != v[p]) ? v[p] : m;
    m = block_max(m, smem);
    A s = 0;
#pragma unroll
    for (int p = 0; p < P; ++p)
      if (threadIdx.x + static_cast<int64_t>(p) * kThreads < dim) s += exp_of(v[p] - m);
    s = block_sum(s, smem);
    const A lse = m + ::log(s), inv = A(1) / s;
    T* yr = y + row * dim;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(p) * kThreads;
      if (j < dim) yr[j] = static_cast<T>(log ? v[p] - lse : exp_of(v[p] - m) * inv);
    }
  }
}

// softmax_backward_kernel for the same rows, y and g read once into registers:
// d = y * (g - sum(g * y)) (softmax) or g - exp(y) * sum(g) (log_softmax), OVERWRITTEN.
template <typename T, int P>
__global__ void softmax_backward_regs_kernel(int64_t rows, int64_t dim, const T* y, const T* g,
                                             T* d, bool log) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    A yv[P], gv[P];
    rowwise::load_row<P>(y + row * dim, dim, A(0), yv);
    rowwise::load_row<P>(g + row * dim, dim, A(0), gv);
    A s = 0;
#pragma unroll
    for (int p = 0; p < P; ++p) s += log ? gv[p] : gv[p] * yv[p];
    s = block_sum(s, smem);
    T* dr = d + row * dim;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const int64_t j = threadIdx.x + static_cast<int64_t>(p) * kThreads;
      if (j < dim) dr[j] = static_cast<T>(log ? gv[p] - exp(yv[p]) * s : yv[p] * (gv[p] - s));
    }
  }
}

template <typename T>
__global__ void cross_entropy_kernel(cpu::CrossEntropy<T> a) {
  using A = typename Acc<T>::type;
  __shared__ A smem[kWarps];
  __shared__ double dsm[kWarps];
  const int64_t C = a.C, cs = a.D;
  const double eps = a.label_smoothing;
  for (int64_t s_idx = blockIdx.x; s_idx < a.N * a.D; s_idx += gridDim.x) {
    const int64_t n = s_idx / a.D, dd = s_idx % a.D;
    const int64_t base = n * C * a.D + dd;
    const T* x = a.x + base;
    T* dl = a.dlogits ? a.dlogits + base : nullptr;
    int64_t t = -1;
    if (a.target) {
      t = a.target[s_idx];
      if (t == a.ignore_index) {
        if (threadIdx.x == 0) {
          a.loss[s_idx] = 0;
          if (a.sample_weight) a.sample_weight[s_idx] = 0;
        }
        if (dl)
          for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dl[c * cs] = 0;
        continue;
      }
    }
    A m = -std::numeric_limits<A>::infinity();
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const A v = static_cast<A>(x[c * cs]);
      m = (v > m || v != v) ? v : m;
    }
    m = block_max(m, smem);
    // sum exp, sum w, sum w*x; for probability targets A = sum w q', B = sum w q' x
    double se = 0, sw = 0, swx = 0, sa = 0, sb = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const A v = static_cast<A>(x[c * cs]);
      se += static_cast<double>(exp_of(v - m));
      const double wc = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
      if (a.target) {
        sw += wc;
        swx += wc * static_cast<double>(v);
      } else {
        const double wq =
            wc * ((1 - eps) * static_cast<double>(a.target_prob[base + c * cs]) + eps / C);
        sa += wq;
        sb += wq * static_cast<double>(v);
      }
    }
    se = block_sum(se, dsm);
    const double wsum = block_sum(sw, dsm);
    swx = block_sum(swx, dsm);
    sa = block_sum(sa, dsm);
    sb = block_sum(sb, dsm);
    const double lse = static_cast<double>(m) + ::log(se);
    const double inv_s = 1.0 / se;
    if (a.target) {
      const double wt = a.weight ? static_cast<double>(a.weight[t]) : 1.0;
      if (threadIdx.x == 0) {
        double loss = (1 - eps) * wt * (lse - static_cast<double>(x[t * cs]));
        if (eps > 0) loss += eps / C * (lse * wsum - swx);
        a.loss[s_idx] = static_cast<T>(loss);
        if (a.sample_weight) a.sample_weight[s_idx] = static_cast<T>(wt);
      }
      if (dl) {
        const double kp = ((1 - eps) * wt + eps * wsum / C) * inv_s;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
          const double wc = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
          double v = static_cast<double>(exp_of(static_cast<A>(x[c * cs]) - m)) * kp - eps / C * wc;
          if (c == t) v -= (1 - eps) * wt;
          dl[c * cs] = static_cast<T>(v);
        }
      }
    } else {
      if (threadIdx.x == 0) {
        a.loss[s_idx] = static_cast<T>(sa * lse - sb);
        if (a.sample_weight) a.sample_weight[s_idx] = 1;
      }
      if (dl) {
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
          const double wc = a.weight ? static_cast<double>(a.weight[c]) : 1.0;
          const double q = (1 - eps) * static_cast<double>(a.target_prob[base + c * cs]) + eps / C;
          const double p = static_cast<double>(exp_of(static_cast<A>(x[c * cs]) - m)) * inv_s;
          dl[c * cs] = static_cast<T>(p * sa - wc * q);
        }
      }
    }
  }
}

template <typename T>
__global__ void nll_forward_kernel(cpu::NllLoss<T> a) {
  const int64_t n_s = a.N * a.D;
  for (int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; s < n_s;
       s += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = s / a.D, d = s % a.D, t = a.target[s];
    if (t == a.ignore_index) {
      a.loss[s] = 0;
      if (a.sample_weight) a.sample_weight[s] = 0;
      continue;
    }
    const T w = a.weight ? a.weight[t] : T(1);
    a.loss[s] = -w * a.x[(n * a.C + t) * a.D + d];
    if (a.sample_weight) a.sample_weight[s] = w;
  }
}

template <typename T>
__global__ void nll_backward_kernel(int64_t N, int64_t C, int64_t D, const int64_t* target,
                                    const T* weight, int64_t ignore_index, const T* g, T* dx) {
  const int64_t total = N * C * D;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = e % D, c = (e / D) % C, n = e / (C * D), s = n * D + d;
    const int64_t t = target[s];
    dx[e] = (t == c && t != ignore_index) ? -(weight ? weight[t] : T(1)) * g[s] : T(0);
  }
}

}  // namespace

template <typename T>
void softmax_forward(int64_t outer, int64_t dim, int64_t inner, const T* x, T* y, bool log,
                     cudaStream_t stream) {
  if (outer == 0 || dim == 0 || inner == 0) return;
  const bool in_regs = inner == 1 && rowwise::with_row_regs(dim, [&](auto regs) {
                         softmax_forward_regs_kernel<T, decltype(regs)::value>
                             <<<grid_of(outer), kThreads, 0, stream>>>(outer, dim, x, y, log);
                       });
  if (!in_regs)
    softmax_forward_kernel<T>
        <<<grid_of(outer * inner), kThreads, 0, stream>>>(outer, dim, inner, x, y, log);
  PE_CUDA_CHECK_LAUNCH(log ? "log_softmax" : "softmax");
}

template <typename T>
void softmax_backward(int64_t outer, int64_t dim, int64_t inner, const T* y, const T* dy, T* dx,
                      bool log, cudaStream_t stream) {
  if (outer == 0 || dim == 0 || inner == 0) return;
  const bool in_regs = inner == 1 && rowwise::with_row_regs(dim, [&](auto regs) {
                         softmax_backward_regs_kernel<T, decltype(regs)::value>
                             <<<grid_of(outer), kThreads, 0, stream>>>(outer, dim, y, dy, dx, log);
                       });
  if (!in_regs)
    softmax_backward_kernel<T>
        <<<grid_of(outer * inner), kThreads, 0, stream>>>(outer, dim, inner, y, dy, dx, log);
  PE_CUDA_CHECK_LAUNCH(log ? "log_softmax" : "softmax");
}

template <typename T>
void cross_entropy_forward(const cpu::CrossEntropy<T>& a, cudaStream_t stream) {
  if (a.N * a.D == 0) return;
  cross_entropy_kernel<T><<<grid_of(a.N * a.D), kThreads, 0, stream>>>(a);
  PE_CUDA_CHECK_LAUNCH("cross_entropy");
}

template <typename T>
void nll_loss_forward(const cpu::NllLoss<T>& a, cudaStream_t stream) {
  const int64_t n = a.N * a.D;
  if (n == 0) return;
  nll_forward_kernel<T><<<grid_of((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(a);
  PE_CUDA_CHECK_LAUNCH("nll_loss");
}

template <typename T>
void nll_loss_backward(int64_t N, int64_t C, int64_t D, const int64_t* target, const T* weight,
                       int64_t ignore_index, const T* g, T* dx, cudaStream_t stream) {
  const int64_t n = N * C * D;
  if (n == 0) return;
  nll_backward_kernel<T><<<grid_of((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      N, C, D, target, weight, ignore_index, g, dx);
  PE_CUDA_CHECK_LAUNCH("nll_loss");
}

#define PE_SOFTMAX_CUDA_INSTANTIATE(T)                                                             \
  template void softmax_forward<T>(int64_t, int64_t, int64_t, const T*, T*, bool, cudaStream_t);   \
  template void softmax_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, T*, bool,       \
                                    cudaStream_t);                                                 \
  template void cross_entropy_forward<T>(const cpu::CrossEntropy<T>&, cudaStream_t);               \
  template void nll_loss_forward<T>(const cpu::NllLoss<T>&, cudaStream_t);                         \
  template void nll_loss_backward<T>(int64_t, int64_t, int64_t, const int64_t*, const T*, int64_t, \
                                     const T*, T*, cudaStream_t);
PE_SOFTMAX_CUDA_INSTANTIATE(float)
PE_SOFTMAX_CUDA_INSTANTIATE(double)
#undef PE_SOFTMAX_CUDA_INSTANTIATE

}  // namespace pyengine::cuda
