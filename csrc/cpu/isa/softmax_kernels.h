// Internal: the per-ISA entry points of the softmax family (cpu/softmax.cpp dispatches to them).
// Each ISA file (softmax_generic.cpp, softmax_avx2.cpp, softmax_avx512.cpp) compiles
// cpu/isa/softmax_impl.h with its own flags. Contracts: cpu/softmax.h.
#pragma once
#include <cstdint>

#include "cpu/softmax.h"

namespace pyengine::cpu::softmax_detail {

template <typename T>
struct SoftmaxKernels {
  void (*forward)(int64_t, int64_t, int64_t, const T*, T*, bool);
  void (*backward)(int64_t, int64_t, int64_t, const T*, const T*, T*, bool);
  void (*cross_entropy)(const CrossEntropy<T>&);
};

namespace generic {
SoftmaxKernels<float> kernels_f32();
SoftmaxKernels<double> kernels_f64();
}  // namespace generic
namespace avx2 {
SoftmaxKernels<float> kernels_f32();
SoftmaxKernels<double> kernels_f64();
}  // namespace avx2
namespace avx512 {
SoftmaxKernels<float> kernels_f32();
SoftmaxKernels<double> kernels_f64();
}  // namespace avx512

}  // namespace pyengine::cpu::softmax_detail
