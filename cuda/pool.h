// Pooling on CUDA (NCHW, float and double): the kernels of csrc/cpu/pool.h with device
// pointers and a stream. Read the contract there: the same window rules (PyTorch's), the same
// index convention (int64 h*W + w within a plane), outputs OVERWRITTEN. Differences:
//   - max_pool2d_backward (scatter-add, also the backward of adaptive max pooling) adds with
//     atomicAdd, so where windows overlap the float rounding order is not fixed from run to
//     run; the other backwards gather and are deterministic.
//   - max_unpool2d_forward skips out-of-range indices (the caller checks them first); with
//     duplicate indices which write wins is not defined (as PyTorch's CUDA kernel).
// Enqueued on `stream`; nothing synchronizes. Sizes are checked by cuda/bindings_pool.cpp.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cpu/pool.h"  // Pool2d and pool_output_size (plain host code)

namespace pyengine::cuda {

using cpu::Pool2d;

template <typename T>
void max_pool2d_forward(const Pool2d& g, const T* x, T* y, int64_t* idx, cudaStream_t stream);
template <typename T>
void max_pool2d_backward(int64_t planes, int64_t in_hw, int64_t out_hw, const T* gy,
                         const int64_t* idx, T* gx, cudaStream_t stream);
template <typename T>
void pool_gather(int64_t planes, int64_t src_hw, int64_t out_hw, const T* src, const int64_t* idx,
                 T* out, cudaStream_t stream);
template <typename T>
void avg_pool2d_forward(const Pool2d& g, bool count_include_pad, int64_t divisor_override,
                        const T* x, T* y, cudaStream_t stream);
template <typename T>
void avg_pool2d_backward(const Pool2d& g, bool count_include_pad, int64_t divisor_override,
                         const T* gy, T* gx, cudaStream_t stream);
template <typename T>
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y, cudaStream_t stream);
template <typename T>
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  const T* gy, T* gx, cudaStream_t stream);
template <typename T>
void adaptive_max_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y, int64_t* idx, cudaStream_t stream);
template <typename T>
void max_unpool2d_forward(int64_t planes, int64_t in_hw, int64_t out_hw, const T* x,
                          const int64_t* idx, T* y, cudaStream_t stream);
template <typename T>
void upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                const T* x, T* y, cudaStream_t stream);
template <typename T>
void upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int64_t fH, int64_t fW,
                                 const T* gy, T* gx, cudaStream_t stream);

}  // namespace pyengine::cuda
