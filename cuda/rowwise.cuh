// Block-wide reductions shared by cuda/norm.cu and cuda/softmax.cu (device code only).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

namespace pyengine::cuda::rowwise {

constexpr int kThreads = 256;  // threads per block of the row / channel kernels
constexpr int kWarps = kThreads / 32;

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename A>
__device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) {
    const A u = __shfl_xor_sync(0xffffffffu, v, o);
    v = (u > v || u != u) ? u : v;  // NaN wins, as in a sequential max that propagates it
  }
  return v;
}

// Sum of v over the block (blockDim.x == kThreads); every thread gets the result. `smem` holds
// kWarps values; the function synchronizes before returning, so it can be called repeatedly.
template <typename A>
__device__ A block_sum(A v, A* smem) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  A t = lane < kWarps ? smem[lane] : A(0);
  t = warp_sum(t);
  __syncthreads();
  return t;
}

template <typename A>
__device__ A block_max(A v, A* smem) {
  v = warp_max(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  A t = lane < kWarps ? smem[lane] : smem[0];
  t = warp_max(t);
  __syncthreads();
  return t;
}

// Rows of at most kMaxRegs * kThreads values are read once into registers, P per thread
// (value j of the row in thread j % kThreads, slot j / kThreads: a warp's loads are
// consecutive). Calls f(std::integral_constant<int, P>{}) with the smallest power of two P that
// holds a row of n values and returns true, or returns false when the row is longer (the
// caller then takes its streaming path). Host code.
constexpr int kMaxRegs = 16;

template <typename F>
bool with_row_regs(int64_t n, F&& f) {
  if (n <= 0 || n > kMaxRegs * kThreads) return false;
  if (n <= kThreads) {
    f(std::integral_constant<int, 1>{});
  } else if (n <= 2 * kThreads) {
    f(std::integral_constant<int, 2>{});
  } else if (n <= 4 * kThreads) {
    f(std::integral_constant<int, 4>{});
  } else if (n <= 8 * kThreads) {
    f(std::integral_constant<int, 8>{});
  } else {
    f(std::integral_constant<int, 16>{});
  }
  return true;
}

// v[p] = row[threadIdx.x + p * kThreads] converted to A, or `fill` past the row's n values.
template <int P, typename T, typename A>
__device__ __forceinline__ void load_row(const T* row, int64_t n, A fill, A (&v)[P]) {
#pragma unroll
  for (int p = 0; p < P; ++p) {
    const int64_t j = threadIdx.x + static_cast<int64_t>(p) * kThreads;
    v[p] = j < n ? static_cast<A>(row[j]) : fill;
  }
}

}  // namespace pyengine::cuda::rowwise
