// Softmax family on CUDA (float and double): the kernels of csrc/cpu/softmax.h with device
// pointers and a stream; read the contract there (same (outer, dim, inner) layout, same loss
// semantics, outputs OVERWRITTEN; targets must already be valid -- the Python backend checks
// them). One block per row (softmax) or per sample (losses); a row with inner > 1 is read with
// stride inner. Enqueued on `stream`; nothing synchronizes.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cpu/softmax.h"

namespace pyengine::cuda {

template <typename T>
void softmax_forward(int64_t outer, int64_t dim, int64_t inner, const T* x, T* y, bool log,
                     cudaStream_t stream);
template <typename T>
void softmax_backward(int64_t outer, int64_t dim, int64_t inner, const T* y, const T* dy, T* dx,
                      bool log, cudaStream_t stream);
template <typename T>
void cross_entropy_forward(const cpu::CrossEntropy<T>& a, cudaStream_t stream);
template <typename T>
void nll_loss_forward(const cpu::NllLoss<T>& a, cudaStream_t stream);
template <typename T>
void nll_loss_backward(int64_t N, int64_t C, int64_t D, const int64_t* target, const T* weight,
                       int64_t ignore_index, const T* g, T* dx, cudaStream_t stream);

}  // namespace pyengine::cuda
