// Elementwise special functions the activations need and NumPy lacks (pyengine/ops/activation.py
// composes the activations themselves in NumPy / Tensor ops).
//   erf: y[i] = erf(x[i]) for n elements, y overwritten (may alias x). std::erf (libm), so it
//   is exact to an ulp or two in float and double.
// Threads: OpenMP over blocks of elements, pyengine::get_num_threads(); the caller holds no GIL.
#pragma once
#include <cstdint>

namespace pyengine::cpu {

template <typename T>
void erf(int64_t n, const T* x, T* y);

}  // namespace pyengine::cpu
