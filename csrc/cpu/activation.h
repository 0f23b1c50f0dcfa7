// Elementwise special functions the activations need and NumPy lacks (pyengine/ops/activation.py
// composes the activations themselves in NumPy / Tensor ops).
//   erf: y[i] = erf(x[i]) for n elements, y overwritten (may alias x). float32: a vectorized
//   polynomial / exp form per ISA (cpu/isa/activation_impl.h), within 2 ulp; float64: std::erf.
// Threads: OpenMP over blocks of elements, pyengine::get_num_threads(); the caller holds no GIL.
#pragma once
#include <cstdint>

namespace pyengine::cpu {

template <typename T>
void erf(int64_t n, const T* x, T* y);
template <>
void erf<float>(int64_t n, const float* x, float* y);
template <>
void erf<double>(int64_t n, const double* x, double* y);

}  // namespace pyengine::cpu
