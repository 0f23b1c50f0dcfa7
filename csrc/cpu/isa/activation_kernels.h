// Internal: the per-ISA entry points of the activation family (cpu/activation.cpp dispatches to
// them). Each ISA file (activation_generic.cpp, activation_avx2.cpp, activation_avx512.cpp)
// compiles cpu/isa/activation_impl.h with its own flags. Contracts: cpu/activation.h.
#pragma once
#include <cstdint>

namespace pyengine::cpu::activation_detail {

// y[i] = erf(x[i]) for i < n, float32, within 2 ulp; y overwritten (may alias x).
using ErfF32 = void (*)(int64_t n, const float* x, float* y);
// y[i] = gelu(x[i]) = x Phi(x) (exact, erf form); y overwritten (may alias x).
using GeluF32 = void (*)(int64_t n, const float* x, float* y);
// dx[i] = g[i] * (Phi(x[i]) + x[i] phi(x[i])); dx overwritten (may alias g).
using GeluBackwardF32 = void (*)(int64_t n, const float* x, const float* g, float* dx);

struct ActivationKernelsF32 {
  ErfF32 erf;
  GeluF32 gelu;
  GeluBackwardF32 gelu_backward;
};

namespace generic {
ActivationKernelsF32 kernels_f32();
}  // namespace generic
namespace avx2 {
ActivationKernelsF32 kernels_f32();
}  // namespace avx2
namespace avx512 {
ActivationKernelsF32 kernels_f32();
}  // namespace avx512

}  // namespace pyengine::cpu::activation_detail
