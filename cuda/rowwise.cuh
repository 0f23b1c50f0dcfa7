// Block-wide reductions shared by cuda/norm.cu and cuda/softmax.cu (device code only).
#pragma once
#include <cuda_runtime.h>

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

}  // namespace pyengine::cuda::rowwise
