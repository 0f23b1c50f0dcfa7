// Norm family: picks the kernels compiled for the active ISA (cpu/isa/norm_*.cpp).
// Contracts: cpu/norm.h; the loops: cpu/isa/norm_impl.h.
#include "cpu/norm.h"

#include "core/cpu_features.h"
#include "cpu/isa/norm_kernels.h"

namespace pyengine::cpu {
namespace {

template <typename T>
norm_detail::NormKernels<T> select();

template <>
norm_detail::NormKernels<float> select<float>() {
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512: return norm_detail::avx512::kernels_f32();
    case Isa::AVX2: return norm_detail::avx2::kernels_f32();
#endif
    default: return norm_detail::generic::kernels_f32();
  }
}

template <>
norm_detail::NormKernels<double> select<double>() {
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512: return norm_detail::avx512::kernels_f64();
    case Isa::AVX2: return norm_detail::avx2::kernels_f64();
#endif
    default: return norm_detail::generic::kernels_f64();
  }
}

}  // namespace

template <typename T>
void batch_norm_forward(const BatchNormForward<T>& a) {
  select<T>().batch_norm_forward(a);
}
template <typename T>
void batch_norm_backward(const BatchNormBackward<T>& a) {
  select<T>().batch_norm_backward(a);
}
template <typename T>
void layer_norm_forward(const LayerNormForward<T>& a) {
  select<T>().layer_norm_forward(a);
}
template <typename T>
void layer_norm_backward(const LayerNormBackward<T>& a) {
  select<T>().layer_norm_backward(a);
}

#define PE_NORM_INSTANTIATE(T)                                       \
  template void batch_norm_forward<T>(const BatchNormForward<T>&);   \
  template void batch_norm_backward<T>(const BatchNormBackward<T>&); \
  template void layer_norm_forward<T>(const LayerNormForward<T>&);   \
  template void layer_norm_backward<T>(const LayerNormBackward<T>&);
PE_NORM_INSTANTIATE(float)
PE_NORM_INSTANTIATE(double)
#undef PE_NORM_INSTANTIATE

}  // namespace pyengine::cpu
