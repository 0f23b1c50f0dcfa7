// Softmax family: picks the kernels compiled for the active ISA (cpu/isa/softmax_*.cpp) and
// holds nll_loss (a gather / scatter: no ISA-specific code). Contracts: cpu/softmax.h.
#include "cpu/softmax.h"

#include <algorithm>

#include "core/cpu_features.h"
#include "core/parallel.h"
#include "cpu/isa/softmax_kernels.h"

namespace pyengine::cpu {
namespace {

template <typename T>
softmax_detail::SoftmaxKernels<T> select();

template <>
softmax_detail::SoftmaxKernels<float> select<float>() {
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512: return softmax_detail::avx512::kernels_f32();
    case Isa::AVX2: return softmax_detail::avx2::kernels_f32();
#endif
    default: return softmax_detail::generic::kernels_f32();
  }
}

template <>
softmax_detail::SoftmaxKernels<double> select<double>() {
  switch (active_isa()) {
#if PYENGINE_X86
    case Isa::AVX512: return softmax_detail::avx512::kernels_f64();
    case Isa::AVX2: return softmax_detail::avx2::kernels_f64();
#endif
    default: return softmax_detail::generic::kernels_f64();
  }
}

}  // namespace

template <typename T>
void softmax_forward(int64_t outer, int64_t dim, int64_t inner, const T* x, T* y, bool log) {
  select<T>().forward(outer, dim, inner, x, y, log);
}

template <typename T>
void softmax_backward(int64_t outer, int64_t dim, int64_t inner, const T* y, const T* dy, T* dx,
                      bool log) {
  select<T>().backward(outer, dim, inner, y, dy, dx, log);
}

template <typename T>
void cross_entropy_forward(const CrossEntropy<T>& a) {
  select<T>().cross_entropy(a);
}

template <typename T>
void nll_loss_forward(const NllLoss<T>& a) {
  const int64_t samples = a.N * a.D;
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t n = s / a.D, d = s % a.D, t = a.target[s];
    if (t == a.ignore_index) {
      a.loss[s] = 0;
      if (a.sample_weight) a.sample_weight[s] = 0;
      continue;
    }
    const T w = a.weight ? a.weight[t] : T(1);
    a.loss[s] = -w * a.x[(n * a.C + t) * a.D + d];
    if (a.sample_weight) a.sample_weight[s] = w;
  }
}

template <typename T>
void nll_loss_backward(int64_t N, int64_t C, int64_t D, const int64_t* target, const T* weight,
                       int64_t ignore_index, const T* g, T* dx) {
  std::fill(dx, dx + N * C * D, T(0));
  for (int64_t s = 0; s < N * D; ++s) {
    const int64_t n = s / D, d = s % D, t = target[s];
    if (t == ignore_index) continue;
    dx[(n * C + t) * D + d] = -(weight ? weight[t] : T(1)) * g[s];
  }
}

#define PE_SOFTMAX_INSTANTIATE(T)                                                                  \
  template void softmax_forward<T>(int64_t, int64_t, int64_t, const T*, T*, bool);                 \
  template void softmax_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, T*, bool);      \
  template void cross_entropy_forward<T>(const CrossEntropy<T>&);                                  \
  template void nll_loss_forward<T>(const NllLoss<T>&);                                            \
  template void nll_loss_backward<T>(int64_t, int64_t, int64_t, const int64_t*, const T*, int64_t, \
                                     const T*, T*);
PE_SOFTMAX_INSTANTIATE(float)
PE_SOFTMAX_INSTANTIATE(double)
#undef PE_SOFTMAX_INSTANTIATE

}  // namespace pyengine::cpu
