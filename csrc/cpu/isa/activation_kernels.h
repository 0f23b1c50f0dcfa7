// Internal: the per-ISA entry points of the activation family (cpu/activation.cpp dispatches to
// them). Each ISA file (activation_generic.cpp, activation_avx2.cpp, activation_avx512.cpp)
// compiles cpu/isa/activation_impl.h with its own flags. Contracts: cpu/activation.h.
#pragma once
#include <cstdint>

namespace pyengine::cpu::activation_detail {

// y[i] = erf(x[i]) for i < n, float32, within 2 ulp; y overwritten (may alias x).
using ErfF32 = void (*)(int64_t n, const float* x, float* y);

namespace generic {
ErfF32 erf_f32();
}  // namespace generic
namespace avx2 {
ErfF32 erf_f32();
}  // namespace avx2
namespace avx512 {
ErfF32 erf_f32();
}  // namespace avx512

}  // namespace pyengine::cpu::activation_detail
