// Normalization on CUDA (float and double): the kernels of csrc/cpu/norm.h with device pointers
// and a stream. The argument structs are the CPU ones (plain host data); read the contract
// there: same semantics (biased variance normalizes, the running variance gets the unbiased
// one), outputs OVERWRITTEN, optional pointers null. Differences: layer_norm's statistics are
// two-pass block reductions in the accumulation type (float for float, double for double);
// batch_norm's are sums of (x - the channel's first value) and its square in double, per
// block, then combined across blocks. Enqueued on `stream`; nothing
// synchronizes (batch_norm's scratch is stream-ordered: cudaMallocAsync). Sizes are checked
// by cuda/bindings_norm.cpp.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cpu/norm.h"

namespace pyengine::cuda {

template <typename T>
void batch_norm_forward(const cpu::BatchNormForward<T>& a, cudaStream_t stream);
template <typename T>
void batch_norm_backward(const cpu::BatchNormBackward<T>& a, cudaStream_t stream);
template <typename T>
void layer_norm_forward(const cpu::LayerNormForward<T>& a, cudaStream_t stream);
template <typename T>
void layer_norm_backward(const cpu::LayerNormBackward<T>& a, cudaStream_t stream);

}  // namespace pyengine::cuda
