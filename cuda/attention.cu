// Fused scaled-dot-product attention on CUDA. Contract: attention.h.
//
// Forward (one block = kRows query rows of one (b, h), one thread per row):
//   the block walks the keys in tiles of kTile rows of K and V staged in shared
//   memory; each thread keeps its q row and its output accumulator in
//   registers and updates a running max m and sum l (online softmax).
// Backward, FlashAttention-2 formulas, from Q, K, V, O, dO and lse:
//   rowdot_i = sum_c dO_ic O_ic                               (kernel 1)
//   per key row j, over query tiles (Q, dO staged in shared):  (kernel 2)
//     P_ij = exp(S_ij - lse_i), dV_j += Pd_ij dO_i, dP_ij = dO_i . V_j (x dropout),
//     dS_ij = P_ij (dP_ij - rowdot_i), dK_j += scale dS_ij Q_i
//   per query row i, over key tiles (K, V staged in shared):  (kernel 3)
//     dQ_i += scale dS_ij K_j
// The scores are recomputed in kernels 2 and 3; no L x L matrix, no atomics.
// Register arrays are sized by the template head-dim bound (64 or 128) and the
// loops over it are unrolled with guards, so they stay in registers.
// Storage type T (float, double, __half) and accumulation type A = Acc<T>
// (float for __half): operands are converted when staged or loaded, every sum,
// exp and the logsumexp are in A, results rounded to T when stored.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "attention.h"
#include "common.cuh"

namespace pyengine::cuda {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";
constexpr int kRows = 64;  // threads (query or key rows) per block

template <typename T>
struct Acc {
  using type = T;
};
template <>
struct Acc<__half> {
  using type = float;
};

__device__ inline float to_acc(__half x) { return __half2float(x); }
__device__ inline float to_acc(float x) { return x; }
__device__ inline double to_acc(double x) { return x; }

template <typename T>
__device__ inline T from_acc(typename Acc<T>::type x) {
  return x;
}
template <>
__device__ inline __half from_acc<__half>(float x) {
  return __float2half_rn(x);
}

// Key (or query) rows per shared-memory tile: K and V tiles of kMaxD columns
// each, 32 KiB for float at kMaxD = 128 (and for double at 64).
template <typename A, int kMaxD>
constexpr int tile_rows() {
  return static_cast<int>(32768 / (2 * kMaxD * sizeof(A)));
}

// ---- dropout: bit-identical to csrc/cpu/attention.cpp (struct Dropout) ---------------
__host__ __device__ inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct DropoutDev {
  bool on;
  uint64_t key, thresh;
  double inv_keep;
};

DropoutDev make_dropout(uint64_t seed, double p) {
  DropoutDev d;
  d.on = p > 0.0;
  d.key = mix64(seed ^ 0x243f6a8885a308d3ULL);
  d.thresh = static_cast<uint64_t>(std::ldexp(p, 32));
  d.inv_keep = d.on ? 1.0 / (1.0 - p) : 1.0;
  return d;
}

__device__ inline uint64_t drop_row(const DropoutDev& d, int64_t bh, int64_t i) {
  return mix64(d.key + static_cast<uint64_t>(bh) * 0x9e3779b97f4a7c15ULL +
               static_cast<uint64_t>(i) * 0xd1b54a32d192ed03ULL);
}

__device__ inline bool drop_keep(const DropoutDev& d, uint64_t row_key, int64_t j) {
  return (mix64(row_key + static_cast<uint64_t>(j) * 0x8cb92ba72f3d8dd7ULL) >> 32) >= d.thresh;
}

template <typename T>
__device__ inline T dev_exp(T x) {
  return exp(x);
}
template <>
__device__ inline float dev_exp<float>(float x) {
  return expf(x);
}

// Score of (i, j) after mask and causal diagonal; -inf when masked out.
template <typename T, typename A>
__device__ inline A apply_mask(const AttnParams& p, int64_t b, int64_t h, int64_t i, int64_t j,
                               A s) {
  if (p.causal && j > i) return -std::numeric_limits<A>::infinity();
  if (p.mask.kind == 0) return s;
  const int64_t off = b * p.mask.sb + h * p.mask.sh + i * p.mask.si + j * p.mask.sj;
  if (p.mask.kind == 1)
    return static_cast<const uint8_t*>(p.mask.ptr)[off] ? s : -std::numeric_limits<A>::infinity();
  return s + to_acc(static_cast<const T*>(p.mask.ptr)[off]);
}

// Cooperative copy of rows [r0, r0 + n) of a (L, E) strided matrix into a
// (tile, kMaxD) shared array; rows past n are not written.
template <int kMaxD, typename A, typename T>
__device__ inline void stage(A* dst, const T* src, int64_t sl, int64_t r0, int n, int64_t E) {
  for (int idx = threadIdx.x; idx < n * E; idx += blockDim.x) {
    const int r = idx / static_cast<int>(E), c = idx % static_cast<int>(E);
    dst[r * kMaxD + c] = to_acc(src[(r0 + r) * sl + c]);
  }
}

// ---- forward -----------------------------------------------------------------------
template <typename T, int kMaxD>
__global__ void __launch_bounds__(kRows)
    forward_kernel(AttnParams p, DropoutDev drop, T* out, typename Acc<T>::type* lse) {
  using A = typename Acc<T>::type;
  constexpr int kTile = tile_rows<A, kMaxD>();
  extern __shared__ unsigned char smem_raw[];
  A* Ks = reinterpret_cast<A*>(smem_raw);
  A* Vs = Ks + kTile * kMaxD;
  const A kInf = std::numeric_limits<A>::infinity();

  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t i = q0 + threadIdx.x;
  const bool active = i < p.Lq;
  const T* Q = static_cast<const T*>(p.q.ptr) + b * p.q.sb + h * p.q.sh;
  const T* K = static_cast<const T*>(p.k.ptr) + b * p.k.sb + h * p.k.sh;
  const T* V = static_cast<const T*>(p.v.ptr) + b * p.v.sb + h * p.v.sh;
  const A scale = static_cast<A>(p.scale);

  A q[kMaxD], acc[kMaxD];
#pragma unroll
  for (int c = 0; c < kMaxD; ++c) {
    q[c] = (active && c < p.D) ? to_acc(Q[i * p.q.sl + c]) : A(0);
    acc[c] = A(0);
  }
  A m = -kInf, l = A(0);
  const uint64_t rk = drop.on ? drop_row(drop, bh, i) : 0;
  const A inv_keep = static_cast<A>(drop.inv_keep);

  const int64_t kend = p.causal ? std::min<int64_t>(p.Lk, q0 + kRows) : p.Lk;
  for (int64_t k0 = 0; k0 < kend; k0 += kTile) {
    const int n = static_cast<int>(std::min<int64_t>(kTile, kend - k0));
    __syncthreads();  // the previous tile is no longer read
    stage<kMaxD>(Ks, K, p.k.sl, k0, n, p.D);
    stage<kMaxD>(Vs, V, p.v.sl, k0, n, p.Dv);
    __syncthreads();
    if (!active) continue;
    for (int jj = 0; jj < n; ++jj) {
      const int64_t j = k0 + jj;
      A s = A(0);
#pragma unroll
      for (int c = 0; c < kMaxD; ++c)
        if (c < p.D) s += q[c] * Ks[jj * kMaxD + c];
      s = apply_mask<T, A>(p, b, h, i, j, s * scale);
      if (s == -kInf) continue;  // P = 0
      if (s > m) {               // new running max: rescale what was summed so far
        const A r = dev_exp<A>(m - s);
        l *= r;
#pragma unroll
        for (int c = 0; c < kMaxD; ++c) acc[c] *= r;
        m = s;
      }
      const A e = dev_exp<A>(s - m);
      l += e;
      const A w = drop.on ? (drop_keep(drop, rk, j) ? e * inv_keep : A(0)) : e;
#pragma unroll
      for (int c = 0; c < kMaxD; ++c)
        if (c < p.Dv) acc[c] += w * Vs[jj * kMaxD + c];
    }
  }
  if (!active) return;
  T* o = out + (bh * p.Lq + i) * p.Dv;
  const bool dead = !(l > A(0));
  const A inv = dead ? A(0) : A(1) / l;
#pragma unroll
  for (int c = 0; c < kMaxD; ++c)
    if (c < p.Dv) o[c] = from_acc<T>(acc[c] * inv);
  lse[bh * p.Lq + i] = dead ? kInf : m + log(l);
}

// ---- backward ----------------------------------------------------------------------
template <typename T>
__global__ void rowdot_kernel(int64_t rows, int64_t Dv, const T* out, const T* dout,
                              typename Acc<T>::type* rowdot) {
  using A = typename Acc<T>::type;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  A acc = A(0);
  for (int64_t c = 0; c < Dv; ++c) acc += to_acc(out[r * Dv + c]) * to_acc(dout[r * Dv + c]);
  rowdot[r] = acc;
}

// One thread per key row j: dK_j and dV_j over all query rows (Q, dO tiles in shared).
template <typename T, int kMaxD>
__global__ void __launch_bounds__(kRows)
    dkdv_kernel(AttnParams p, DropoutDev drop, const typename Acc<T>::type* lse, const T* dout,
                const typename Acc<T>::type* rowdot, T* dk, T* dv) {
  using A = typename Acc<T>::type;
  constexpr int kTile = tile_rows<A, kMaxD>();
  extern __shared__ unsigned char smem_raw[];
  A* Qs = reinterpret_cast<A*>(smem_raw);
  A* Gs = Qs + kTile * kMaxD;  // dO tile
  const A kInf = std::numeric_limits<A>::infinity();

  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t j = k0 + threadIdx.x;
  const bool active = j < p.Lk;
  const T* Q = static_cast<const T*>(p.q.ptr) + b * p.q.sb + h * p.q.sh;
  const T* K = static_cast<const T*>(p.k.ptr) + b * p.k.sb + h * p.k.sh;
  const T* V = static_cast<const T*>(p.v.ptr) + b * p.v.sb + h * p.v.sh;
  const T* G = dout + bh * p.Lq * p.Dv;
  const A* L = lse + bh * p.Lq;
  const A* R = rowdot + bh * p.Lq;
  const A scale = static_cast<A>(p.scale);
  const A inv_keep = static_cast<A>(drop.inv_keep);

  A kr[kMaxD], vr[kMaxD], gk[kMaxD], gv[kMaxD];
#pragma unroll
  for (int c = 0; c < kMaxD; ++c) {
    kr[c] = (active && c < p.D) ? to_acc(K[j * p.k.sl + c]) : A(0);
    vr[c] = (active && c < p.Dv) ? to_acc(V[j * p.v.sl + c]) : A(0);
    gk[c] = A(0);
    gv[c] = A(0);
  }
  // Causal: queries i >= j see key j; the block's first key is k0.
  const int64_t qstart = p.causal ? std::min<int64_t>(k0, p.Lq) : 0;
  for (int64_t t0 = qstart; t0 < p.Lq; t0 += kTile) {
    const int n = static_cast<int>(std::min<int64_t>(kTile, p.Lq - t0));
    __syncthreads();
    stage<kMaxD>(Qs, Q, p.q.sl, t0, n, p.D);
    stage<kMaxD>(Gs, G, p.Dv, t0, n, p.Dv);
    __syncthreads();
    if (!active) continue;
    for (int ii = 0; ii < n; ++ii) {
      const int64_t i = t0 + ii;
      const A li = L[i];
      if (li == kInf) continue;  // fully masked row: P = 0
      A s = A(0);
#pragma unroll
      for (int c = 0; c < kMaxD; ++c)
        if (c < p.D) s += Qs[ii * kMaxD + c] * kr[c];
      s = apply_mask<T, A>(p, b, h, i, j, s * scale);
      if (s == -kInf) continue;
      const A pr = dev_exp<A>(s - li);
      A keep = A(1);
      if (drop.on) keep = drop_keep(drop, drop_row(drop, bh, i), j) ? inv_keep : A(0);
      A dp = A(0);
#pragma unroll
      for (int c = 0; c < kMaxD; ++c)
        if (c < p.Dv) {
          gv[c] += pr * keep * Gs[ii * kMaxD + c];
          dp += Gs[ii * kMaxD + c] * vr[c];
        }
      const A ds = pr * (dp * keep - R[i]) * scale;
#pragma unroll
      for (int c = 0; c < kMaxD; ++c)
        if (c < p.D) gk[c] += ds * Qs[ii * kMaxD + c];
    }
  }
  if (!active) return;
#pragma unroll
  for (int c = 0; c < kMaxD; ++c) {
    if (c < p.D) dk[(bh * p.Lk + j) * p.D + c] = from_acc<T>(gk[c]);
    if (c < p.Dv) dv[(bh * p.Lk + j) * p.Dv + c] = from_acc<T>(gv[c]);
  }
}

// One thread per query row i: dQ_i over all key rows (K, V tiles in shared).
template <typename T, int kMaxD>
__global__ void __launch_bounds__(kRows)
    dq_kernel(AttnParams p, DropoutDev drop, const typename Acc<T>::type* lse, const T* dout,
              const typename Acc<T>::type* rowdot, T* dq) {
  using A = typename Acc<T>::type;
  constexpr int kTile = tile_rows<A, kMaxD>();
  extern __shared__ unsigned char smem_raw[];
  A* Ks = reinterpret_cast<A*>(smem_raw);
  A* Vs = Ks + kTile * kMaxD;
  const A kInf = std::numeric_limits<A>::infinity();

  const int64_t bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int64_t i = q0 + threadIdx.x;
  const bool active = i < p.Lq;
  const T* Q = static_cast<const T*>(p.q.ptr) + b * p.q.sb + h * p.q.sh;
  const T* K = static_cast<const T*>(p.k.ptr) + b * p.k.sb + h * p.k.sh;
  const T* V = static_cast<const T*>(p.v.ptr) + b * p.v.sb + h * p.v.sh;
  const T* G = dout + bh * p.Lq * p.Dv;
  const A scale = static_cast<A>(p.scale);
  const A inv_keep = static_cast<A>(drop.inv_keep);
  const A li = active ? lse[bh * p.Lq + i] : kInf;
  const A ri = active ? rowdot[bh * p.Lq + i] : A(0);
  const uint64_t rk = drop.on ? drop_row(drop, bh, i) : 0;

  A q[kMaxD], g[kMaxD], gq[kMaxD];
#pragma unroll
  for (int c = 0; c < kMaxD; ++c) {
    q[c] = (active && c < p.D) ? to_acc(Q[i * p.q.sl + c]) : A(0);
    g[c] = (active && c < p.Dv) ? to_acc(G[i * p.Dv + c]) : A(0);
    gq[c] = A(0);
  }
  const int64_t kend = p.causal ? std::min<int64_t>(p.Lk, q0 + kRows) : p.Lk;
  for (int64_t k0 = 0; k0 < kend; k0 += kTile) {
    const int n = static_cast<int>(std::min<int64_t>(kTile, kend - k0));
    __syncthreads();
    stage<kMaxD>(Ks, K, p.k.sl, k0, n, p.D);
    stage<kMaxD>(Vs, V, p.v.sl, k0, n, p.Dv);
    __syncthreads();
    if (!active || li == kInf) continue;
    for (int jj = 0; jj < n; ++jj) {
      const int64_t j = k0 + jj;
      A s = A(0);
#pragma unroll
      for (int c = 0; c < kMaxD; ++c)
        if (c < p.D) s += q[c] * Ks[jj * kMaxD + c];
      s = apply_mask<T, A>(p, b, h, i, j, s * scale);
      if (s == -kInf) continue;
      const A pr = dev_exp<A>(s - li);
      A dp = A(0);
#pragma unroll
      for (int c = 0; c < kMaxD; ++c)
        if (c < p.Dv) dp += g[c] * Vs[jj * kMaxD + c];
      if (drop.on) dp *= drop_keep(drop, rk, j) ? inv_keep : A(0);
      const A ds = pr * (dp - ri) * scale;
#pragma unroll
      for (int c = 0; c < kMaxD; ++c)
        if (c < p.D) gq[c] += ds * Ks[jj * kMaxD + c];
    }
  }
  if (!active) return;
#pragma unroll
  for (int c = 0; c < kMaxD; ++c)
    if (c < p.D) dq[(bh * p.Lq + i) * p.D + c] = from_acc<T>(gq[c]);
}

template <typename T, int kMaxD>
size_t smem_bytes() {
  using A = typename Acc<T>::type;
  return static_cast<size_t>(2) * tile_rows<A, kMaxD>() * kMaxD * sizeof(A);
}

template <typename T, int kMaxD>
void forward_impl(const AttnParams& p, T* out, typename Acc<T>::type* lse, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((p.Lq + kRows - 1) / kRows),
                  static_cast<unsigned>(p.B * p.H));
  forward_kernel<T, kMaxD><<<grid, kRows, smem_bytes<T, kMaxD>(), stream>>>(
      p, make_dropout(p.seed, p.dropout_p), out, lse);
  PE_CUDA_CHECK_LAUNCH(kOp);
}

template <typename T, int kMaxD>
void backward_impl(const AttnParams& p, const T* out, const typename Acc<T>::type* lse,
                   const T* dout, typename Acc<T>::type* rowdot, T* dq, T* dk, T* dv,
                   cudaStream_t stream) {
  const DropoutDev drop = make_dropout(p.seed, p.dropout_p);
  const unsigned bh = static_cast<unsigned>(p.B * p.H);
  if (p.Lq > 0) {
    const int64_t rows = p.B * p.H * p.Lq;
    rowdot_kernel<T><<<static_cast<unsigned>((rows + 255) / 256), 256, 0, stream>>>(rows, p.Dv, out,
                                                                                    dout, rowdot);
    PE_CUDA_CHECK_LAUNCH(kOp);
    dq_kernel<T, kMaxD><<<dim3(static_cast<unsigned>((p.Lq + kRows - 1) / kRows), bh), kRows,
                          smem_bytes<T, kMaxD>(), stream>>>(p, drop, lse, dout, rowdot, dq);
    PE_CUDA_CHECK_LAUNCH(kOp);
  }
  if (p.Lk > 0) {
    dkdv_kernel<T, kMaxD><<<dim3(static_cast<unsigned>((p.Lk + kRows - 1) / kRows), bh), kRows,
                            smem_bytes<T, kMaxD>(), stream>>>(p, drop, lse, dout, rowdot, dk, dv);
    PE_CUDA_CHECK_LAUNCH(kOp);
  }
}

template <typename T>
void forward_any(const AttnParams& p, T* out, typename Acc<T>::type* lse, cudaStream_t stream) {
  if (p.B * p.H == 0 || p.Lq == 0) return;
  if (std::max(p.D, p.Dv) <= 64)
    forward_impl<T, 64>(p, out, lse, stream);
  else
    forward_impl<T, 128>(p, out, lse, stream);
}

template <typename T>
void backward_any(const AttnParams& p, const T* out, const typename Acc<T>::type* lse,
                  const T* dout, typename Acc<T>::type* rowdot, T* dq, T* dk, T* dv,
                  cudaStream_t stream) {
  if (p.B * p.H == 0) return;
  if (std::max(p.D, p.Dv) <= 64)
    backward_impl<T, 64>(p, out, lse, dout, rowdot, dq, dk, dv, stream);
  else
    backward_impl<T, 128>(p, out, lse, dout, rowdot, dq, dk, dv, stream);
}

}  // namespace

template <typename T>
void sdpa_forward(const AttnParams& p, T* out, T* lse, cudaStream_t stream) {
  forward_any<T>(p, out, lse, stream);
}

template <typename T>
void sdpa_backward(const AttnParams& p, const T* out, const T* lse, const T* dout, T* rowdot, T* dq,
                   T* dk, T* dv, cudaStream_t stream) {
  backward_any<T>(p, out, lse, dout, rowdot, dq, dk, dv, stream);
}

void sdpa_forward_f16(const AttnParams& p, uint16_t* out, float* lse, cudaStream_t stream) {
  forward_any<__half>(p, reinterpret_cast<__half*>(out), lse, stream);
}

void sdpa_backward_f16(const AttnParams& p, const uint16_t* out, const float* lse,
                       const uint16_t* dout, float* rowdot, uint16_t* dq, uint16_t* dk,
                       uint16_t* dv, cudaStream_t stream) {
  backward_any<__half>(p, reinterpret_cast<const __half*>(out), lse,
                       reinterpret_cast<const __half*>(dout), rowdot, reinterpret_cast<__half*>(dq),
                       reinterpret_cast<__half*>(dk), reinterpret_cast<__half*>(dv), stream);
}

template void sdpa_forward<float>(const AttnParams&, float*, float*, cudaStream_t);
template void sdpa_forward<double>(const AttnParams&, double*, double*, cudaStream_t);
template void sdpa_backward<float>(const AttnParams&, const float*, const float*, const float*,
                                   float*, float*, float*, float*, cudaStream_t);
template void sdpa_backward<double>(const AttnParams&, const double*, const double*, const double*,
                                    double*, double*, double*, double*, cudaStream_t);

}  // namespace pyengine::cuda
