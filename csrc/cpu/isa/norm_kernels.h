// Internal: the per-ISA entry points of the norm family (cpu/norm.cpp dispatches to them).
// Each ISA file (norm_generic.cpp, norm_avx2.cpp, norm_avx512.cpp) compiles cpu/isa/norm_impl.h
// with its own flags and hands out one table per dtype. Contracts: cpu/norm.h.
#pragma once
#include "cpu/norm.h"

namespace pyengine::cpu::norm_detail {

template <typename T>
struct NormKernels {
  void (*batch_norm_forward)(const BatchNormForward<T>&);
  void (*batch_norm_backward)(const BatchNormBackward<T>&);
  void (*layer_norm_forward)(const LayerNormForward<T>&);
  void (*layer_norm_backward)(const LayerNormBackward<T>&);
};

namespace generic {
NormKernels<float> kernels_f32();
NormKernels<double> kernels_f64();
}  // namespace generic
namespace avx2 {
NormKernels<float> kernels_f32();
NormKernels<double> kernels_f64();
}  // namespace avx2
namespace avx512 {
NormKernels<float> kernels_f32();
NormKernels<double> kernels_f64();
}  // namespace avx512

}  // namespace pyengine::cpu::norm_detail
