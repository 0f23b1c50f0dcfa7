// Internal: the per-ISA entry points of the activation family (cpu/activation.cpp dispatches to
// them). Each ISA file (activation_generic.cpp, activation_avx2.cpp, activation_avx512.cpp)
// compiles cpu/isa/activation_impl.h with its own flags. Contracts: cpu/activation.h.
#pragma once
#include <cstdint>

namespace pyengine::cpu::activation_detail {

// Elementwise float32 kernels over n elements: y = f(x), y overwritten (may alias x), and
// dx = g * f'(x), dx overwritten (may alias g).
using UnaryF32 = void (*)(int64_t n, const float* x, float* y);
using UnaryBackwardF32 = void (*)(int64_t n, const float* x, const float* g, float* dx);

struct ActivationKernelsF32 {
  UnaryF32 erf;                    // erf(x), within 2 ulp
  UnaryF32 gelu;                   // x Phi(x) (exact, erf form)
  UnaryBackwardF32 gelu_backward;  // g (Phi(x) + x phi(x))
  UnaryF32 gelu_tanh;              // 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
  UnaryBackwardF32 gelu_tanh_backward;
  UnaryF32 silu;  // x sigmoid(x)
  UnaryBackwardF32 silu_backward;
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
